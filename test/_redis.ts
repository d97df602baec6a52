/**
 * A real `redis-server` for the cluster tests, on a free port of 127.0.0.1, with nothing
 * persisted (a restart comes back empty, as a Redis without persistence does), and a TCP
 * proxy in front of one that can delay Redis's answers.
 *
 * Without `redis-server` on the machine the tests that need it are skipped, saying so;
 * `.ci/run` installs Debian's `redis-server`, so CI always runs them.
 */
import { Buffer } from "node:buffer";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { freePort } from "./_serve.ts";

/** The redis-server binary, if installed. */
export function findRedisServer(): string | undefined {
  return ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].find((path) => existsSync(path));
}

/** Whether a Redis answers PING on `port`. */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    // A Redis with a password refuses PING with NOAUTH: it is up all the same.
    socket.once("data", (data) => done(/^(\+PONG|-NOAUTH)/.test(String(data))));
  });
}

/** A running redis-server. */
export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Kills it (SIGKILL: no goodbye to its clients). */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts `redis-server` on a free port and waits until it answers (`PING` needs no password). */
export async function startRedis(binary: string, extraArgs: string[] = []): Promise<TestRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn(binary, [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--protected-mode",
      "no",
      ...extraArgs,
    ], { stdio: "ignore" });
    const deadline = Date.now() + 10_000;
    while (!(await pong(port))) {
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const kill = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGKILL");
    await exited;
  };
  await launch();
  return { port, url: `redis://127.0.0.1:${port}`, kill, restart: launch, stop: kill };
}

/** A TCP proxy to a Redis whose answers can be held back. */
export interface DelayProxy {
  readonly url: string;
  /** Milliseconds each chunk from Redis waits before it goes on (0: none). */
  delayMs: number;
  close(): Promise<void>;
}

/** Starts a proxy to `127.0.0.1:targetPort`. */
export async function startDelayProxy(targetPort: number): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  const proxy: DelayProxy = {
    url: "",
    delayMs: 0,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((client) => {
    const upstream = connect({ host: "127.0.0.1", port: targetPort });
    sockets.add(client).add(upstream);
    client.on("data", (data) => upstream.write(data));
    // Chunks keep their order: each waits for the one before it, then for the delay.
    let queue = Promise.resolve();
    upstream.on("data", (data) => {
      const delay = proxy.delayMs;
      queue = queue.then(() =>
        delay > 0 ? new Promise((resolve) => setTimeout(resolve, delay)) : undefined
      ).then(() => {
        if (!client.destroyed) client.write(data);
      });
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as { port: number };
  return Object.assign(proxy, { url: `redis://127.0.0.1:${port}` });
}

/** Sends one command to the Redis on `port` and returns its raw RESP reply. */
export function redisCommand(port: number, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    const request = `*${args.length}\r\n${
      args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join("")
    }`;
    socket.once("error", reject);
    socket.once("connect", () => socket.write(request));
    socket.once("data", (data) => {
      socket.destroy();
      resolve(String(data));
    });
  });
}
