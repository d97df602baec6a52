/**
 * Starts olla-ts as a real process on the runtime running the tests (`deno run` under
 * `deno test`, `bun run` under `bun test`), for tests of the command line, startup and
 * shutdown. Logs are read from stdout as JSON lines.
 */
import { spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

export const IS_BUN = "Bun" in globalThis;
export const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Arguments that run `script` on the current runtime. */
export function runArgs(script: string, args: readonly string[]): string[] {
  return IS_BUN ? ["run", script, ...args] : ["run", "-A", script, ...args];
}

/** A finished process. */
export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A running olla-ts. */
export interface OllaProcess {
  port: number;
  /** Parsed JSON log lines seen so far. */
  logs: Record<string, unknown>[];
  stderr(): string;
  signal(name: "SIGTERM" | "SIGINT" | "SIGKILL" | "SIGHUP"): void;
  exited: Promise<Finished>;
}

/** Writes `text` to a new temporary directory and returns the file's path. */
export async function tempFile(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "olla-ts-test-"));
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** Runs a command to completion. */
export function run(
  command: string,
  args: readonly string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => stdout += chunk);
    child.stderr.on("data", (chunk) => stderr += chunk);
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs olla-ts's main.ts with `args` to completion. */
export function runOlla(
  args: readonly string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
) {
  return run(process.execPath, runArgs(MAIN, args), options);
}

/**
 * Starts olla-ts with the given configuration text and waits until it listens.
 * `command` replaces the whole command line (for `deno serve` or the executable).
 */
export async function startOlla(options: {
  config?: string;
  env?: Record<string, string>;
  cwd?: string;
  command?: [string, string[]];
  timeoutMs?: number;
}): Promise<OllaProcess> {
  const configArgs = options.config === undefined
    ? []
    : ["--config", await tempFile("config.yaml", options.config)];
  const [command, args] = options.command ?? [process.execPath, runArgs(MAIN, configArgs)];
  const child = spawn(command, options.command ? [...args, ...configArgs] : args, {
    cwd: options.cwd,
    env: { ...process.env, OLLA_LOGGING_FORMAT: "json", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  let stdout = "";
  let stderr = "";
  let pending = "";
  let onLog: () => void = () => {};
  child.stdout.on("data", (chunk: Uint8Array) => {
    const text = new TextDecoder().decode(chunk);
    stdout += text;
    pending += text;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line));
      } catch {
        logs.push({ unparsed: line });
      }
    }
    onLog();
  });
  child.stderr.on("data", (chunk) => stderr += chunk);
  const exited = new Promise<Finished>((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  );
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`olla-ts did not start:\n${stdout}\n${stderr}`)),
      options.timeoutMs ?? 20_000,
    );
    const check = () => {
      const line = logs.find((log) =>
        typeof log.msg === "string" && log.msg.endsWith(" listening")
      );
      if (line) {
        clearTimeout(timer);
        resolve(Number(new URL(String(line.address)).port));
      }
    };
    onLog = check;
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`olla-ts exited with ${code} before listening:\n${stdout}\n${stderr}`));
    });
  });
  return {
    port,
    logs,
    stderr: () => stderr,
    // process.kill rather than child.kill: Deno's child_process reports a child that was
    // sent a signal through child.kill as killed by it, even when the child exited 0.
    signal: (name) => {
      try {
        process.kill(child.pid as number, name);
      } catch {
        // Already exited.
      }
    },
    exited,
  };
}
