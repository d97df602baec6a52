// Starts the compiled olla-ts with a temporary config on a free port, checks
// GET /internal/health and that cluster mode reached a local redis-server (the bundled
// Redis client loads and connects), sends SIGTERM and expects exit status 0. Plain Node.js.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const executable = resolve(process.argv[2]);
const dir = mkdtempSync(join(tmpdir(), "olla-ts-smoke-"));
const config = join(dir, "config.yaml");
const redisPort = await new Promise((done) => {
  const probe = createServer().listen(0, "127.0.0.1", () => {
    const { port } = probe.address();
    probe.close(() => done(port));
  });
});
const redis = spawn("redis-server", [
  "--port",
  String(redisPort),
  "--bind",
  "127.0.0.1",
  "--save",
  "",
], {
  stdio: "ignore",
});
writeFileSync(
  config,
  `server:\n  host: 127.0.0.1\n  port: 0\ncluster:\n  redis_url: redis://127.0.0.1:${redisPort}\n`,
);

const child = spawn(executable, ["--config", config], {
  cwd: dir,
  env: { ...process.env, OLLA_LOGGING_FORMAT: "json" },
  stdio: ["ignore", "pipe", "inherit"],
});
const fail = (message) => {
  console.error(`smoke test failed: ${message}`);
  child.kill("SIGKILL");
  redis.kill("SIGKILL");
  process.exit(1);
};
const timer = setTimeout(() => fail("no listening line within 20s"), 20_000);
let buffered = "";
child.stdout.on("data", async (chunk) => {
  process.stdout.write(chunk);
  buffered += chunk;
  const line = buffered.split("\n").find((l) => l.includes('listening"'));
  if (!line || child.listening) return;
  child.listening = true;
  clearTimeout(timer);
  const { address } = JSON.parse(line);
  const response = await fetch(new URL("/internal/health", address));
  const body = await response.json();
  if (response.status !== 200 || body.status !== "healthy") {
    fail(`health answered ${response.status}`);
  }
  console.log(`GET /internal/health -> ${response.status} ${JSON.stringify(body)}`);
  let state;
  for (let i = 0; i < 50 && state !== "connected"; i++) {
    state = (await (await fetch(new URL("/internal/cluster", address))).json()).redis.state;
    if (state !== "connected") await new Promise((r) => setTimeout(r, 100));
  }
  if (state !== "connected") fail(`cluster mode did not reach redis-server (state ${state})`);
  console.log("GET /internal/cluster -> redis connected");
  child.kill("SIGTERM");
});
child.on("exit", (code, signal) => {
  if (!child.listening) fail(`exited early with ${code ?? signal}`);
  if (code !== 0) fail(`exit status after SIGTERM was ${code ?? signal}`);
  redis.kill("SIGKILL");
  console.log("executable smoke test passed: exit status 0 after SIGTERM");
});
