/**
 * Small fakes of the other engines olla-ts fronts, each following its engine's public
 * API closely enough for discovery, health and routing tests: vLLM, SGLang, Ollama,
 * llama.cpp (with its loading state), LM Studio and a generic OpenAI-compatible server.
 */
import { serve, type TestServer } from "../_serve.ts";

export type EngineKind =
  | "vllm"
  | "sglang"
  | "ollama"
  | "llamacpp"
  | "lm-studio"
  | "openai-compatible";

export interface FakeEngine {
  readonly kind: EngineKind;
  readonly url: string;
  readonly port: number;
  readonly models: string[];
  readonly requests: { method: string; path: string; headers: Headers; body: string }[];
  /** llama.cpp only: while true, /health answers 503 "Loading model". */
  loading: boolean;
  /** Answer every POST with this status (for failover tests). */
  failWith: number | undefined;
  count(path: string): number;
  close(): Promise<void>;
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });

function openAiChat(kind: string, model: string, stream: boolean, chat: boolean): Response {
  const id = `${kind}-${crypto.randomUUID().slice(0, 8)}`;
  const words = ["Hi", " from", ` ${kind}`];
  if (!stream) {
    return json({
      id,
      object: chat ? "chat.completion" : "text_completion",
      created: 1,
      model,
      choices: [
        chat
          ? {
            index: 0,
            message: { role: "assistant", content: words.join("") },
            finish_reason: "stop",
          }
          : { index: 0, text: words.join(""), finish_reason: "stop" },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 },
    });
  }
  const events = words.map((word) =>
    JSON.stringify({
      id,
      object: chat ? "chat.completion.chunk" : "text_completion",
      created: 1,
      model,
      choices: [chat ? { index: 0, delta: { content: word } } : { index: 0, text: word }],
    })
  );
  const body = events.map((event) => `data: ${event}\n\n`).join("") + "data: [DONE]\n\n";
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

/** Starts a fake engine serving `models`. */
export async function startFakeEngine(kind: EngineKind, models: string[]): Promise<FakeEngine> {
  const requests: FakeEngine["requests"] = [];
  const state = { loading: false, failWith: undefined as number | undefined };

  const card = (id: string) => ({
    id,
    object: "model",
    created: 1700000000,
    owned_by: kind,
    ...(kind === "vllm" ? { root: id, parent: null, max_model_len: 32768, permission: [] } : {}),
  });

  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname;
    const body = await request.text();
    requests.push({ method: request.method, path, headers: request.headers, body });
    let payload: Record<string, unknown> = {};
    try {
      payload = body ? JSON.parse(body) : {};
    } catch {
      return json({ error: { message: "bad json" } }, 400);
    }
    if (request.method === "POST" && state.failWith) {
      return json({ error: { message: "fake failure" } }, state.failWith);
    }
    const model = typeof payload.model === "string" ? payload.model : models[0];
    if (
      request.method === "POST" && typeof payload.model === "string" &&
      !models.includes(payload.model)
    ) {
      return json({
        error: { message: `model '${payload.model}' not found`, type: "NotFoundError" },
      }, 404);
    }
    const stream = payload.stream === true;
    // OpenAI paths every engine here serves.
    if (path === "/v1/models" && request.method === "GET") {
      return json({ object: "list", data: models.map(card) });
    }
    if (path === "/v1/chat/completions") return openAiChat(kind, model, stream, true);
    if (path === "/v1/completions") return openAiChat(kind, model, stream, false);
    if (path === "/v1/embeddings") {
      return json({
        object: "list",
        data: [{ object: "embedding", index: 0, embedding: [0.1, 0.2] }],
        model,
        usage: { prompt_tokens: 1, total_tokens: 1 },
      });
    }
    switch (kind) {
      case "vllm":
        if (path === "/health") return new Response(null, { status: 200 });
        if (path === "/tokenize") {
          return json({ tokens: [1, 2, 3], count: 3, max_model_len: 32768 });
        }
        if (path === "/detokenize") return json({ prompt: "abc" });
        if (["/pooling", "/score", "/v1/score", "/rerank", "/v1/rerank"].includes(path)) {
          return json({ object: "list", data: [{ index: 0, score: 0.5 }] });
        }
        break;
      case "sglang":
        if (path === "/health") return new Response(null, { status: 200 });
        if (path === "/generate") {
          return json({
            text: "Hi from sglang",
            meta_info: { prompt_tokens: 2, completion_tokens: 3 },
          });
        }
        if (path === "/get_model_info") return json({ model_path: models[0], is_generation: true });
        break;
      case "ollama":
        if (path === "/" && request.method === "GET") return new Response("Ollama is running");
        if (path === "/api/tags") {
          return json({
            models: models.map((name) => ({
              name,
              model: name,
              modified_at: "2026-01-01T00:00:00Z",
              size: 1,
              digest: "sha256:00",
              details: { family: "llama" },
            })),
          });
        }
        if (path === "/api/version") return json({ version: "0.9.0" });
        if (path === "/api/chat" || path === "/api/generate") {
          // Ollama's last line carries the counts, at the top level.
          const counts = { done_reason: "stop", prompt_eval_count: 4, eval_count: 2 };
          const chunk = (content: string, done: boolean) =>
            JSON.stringify({
              model,
              ...(path === "/api/chat"
                ? { message: { role: "assistant", content } }
                : { response: content }),
              done,
              ...(done ? counts : {}),
            });
          if (payload.stream === false) return json(JSON.parse(chunk("Hi from ollama", true)));
          // Ollama streams NDJSON by default.
          return new Response(
            `${chunk("Hi", false)}\n${chunk(" from ollama", false)}\n${chunk("", true)}\n`,
            {
              headers: { "content-type": "application/x-ndjson" },
            },
          );
        }
        if (path === "/api/embed" || path === "/api/embeddings") {
          return json({ model, embeddings: [[0.1, 0.2]] });
        }
        if (path === "/api/show") {
          return json({ modelfile: "FROM x", details: { family: "llama" } });
        }
        break;
      case "llamacpp":
        if (path === "/health") {
          return state.loading
            ? json(
              { error: { code: 503, message: "Loading model", type: "unavailable_error" } },
              503,
            )
            : json({ status: "ok" });
        }
        if (path === "/completion") {
          return json({ content: "Hi from llama.cpp", stop: true, tokens_predicted: 3 });
        }
        if (path === "/tokenize") return json({ tokens: [1, 2] });
        if (path === "/detokenize") return json({ content: "ab" });
        if (path === "/embedding") return json([{ index: 0, embedding: [[0.1]] }]);
        if (path.startsWith("/slots")) return json([{ id: 0, state: 0 }]);
        break;
      case "lm-studio":
        if (path === "/api/v0/models") {
          return json({
            object: "list",
            data: models.map((id) => ({
              id,
              object: "model",
              type: "llm",
              publisher: "x",
              state: "loaded",
              max_context_length: 4096,
            })),
          });
        }
        if (path === "/api/v0/chat/completions") return openAiChat(kind, model, stream, true);
        break;
      case "openai-compatible":
        break;
    }
    return json({ error: { message: `fake ${kind}: no route ${request.method} ${path}` } }, 404);
  }

  const server: TestServer = await serve(handle);
  return {
    kind,
    get url() {
      return server.url;
    },
    get port() {
      return server.port;
    },
    models,
    requests,
    get loading() {
      return state.loading;
    },
    set loading(value) {
      state.loading = value;
    },
    get failWith() {
      return state.failWith;
    },
    set failWith(value) {
      state.failWith = value;
    },
    count: (path) => requests.filter((request) => request.path === path).length,
    close: () => server.close(),
  };
}
