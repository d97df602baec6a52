/**
 * `deno task demo`: olla-ts in front of two fake LMDeploy servers serving different
 * models (the same fake the tests use) and two fake engines for the Anthropic Messages
 * API (one serving it natively, one translated), with a curl line for every endpoint, so
 * anyone can try the LMDeploy and Anthropic APIs without a GPU. Ctrl+C stops everything.
 *
 * `--check` sends every example request once, prints the statuses and exits (non-zero
 * when one is not what the README promises); the test suite runs it that way.
 *
 * @module
 */
import { parseConfig } from "../lib/config/load.ts";
import { Logger } from "../lib/log.ts";
import { BUILT_IN_PROFILES } from "../lib/profiles/built_in.ts";
import { ProfileSet } from "../lib/profiles/profile.ts";
import { detectRuntime } from "../lib/startup/runtime.ts";
import { createService, serveOptions } from "../lib/startup/service.ts";
import { startAnthropicEngine } from "../test/fakes/anthropic_engine.ts";
import { startFakeLmdeploy } from "../test/fakes/lmdeploy.ts";

const runtime = detectRuntime();
const check = runtime.args().includes("--check");
const port = Number(runtime.env("OLLA_SERVER_PORT") ?? (check ? 0 : 40114));

const chatModel = "internlm/internlm2_5-7b-chat";
const rewardModel = "internlm/internlm2-1_8b-reward";
const gpuA = await startFakeLmdeploy({ modelName: chatModel, adapters: ["my-lora"], itlMs: 80 });
const gpuB = await startFakeLmdeploy({ modelName: rewardModel, rewardModel: true, itlMs: 80 });
// The Anthropic Messages API: passed through to an engine that serves it, translated for one that does not.
const nativeModel = "Qwen/Qwen3-8B";
const translatedModel = "qwen3-coder";
const gpuC = await startAnthropicEngine({ models: [nativeModel], native: true });
const gpuD = await startAnthropicEngine({ models: [translatedModel] });

const profiles = new ProfileSet(BUILT_IN_PROFILES);
const { config } = parseConfig(
  `
server: { host: 127.0.0.1, port: ${port} }
discovery:
  static:
    endpoints:
      - { name: gpu-a, url: "${gpuA.url}", type: lmdeploy, check_interval: 1s }
      - { name: gpu-b, url: "${gpuB.url}", type: lmdeploy, check_interval: 1s }
      - { name: gpu-c, url: "${gpuC.url}", type: vllm, check_interval: 1s }
      - { name: gpu-d, url: "${gpuD.url}", type: sglang, check_interval: 1s }
model_aliases:
  claude-sonnet-4-5: ["${translatedModel}"]
`,
  { env: () => undefined, knownTypes: profiles.typeNames },
);
const logger = new Logger({
  level: check ? "warn" : "info",
  format: "text",
  write: (line) => runtime.writeStdout(line),
});
const service = createService({ config, profiles, logger, runtime });
const serving = runtime.serve(serveOptions(config, service));
const server = await serving.listening;
service.start();
const base = `http://127.0.0.1:${server.port}`;

