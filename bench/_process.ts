/**
 * What the benchmark harness needs to start contenders (Deno only: run.ts, fleet.ts and
 * soak.ts run under Deno): free ports, since fixed ports would let a leftover process
 * from an earlier run answer in place of the contender under test; and the environment
 * that keeps olla-ts on Bun from relaunching itself.
 *
 * @module
 */

/** A port nothing listens on now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * What Bun's relaunch would set (lib/startup/bun_launch.ts), given up front: the process
 * measured must be the one serving, not a parent that only forwards signals.
 */
export const NO_RELAUNCH: Readonly<Record<string, string>> = {
  BUN_CONFIG_MAX_HTTP_REQUESTS: "8192",
  BUN_OPTIONS: "--max-http-header-size=4194304",
};
