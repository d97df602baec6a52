/**
 * Free ports for the benchmark harness (Deno only: run.ts and fleet.ts run under Deno and
 * start the contenders). Fixed ports would let a leftover process from an earlier run
 * answer in place of the contender under test.
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
