// deno-lint-ignore-file no-console
/**
 * Runs the container image's filesystem the way a container runtime would run its
 * entrypoint, where none can start processes: under chroot as the image's user, with the
 * image's environment and working directory, in front of a fake LMDeploy on the host.
 * Checks `/internal/health`, a chat request, `olla-ts --healthcheck` (the HEALTHCHECK) and
 * a clean SIGTERM exit.
 *
 * Usage: deno run -A scripts/container_smoke.ts ROOTFS USER ENV_JSON WORKDIR
 *
 * @module
 */
import { startFakeLmdeploy } from "../test/fakes/lmdeploy.ts";

const [root, user, envJson, workdir] = Deno.args;
const env: Record<string, string> = Object.fromEntries(
  (JSON.parse(envJson) as string[]).map((entry) => {
    const at = entry.indexOf("=");
    return [entry.slice(0, at), entry.slice(at + 1)];
  }),
);

function fail(message: string): never {
  console.error(`container smoke test failed: ${message}`);
  Deno.exit(1);
}

function inImage(args: string[], stdout: "inherit" | "null" = "inherit") {
  return new Deno.Command("chroot", {
    args: [
      `--userspec=${user}`,
      root,
      "/bin/sh",
      "-c",
      `cd ${workdir} && exec "$@"`,
      "sh",
      ...args,
    ],
    env,
    clearEnv: true,
    stdout,
    stderr: "inherit",
  });
}

const fake = await startFakeLmdeploy();
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const port = (listener.addr as Deno.NetAddr).port;
listener.close();
await Deno.mkdir(`${root}${workdir}`, { recursive: true });
await Deno.writeTextFile(
  `${root}${workdir}/config.yaml`,
  `server:\n  port: ${port}\ndiscovery:\n  static:\n    endpoints:\n` +
    `      - { name: gpu, url: "${fake.url}", type: lmdeploy, check_interval: 500ms }\n`,
);
const olla = inImage(["/usr/local/bin/olla-ts"], "null").spawn();
const base = `http://127.0.0.1:${port}`;
try {
  let models = 0;
  for (let i = 0; i < 100 && models === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    models = await fetch(`${base}/olla/lmdeploy/v1/models`).then(
      async (r) => (await r.json()).data?.length ?? 0,
      () => 0,
    );
  }
  if (models === 0) fail("olla-ts in the image did not serve the fake's models within 20 s");
  const health = await fetch(`${base}/internal/health`);
  if (health.status !== 200) fail(`/internal/health answered ${health.status}`);
  await health.body?.cancel();
  const chat = await fetch(`${base}/olla/lmdeploy/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: fake.modelName, messages: [{ role: "user", content: "hi" }] }),
  });
  if (chat.status !== 200) fail(`a chat answered ${chat.status}: ${await chat.text()}`);
  console.log("chat:", (await chat.json()).choices?.[0]?.message?.content);
  const check = await inImage(["/usr/local/bin/olla-ts", "--healthcheck"]).output();
  if (!check.success) fail(`--healthcheck exited ${check.code}`);
  console.log("--healthcheck: exit 0");
} finally {
  olla.kill("SIGTERM");
}
const { code } = await olla.status;
await fake.close();
if (code !== 0) fail(`olla-ts exited ${code} on SIGTERM`);
console.log("container smoke test passed");
