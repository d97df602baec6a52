/**
 * A headless Chromium driven over the DevTools protocol, for the status page's browser
 * test: the WebSocket and child process APIs both runtimes have, no driver library.
 * Collects console errors, uncaught exceptions and every request the page makes.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** The Chromium (or Chrome) executable, if one is installed. */
export function findChromium(): string | undefined {
  const candidates = [
    process.env.CHROMIUM,
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
  ];
  return candidates.find((path): path is string => path !== undefined && existsSync(path));
}

type Json = Record<string, unknown>;

/** One page in a browser of its own. */
export interface BrowserPage {
  /** Console errors and uncaught exceptions, as text. */
  readonly errors: string[];
  /** URLs of every request the page made. */
  readonly requests: string[];
  navigate(url: string): Promise<void>;
  evaluate<T>(expression: string): Promise<T>;
  setViewport(width: number, height: number): Promise<void>;
  screenshot(): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Launches Chromium headless and opens one blank page. */
export async function openBrowser(executable: string): Promise<BrowserPage> {
  const profile = await mkdtemp(join(tmpdir(), "olla-ts-chromium-"));
  const child = spawn(executable, [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--metrics-recording-only",
    `--user-data-dir=${profile}`,
    "--remote-debugging-port=0",
    "about:blank",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr?.resume();
  const portFile = join(profile, "DevToolsActivePort");
  const deadline = Date.now() + 15_000;
  let lines: string[] = [];
  while (Date.now() < deadline) {
    try {
      lines = (await readFile(portFile, "utf8")).trim().split("\n");
      if (lines.length >= 2) break;
    } catch {
      // Not written yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (lines.length < 2) {
    child.kill("SIGKILL");
    throw new Error(`Chromium did not open its DevTools port (${executable})`);
  }
  const socket = new WebSocket(`ws://127.0.0.1:${lines[0]}${lines[1]}`);
  await new Promise((resolve, reject) => {
    socket.addEventListener("open", resolve, { once: true });
    socket.addEventListener("error", () => reject(new Error("DevTools socket failed")), {
      once: true,
    });
  });

  let nextId = 1;
  const pending = new Map<
    number,
    { resolve: (value: Json) => void; reject: (error: Error) => void }
  >();
  const waiters: { method: string; resolve: (params: Json) => void }[] = [];
  const errors: string[] = [];
  const requests: string[] = [];
  const session: { id?: string } = {};

  socket.addEventListener("message", (message) => {
    const data = JSON.parse(String(message.data)) as Json;
    if (typeof data.id === "number") {
      const call = pending.get(data.id);
      pending.delete(data.id);
      if (data.error) call?.reject(new Error(JSON.stringify(data.error)));
      else call?.resolve((data.result ?? {}) as Json);
      return;
    }
    const method = data.method as string;
    const params = (data.params ?? {}) as Json;
    if (method === "Runtime.consoleAPICalled" && params.type === "error") {
      errors.push(JSON.stringify(params.args));
    } else if (method === "Runtime.exceptionThrown") {
      errors.push(JSON.stringify(params.exceptionDetails));
    } else if (method === "Log.entryAdded" && (params.entry as Json)?.level === "error") {
      errors.push(String((params.entry as Json).text));
    } else if (method === "Network.requestWillBeSent") {
      requests.push(String((params.request as Json).url));
    }
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i].method === method) waiters.splice(i, 1)[0].resolve(params);
    }
  });

  const send = (method: string, params: Json = {}, target = session.id): Promise<Json> => {
    const id = nextId++;
    socket.send(JSON.stringify({ id, method, params, ...(target ? { sessionId: target } : {}) }));
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
  };
  const next = (method: string) =>
    new Promise<Json>((resolve) => waiters.push({ method, resolve }));

  const { targetId } = await send("Target.createTarget", { url: "about:blank" }, undefined);
  const attached = await send("Target.attachToTarget", { targetId, flatten: true }, undefined);
  session.id = attached.sessionId as string;
  for (const domain of ["Page", "Runtime", "Log", "Network"]) await send(`${domain}.enable`);

  return {
    errors,
    requests,
    async navigate(url) {
      const loaded = next("Page.loadEventFired");
      await send("Page.navigate", { url });
      await loaded;
    },
    async evaluate<T>(expression: string) {
      const result = await send("Runtime.evaluate", {
        expression,
        returnByValue: true,
        awaitPromise: true,
      });
      if (result.exceptionDetails) throw new Error(JSON.stringify(result.exceptionDetails));
      return (result.result as { value: T }).value;
    },
    async setViewport(width, height) {
      await send("Emulation.setDeviceMetricsOverride", {
        width,
        height,
        deviceScaleFactor: 1,
        mobile: width < 700,
      });
    },
    async screenshot() {
      const { data } = await send("Page.captureScreenshot", { format: "png" });
      return Uint8Array.from(atob(data as string), (char) => char.charCodeAt(0));
    },
    async close() {
      try {
        await send("Browser.close", {}, undefined);
      } catch {
        // Already gone.
      }
      socket.close();
      child.kill("SIGKILL");
      await rm(profile, { recursive: true, force: true }).catch(() => {});
    },
  };
}
