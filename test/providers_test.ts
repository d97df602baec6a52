// deno-lint-ignore-file no-non-null-assertion
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { post, readText, startOlla, type TestOlla, until } from "./_harness.ts";
import { type EngineKind, type FakeEngine, startFakeEngine } from "./fakes/engines.ts";
import { type FakeLmdeploy, startFakeLmdeploy } from "./fakes/lmdeploy.ts";
import { BUILT_IN_PROFILES } from "../lib/profiles/built_in.ts";
import { loadProfiles } from "../lib/profiles/loader.ts";

const KINDS: EngineKind[] = [
  "vllm",
  "sglang",
  "ollama",
  "llamacpp",
  "lm-studio",
  "openai-compatible",
];
const MODEL_OF: Record<EngineKind, string> = {
  vllm: "meta-llama/Llama-3.1-8B-Instruct",
  sglang: "Qwen/Qwen2.5-7B-Instruct",
  ollama: "llama3.2:3b",
  llamacpp: "gemma-2-2b-it.gguf",
  "lm-studio": "lmstudio-community/phi-4",
  "openai-compatible": "gpt-local",
};
const SHARED = "shared/model";
const LMDEPLOY_ONLY = "internlm/internlm2_5-7b-chat";

const endpoint = (name: string, url: string, type: string, extra = "") =>
  `      - { name: ${name}, url: "${url}", type: ${type}, check_interval: 200ms${extra} }\n`;

function config(entries: string[], extra = ""): string {
  return `server:\n  rate_limits: { global_requests_per_minute: 0, per_ip_requests_per_minute: 0 }\n` +
    `discovery:\n  static:\n    endpoints:\n${entries.join("")}${extra}`;
}

describe("built-in profiles", () => {
  test("cover every provider with a route prefix, health path and model list", () => {
    const names = BUILT_IN_PROFILES.map((profile) => profile.name);
    // Every type Olla ships (olla-compat.md section 1.3), plus LMDeploy first.
    assert.deepEqual(names, [
      "lmdeploy",
      "vllm",
      "sglang",
      "ollama",
      "llamacpp",
      "lm-studio",
      "litellm",
      "lemonade",
      "docker-model-runner",
      "vllm-mlx",
      "omlx",
      "openai-compatible",
    ]);
    for (const profile of BUILT_IN_PROFILES) {
      assert.ok(profile.prefixes.length > 0, profile.name);
      assert.ok(profile.health.path.startsWith("/"), profile.name);
      assert.ok(
        profile.routes.some((rule) => rule.action === "models"),
        `${profile.name} lists models`,
      );
      assert.ok(profile.defaultPort > 0);
    }
    const lmStudio = BUILT_IN_PROFILES.find((profile) => profile.name === "lm-studio");
    assert.deepEqual(lmStudio?.prefixes, ["lmstudio", "lm-studio", "lm_studio"]);
    assert.deepEqual(
      BUILT_IN_PROFILES.find((profile) => profile.name === "openai-compatible")?.aliases,
      ["openai"],
    );
  });
});

