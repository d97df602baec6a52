/**
 * What the benchmark harness needs to start contenders (Deno only: run.ts, fleet.ts and
 * soak.ts run under Deno): free ports, since fixed ports would let a leftover process
 * from an earlier run answer in place of the contender under test; the environment that
 * keeps olla-ts on Bun from relaunching itself; waiting for a server to answer; and a
 * process's CPU time.
 *
 * @module
 */

/** The processes a benchmark started, run from `cwd` quietly, to be ended together. */
export class Children {
  readonly #all: Deno.ChildProcess[] = [];

  constructor(readonly cwd: string) {}

  /** Starts `command` with Bun's relaunch variables ({@linkcode NO_RELAUNCH}) and `env`. */
  start(command: string, args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
    const child = new Deno.Command(command, {
      args,
      cwd: this.cwd,
      env: { ...NO_RELAUNCH, ...env },
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#all.push(child);
    return child;
  }

  /**
   * Ends `child`: SIGTERM first (a SIGKILLed nginx master leaves its workers running),
   * SIGKILL if it is still there after 2 s.
   */
  async stop(child: Deno.ChildProcess): Promise<void> {
    const signal = (name: Deno.Signal) => {
      try {
        child.kill(name);
      } catch {
        // Already gone.
      }
    };
    signal("SIGTERM");
    const timer = setTimeout(() => signal("SIGKILL"), 2_000);
    await child.status;
    clearTimeout(timer);
  }

  /** Ends every process started, one after the other, as {@linkcode Children.stop} does. */
  async stopAll(): Promise<void> {
    for (const child of this.#all) await this.stop(child).catch(() => {});
  }

  /** Kills every process still running. */
  killAll(): void {
    for (const child of this.#all) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
}

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

/**
 * CPU time a process and its children have used so far, in microseconds: the sum of each
 * thread's on-CPU time from /proc/<pid>/task/<tid>/schedstat (nanoseconds; /proc/<pid>/stat
 * counts in 10 ms ticks, too coarse for a few thousand stream frames). Children are
 * counted because nginx's master does nothing and its workers do the work.
 */
export function cpuUs(pid: number): number {
  let total = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(
        Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ")[0],
      );
      const children = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/children`);
      for (const child of children.trim().split(/\s+/).filter(Boolean)) {
        total += cpuUs(Number(child)) * 1000;
      }
    } catch {
      // The thread ended while being read.
    }
  }
  return total / 1000;
}

/**
 * Resolves once `url` answers with a status `ready` accepts (by default anything but a
 * server error), asking every 100 ms; throws after `timeoutMs`.
 */
export async function waitFor(
  url: string,
  timeoutMs = 30_000,
  ready: (status: number) => boolean = (status) => status < 500,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      await response.body?.cancel();
      if (ready(response.status)) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not come up`);
}
