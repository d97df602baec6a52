/**
 * Full garbage collections on demand, on either runtime: Deno through V8's `gc` (exposed
 * with `node:v8`), Bun through `Bun.gc`. For tests of what must survive a collection, or
 * be collected by one.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

interface BunGc {
  gc(force: boolean): void;
}

/** One full collection of the heap. */
export function collectGarbage(): void {
  const bun = (globalThis as { Bun?: BunGc }).Bun;
  if (bun) return bun.gc(true);
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

/** Runs `run` while the heap is collected every few milliseconds, as a busy server's is. */
export async function whileCollectingGarbage<T>(run: () => Promise<T>): Promise<T> {
  const timer = setInterval(collectGarbage, 10);
  try {
    return await run();
  } finally {
    clearInterval(timer);
  }
}
