/**
 * The only place that decides which runtime olla-ts runs on. The adapters
 * (runtime_deno.ts, runtime_bun.ts) are the only modules that touch Deno or Bun globals;
 * everything else in lib/ uses web-standard APIs and receives what it needs from them.
 *
 * @module
 */
import type { Runtime } from "./runtime_api.ts";
import { type BunGlobal, createBunRuntime } from "./runtime_bun.ts";
import { createDenoRuntime } from "./runtime_deno.ts";

const globals = globalThis as unknown as { Bun?: BunGlobal };

/** Returns the runtime this process runs on. */
export function detectRuntime(): Runtime {
  if (globals.Bun) return createBunRuntime(globals.Bun);
  if (typeof Deno !== "undefined") return createDenoRuntime();
  throw new Error("Cannot start olla-ts: it runs on Deno or Bun, and neither was detected");
}