const json = (body: unknown) => JSON.stringify(body);
const examples: {
  title: string;
  method: "GET" | "POST";
  path: string;
  body?: unknown;
  expect: number;
}[] = [
  {
    title: "olla-ts's view of LMDeploy health",
    method: "GET",
    path: "lmdeploy/health",
    expect: 200,
  },
  {
    title: "models of both endpoints, in LMDeploy's card shape",
    method: "GET",
    path: "lmdeploy/v1/models",
    expect: 200,
  },
  { title: "sleep state, per endpoint", method: "GET", path: "lmdeploy/is_sleeping", expect: 200 },
  {
    title: "chat (routed to gpu-a by model)",
    method: "POST",
    path: "lmdeploy/v1/chat/completions",
    body: { model: chatModel, messages: [{ role: "user", content: "Hello!" }] },
    expect: 200,
  },
  {
    title: "chat, streamed with usage",
    method: "POST",
    path: "lmdeploy/v1/chat/completions",
    body: {
      model: chatModel,
      messages: [{ role: "user", content: "Hello!" }],
      stream: true,
      stream_options: { include_usage: true },
    },
    expect: 200,
  },
  {
    title: "text completion",
    method: "POST",
    path: "lmdeploy/v1/completions",
    body: { model: "my-lora", prompt: "Once upon a time" },
    expect: 200,
  },
  {
    title: "token encoding (any endpoint)",
    method: "POST",
    path: "lmdeploy/v1/encode",
    body: { input: "hello" },
    expect: 200,
  },
  {
    title: "LMDeploy's native generate, streamed",
    method: "POST",
    path: "lmdeploy/generate",
    body: { prompt: "Hello", max_tokens: 6, stream: true },
    expect: 200,
  },
  {
    title: "reward pooling (routed to gpu-b by model)",
    method: "POST",
    path: "lmdeploy/pooling",
    body: { model: rewardModel, input: ["a good answer", "a bad answer"] },
    expect: 200,
  },
  {
    title: "embeddings: refused by olla-ts with a pointer to pooling",
    method: "POST",
    path: "lmdeploy/v1/embeddings",
    body: { model: chatModel, input: "x" },
    expect: 400,
  },
  {
    title: "management: refused unless enabled",
    method: "POST",
    path: "lmdeploy/sleep",
    body: {},
    expect: 403,
  },
  {
    title: "an unknown model: 404 in the shared error envelope",
    method: "POST",
    path: "lmdeploy/v1/chat/completions",
    body: { model: "no/such-model", messages: [] },
    expect: 404,
  },
  {
    title: "Anthropic Messages, passed through to gpu-c (it serves the API itself)",
    method: "POST",
    path: "anthropic/v1/messages",
    body: { model: nativeModel, max_tokens: 64, messages: [{ role: "user", content: "Hello!" }] },
    expect: 200,
  },
  {
    title: "Anthropic Messages through an alias, translated for gpu-d, streamed",
    method: "POST",
    path: "anthropic/v1/messages",
    body: {
      model: "claude-sonnet-4-5",
      max_tokens: 64,
      stream: true,
      messages: [{ role: "user", content: "Hello!" }],
    },
    expect: 200,
  },
  {
    title: "Anthropic count_tokens (the engine's own count, else an estimate)",
    method: "POST",
    path: "anthropic/v1/messages/count_tokens",
    body: { model: nativeModel, messages: [{ role: "user", content: "Hello!" }] },
    expect: 200,
  },
  { title: "Anthropic's model list", method: "GET", path: "anthropic/v1/models", expect: 200 },
  {
    title: "every OpenAI-compatible endpoint's models, at the OpenAI base URL /olla/openai/v1",
    method: "GET",
    path: "openai/v1/models",
    expect: 200,
  },
  {
    title: "chat at /olla/openai/v1 (any OpenAI-compatible backend, routed by model)",
    method: "POST",
    path: "openai/v1/chat/completions",
    body: { model: chatModel, messages: [{ role: "user", content: "Hello!" }] },
    expect: 200,
  },
];

function curl(example: (typeof examples)[number]): string {
  const url = `${base}/olla/${example.path}`;
  // -i shows the answer's headers: the X-Olla-* ones say where and how it was routed.
  if (example.method === "GET") return `curl -si ${url}`;
  const stream = (example.body as { stream?: boolean }).stream ? "-N " : "";
  return `curl -si ${stream}${url} -H 'content-type: application/json' -d '${json(example.body)}'`;
}

async function waitForModels(): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (service.registry.endpoints.every((endpoint) => endpoint.models !== undefined)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function shutdown(code: number): Promise<never> {
  service.stop();
  await server.shutdown();
  await gpuA.close();
  await gpuB.close();
  await gpuC.close();
  await gpuD.close();
  return runtime.exit(code);
}

await waitForModels();
if (check) {
  let failed = 0;
  for (const example of examples) {
    const response = await fetch(`${base}/olla/${example.path}`, {
      method: example.method,
      headers: example.body === undefined ? {} : { "content-type": "application/json" },
      body: example.body === undefined ? undefined : json(example.body),
    });
    await response.arrayBuffer();
    const ok = response.status === example.expect;
    if (!ok) failed++;
    runtime.writeStdout(
      `${ok ? "ok  " : "FAIL"} ${response.status} ${example.method} ${example.path}\n`,
    );
  }
  await shutdown(failed === 0 ? 0 : 1);
}

runtime.writeStdout(`
olla-ts demo: ${base} in front of two fake LMDeploy servers and two fake engines
  gpu-a ${gpuA.url} serves ${chatModel} (+ LoRA adapter my-lora)
  gpu-b ${gpuB.url} serves ${rewardModel} (a reward model, for /pooling)
  gpu-c ${gpuC.url} serves ${nativeModel} and the Anthropic Messages API itself
  gpu-d ${gpuD.url} serves ${translatedModel} (OpenAI chat only: Messages are translated)

Try:
${examples.map((example) => `  # ${example.title}\n  ${curl(example)}\n`).join("\n")}
  # point the OpenAI SDK at ${base}/olla/lmdeploy/v1
  # point the Anthropic SDK (or Claude Code: ANTHROPIC_BASE_URL) at ${base}/olla/anthropic

Ctrl+C stops the demo.
`);
runtime.onShutdownSignal(() => void shutdown(0));