describe("providers", () => {
  const engines = new Map<EngineKind, FakeEngine>();
  let lmdeploy: FakeLmdeploy;
  let olla: TestOlla;

  before(async () => {
    for (const kind of KINDS) {
      const models = kind === "vllm" || kind === "sglang"
        ? [MODEL_OF[kind], SHARED]
        : [MODEL_OF[kind]];
      engines.set(kind, await startFakeEngine(kind, models));
    }
    lmdeploy = await startFakeLmdeploy({ modelName: LMDEPLOY_ONLY });
    olla = await startOlla(config([
      ...KINDS.map((kind) =>
        endpoint(kind, engines.get(kind)!.url, kind, kind === "vllm" ? ", priority: 200" : "")
      ),
      endpoint("lmdeploy", lmdeploy.url, "lmdeploy"),
    ], "proxy:\n  load_balancer: priority\n"));
  });
  after(async () => {
    await olla.close();
    for (const engine of engines.values()) await engine.close();
    await lmdeploy.close();
  });

  test("each type is health-checked and its models discovered in its own format", () => {
    for (const kind of KINDS) {
      const view = olla.service.registry.get(kind);
      assert.equal(view?.status, "healthy", kind);
      assert.ok(view?.models?.has(MODEL_OF[kind]), `${kind} lists ${MODEL_OF[kind]}`);
    }
    assert.equal(
      olla.service.registry.get("vllm")?.models?.get(MODEL_OF.vllm)?.raw.max_model_len,
      32768,
    );
    assert.equal(
      olla.service.registry.get("ollama")?.models?.get(MODEL_OF.ollama)?.raw.digest,
      "sha256:00",
    );
    assert.equal(
      engines.get("ollama")!.count("/api/tags") >= 1,
      true,
      "Ollama's list comes from /api/tags",
    );
  });

  test("llama.cpp's loading 503 keeps it out of rotation until the model is loaded", async () => {
    const llama = engines.get("llamacpp")!;
    llama.loading = true;
    await until(() => olla.service.registry.get("llamacpp")?.status === "loading");
    const refused = await post(olla, "/olla/llamacpp/v1/chat/completions", {
      model: MODEL_OF.llamacpp,
      messages: [],
    });
    assert.equal(refused.status, 503);
    assert.match((await refused.json()).message, /llamacpp: loading/);
    llama.loading = false;
    await until(() => olla.service.registry.get("llamacpp")?.status === "healthy");
    const served = await post(olla, "/olla/llamacpp/completion", { prompt: "x" });
    assert.equal(served.status, 200);
    assert.equal(served.headers.get("x-olla-backend-type"), "llamacpp");
    await served.body?.cancel();
  });

  test("provider routes reach only endpoints of their type", async () => {
    const sglangBefore = engines.get("sglang")!.count("/v1/chat/completions");
    const wrongType = await post(olla, "/olla/vllm/v1/chat/completions", {
      model: MODEL_OF.sglang,
      messages: [],
    });
    assert.equal(wrongType.status, 404, "an SGLang model is not served by /olla/vllm/");
    await wrongType.body?.cancel();
    assert.equal(engines.get("sglang")!.count("/v1/chat/completions"), sglangBefore);
    for (const kind of KINDS) {
      const prefix = kind === "lm-studio" ? "lmstudio" : kind;
      const response = await post(olla, `/olla/${prefix}/v1/chat/completions`, {
        model: MODEL_OF[kind],
        messages: [],
      });
      assert.equal(response.status, 200, kind);
      assert.equal(response.headers.get("x-olla-backend-type"), kind);
      assert.equal(response.headers.get("x-olla-endpoint"), kind);
      await response.body?.cancel();
    }
    for (const prefix of ["lm-studio", "lm_studio"]) {
      const response = await post(olla, `/olla/${prefix}/v1/chat/completions`, {
        model: MODEL_OF["lm-studio"],
        messages: [],
      });
      assert.equal(response.headers.get("x-olla-endpoint"), "lm-studio", prefix);
      await response.body?.cancel();
    }
  });

  test("native paths are forwarded and management paths refused", async () => {
    const cases: [string, string, unknown, number][] = [
      ["POST", "/olla/ollama/api/chat", { model: MODEL_OF.ollama, messages: [] }, 200],
      [
        "POST",
        "/olla/ollama/api/generate",
        { model: MODEL_OF.ollama, prompt: "x", stream: false },
        200,
      ],
      ["POST", "/olla/ollama/api/embed", { model: MODEL_OF.ollama, input: "x" }, 200],
      ["POST", "/olla/ollama/api/show", { model: MODEL_OF.ollama }, 200],
      // Olla's answer to model management through a multi-instance proxy.
      ["POST", "/olla/ollama/api/pull", { model: "x" }, 501],
      ["DELETE", "/olla/ollama/api/delete", { model: "x" }, 501],
      ["POST", "/olla/vllm/tokenize", { model: MODEL_OF.vllm, prompt: "x" }, 200],
      ["POST", "/olla/vllm/rerank", { model: MODEL_OF.vllm, query: "q", documents: [] }, 200],
      ["POST", "/olla/sglang/generate", { text: "x" }, 200],
      ["GET", "/olla/sglang/get_model_info", undefined, 200],
      ["POST", "/olla/llamacpp/tokenize", { content: "x" }, 200],
      ["GET", "/olla/llamacpp/slots", undefined, 403],
      ["POST", "/olla/openai-compatible/v1/embeddings", {
        model: MODEL_OF["openai-compatible"],
        input: "x",
      }, 200],
    ];
    for (const [method, path, body, status] of cases) {
      const response = await fetch(`${olla.url}${path}`, {
        method,
        headers: { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      assert.equal(response.status, status, `${method} ${path}`);
      await response.body?.cancel();
    }
    assert.equal(engines.get("ollama")!.count("/api/pull"), 0);
    assert.equal(engines.get("llamacpp")!.count("/slots"), 0);
    // Its usage is read from the stream's last line as it passes.
    const tokens = async () => {
      const metrics = await (await fetch(`${olla.url}/internal/metrics`)).text();
      const value = (type: string) =>
        Number(
          metrics.match(
            new RegExp(
              `^olla_tokens_total\\{endpoint="ollama",model="${MODEL_OF.ollama}",type="${type}",estimated="false"\\} (\\d+)$`,
              "m",
            ),
          )?.[1] ?? 0,
        );
      return { prompt: value("prompt"), completion: value("completion") };
    };
    const before = await tokens();
    const ndjson = await post(olla, "/olla/ollama/api/chat", {
      model: MODEL_OF.ollama,
      messages: [],
    });
    assert.equal(ndjson.headers.get("content-type"), "application/x-ndjson");
    assert.equal(
      (await readText(ndjson)).trim().split("\n").length,
      3,
    );
    let counted = before;
    await until(
      async () => (counted = await tokens()).completion !== before.completion,
      3_000,
      "the stream's token counts in olla_tokens_total",
    );
    assert.deepEqual(
      {
        prompt: counted.prompt - before.prompt,
        completion: counted.completion - before.completion,
      },
      { prompt: 4, completion: 2 },
      "prompt_eval_count and eval_count of the last line",
    );
  });

  test("unified routes choose the endpoint by model across types", async () => {
    for (const kind of KINDS) {
      for (const prefix of ["proxy", "openai"]) {
        const response = await post(olla, `/olla/${prefix}/v1/chat/completions`, {
          model: MODEL_OF[kind],
          messages: [],
        });
        assert.equal(response.status, 200, `${prefix} ${kind}`);
        assert.equal(response.headers.get("x-olla-backend-type"), kind);
        await response.body?.cancel();
      }
    }
    const lmd = await post(olla, "/olla/proxy/v1/chat/completions", {
      model: LMDEPLOY_ONLY,
      messages: [],
    });
    assert.equal(lmd.headers.get("x-olla-backend-type"), "lmdeploy");
    await lmd.body?.cancel();
    const completions = await post(olla, "/olla/openai/v1/completions", {
      model: MODEL_OF.sglang,
      prompt: "x",
      stream: true,
    });
    assert.match(await readText(completions), /"text":" sglang"/);
  });

  test("the unified route fails over across types", async () => {
    const vllm = engines.get("vllm")!;
    vllm.failWith = 503;
    try {
      const response = await post(olla, "/olla/proxy/v1/chat/completions", {
        model: SHARED,
        messages: [],
      });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-olla-backend-type"), "sglang");
      assert.equal(response.headers.get("x-olla-failovers"), "1");
      await response.body?.cancel();
    } finally {
      vllm.failWith = undefined;
    }
  });

  test("embeddings on a unified route never land on LMDeploy; an LMDeploy-only model is pointed to pooling", async () => {
    const before = lmdeploy.count("/v1/embeddings");
    const onLmdeploy = await post(olla, "/olla/proxy/v1/embeddings", {
      model: LMDEPLOY_ONLY,
      input: "x",
    });
    assert.equal(onLmdeploy.status, 400);
    assert.match((await onLmdeploy.json()).message, /\/olla\/lmdeploy\/pooling/);
    assert.equal(lmdeploy.count("/v1/embeddings"), before);
    const onVllm = await post(olla, "/olla/proxy/v1/embeddings", {
      model: MODEL_OF.vllm,
      input: "x",
    });
    assert.equal(onVllm.status, 200);
    assert.equal(onVllm.headers.get("x-olla-backend-type"), "vllm");
    await onVllm.body?.cancel();
  });

  test("model listings come in each format", async () => {
    const unified = await (await fetch(`${olla.url}/olla/proxy/v1/models`)).json();
    assert.equal(unified.object, "list");
    const ids = unified.data.map((model: { id: string }) => model.id);
    for (const kind of KINDS) assert.ok(ids.includes(MODEL_OF[kind]), kind);
    assert.ok(ids.includes(LMDEPLOY_ONLY));
    assert.deepEqual(Object.keys(unified.data[0]), ["id", "object", "created", "owned_by"]);

    const ollama = await (await fetch(`${olla.url}/olla/models?format=ollama&type=ollama`)).json();
    assert.deepEqual(ollama.models.map((m: { name: string }) => m.name), [MODEL_OF.ollama]);
    const vllm = await (await fetch(`${olla.url}/olla/models?format=vllm&type=vllm`)).json();
    assert.equal(vllm.data[0].max_model_len, 32768);
    const tags = await (await fetch(`${olla.url}/olla/ollama/api/tags`)).json();
    assert.deepEqual(tags.models.map((m: { name: string }) => m.name), [MODEL_OF.ollama]);
    const v0 = await (await fetch(`${olla.url}/olla/lmstudio/api/v0/models`)).json();
    assert.equal(v0.data[0].id, MODEL_OF["lm-studio"]);
    const sglangOnly = await (await fetch(`${olla.url}/olla/sglang/v1/models`)).json();
    assert.deepEqual(sglangOnly.data.map((m: { id: string }) => m.id), [MODEL_OF.sglang, SHARED]);
  });
});

/** Loads the built-in profiles plus `dir`'s files, from the real file system. */
function profilesFrom(dir: string | undefined, exclude: string[] = []) {
  return loadProfiles({
    dir,
    include: [],
    exclude,
    listDir: readdir,
    readTextFile: (p) => readFile(p, "utf8"),
  });
}

describe("user profiles", () => {
  test("a profile file adds a new provider with no code change", async () => {
    const dir = await mkdtemp(join(tmpdir(), "olla-profiles-"));
    await writeFile(
      join(dir, "tgi.yaml"),
      `name: tgi
display_name: Text Generation Inference
prefixes: [tgi]
openai_compatible: true
default_port: 8080
health: { path: /v1/models, format: status }
models: { path: /v1/models, format: openai }
routes:
  - { path: v1/models, action: models }
  - { path: v1/chat/completions }
  - { path: generate, action: refuse, status: 400, methods: [POST], message: "use v1/chat/completions" }
`,
    );
    const profiles = await profilesFrom(dir);
    assert.ok(profiles.forType("tgi"));
    const engine = await startFakeEngine("openai-compatible", ["bigscience/bloom"]);
    const olla = await startOlla(config([endpoint("tgi-1", engine.url, "tgi")]), {
      profiles: profiles.all,
    });
    try {
      const response = await post(olla, "/olla/tgi/v1/chat/completions", {
        model: "bigscience/bloom",
        messages: [],
      });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-olla-backend-type"), "tgi");
      await response.body?.cancel();
      const refused = await post(olla, "/olla/tgi/generate", {});
      assert.equal(refused.status, 400);
      assert.equal((await refused.json()).message, "use v1/chat/completions");
      const unified = await post(olla, "/olla/proxy/v1/chat/completions", {
        model: "bigscience/bloom",
        messages: [],
      });
      assert.equal(unified.headers.get("x-olla-endpoint"), "tgi-1");
      await unified.body?.cancel();
    } finally {
      await olla.close();
      await engine.close();
    }
  });

  test("a file overrides the built-in profile of the same name", async () => {
    const dir = await mkdtemp(join(tmpdir(), "olla-profiles-"));
    await writeFile(
      join(dir, "vllm.yml"),
      "name: vllm\nhealth: { path: /ping }\nroutes:\n  - { path: v1/chat/completions }\n",
    );
    const profiles = await profilesFrom(dir);
    assert.equal(profiles.forType("vllm")?.health.path, "/ping");
    assert.equal(profiles.forType("vllm")?.source, join(dir, "vllm.yml"));
  });

  test("a broken profile file is refused with its path, line and the field at fault", async () => {
    const dir = await mkdtemp(join(tmpdir(), "olla-profiles-"));
    const file = join(dir, "broken.yaml");
    await writeFile(
      file,
      "name: broken\nroutes:\n  - path: v1/chat\n    action: explode\n  - { path: ../escape }\n",
    );
    const attempt = profilesFrom(dir);
    await assert.rejects(attempt, (error: Error) => {
      assert.match(
        error.message,
        new RegExp(
          `${file.replaceAll("/", "\\/")}:4:13: routes\\[0\\]\\.action: "explode" is not one of`,
        ),
      );
      assert.match(
        error.message,
        /broken\.yaml:5:13: routes\[1\]\.path: "\.\.\/escape" is not a plain relative path/,
      );
      return true;
    });
    await writeFile(file, "name: [unclosed\n");
    await assert.rejects(
      profilesFrom(dir),
      /broken\.yaml:\d+:\d+: YAML syntax error/,
    );
    await writeFile(file, "name: proxy2\nprefixes: [proxy]\nroutes:\n  - { path: x }\n");
    await assert.rejects(
      profilesFrom(dir),
      /prefixes\[0\]: "proxy" is reserved/,
    );
  });

  test("profile_filter narrows the profiles, so an excluded type is refused in endpoints", async () => {
    const profiles = await profilesFrom(undefined, ["ollama", "lm-*"]);
    assert.equal(profiles.forType("ollama"), undefined);
    assert.equal(profiles.forType("lmstudio"), undefined);
    assert.ok(profiles.forType("vllm"));
  });
});
