/**
 * A realistic fake LMDeploy `api_server`, following shared/reference/lmdeploy-api.md
 * (v0.16 shapes by default; `version: "0.13"` switches to the empty-body `/health` and
 * the `{"error": ...}` sleeping body of v0.13-v0.15). Used by the socket-level tests and
 * by `deno task demo`.
 *
 * Per-request fault injection through request headers (olla-ts forwards them):
 * - `x-fake-ttft-ms`, `x-fake-itl-ms`: delay before the first / between tokens
 * - `x-fake-tokens`: number of tokens to generate (default 8)
 * - `x-fake-response-headers`: a JSON object of extra response headers
 * - `x-fake-fault`: `midstream-error` (LMDeploy's `data: {"error":...}` event),
 *   `drop-after:N` (TCP-level abort after N chunks), `hang` (never answer),
 *   `status:NNN` (answer that status with an LMDeploy error body)
 */
import { serve, type TestServer } from "../_serve.ts";

/** The fields of a model card LMDeploy's `/v1/models` sends, in its order. */
export const LMDEPLOY_CARD_KEYS = [
  "id",
  "object",
  "created",
  "owned_by",
  "root",
  "parent",
  "permission",
];

/** Options for {@linkcode startFakeLmdeploy}. */
export interface FakeLmdeployOptions {
  port?: number;
  /** @default {"internlm/internlm2_5-7b-chat"} */
  modelName?: string;
  adapters?: string[];
  apiKeys?: string[];
  /** @default {"0.16"} */
  version?: "0.16" | "0.13";
  /** Start asleep (empty-init weights). */
  sleeping?: boolean;
  rewardModel?: boolean;
  contextLen?: number;
  /** Default delays when no header says otherwise. */
  ttftMs?: number;
  itlMs?: number;
}

/** A recorded request, for assertions. */
export interface RecordedRequest {
  method: string;
  path: string;
  search: string;
  headers: Headers;
  body: Uint8Array;
}

/** Control and observation handle of a running fake. */
export interface FakeLmdeploy {
  readonly url: string;
  readonly port: number;
  readonly modelName: string;
  readonly requests: RecordedRequest[];
  /** Generations whose client went away before the end (LMDeploy aborts these). */
  readonly aborted: number;
  /** Requests being answered right now, and the most seen at once. */
  readonly active: number;
  readonly maxActive: number;
  readonly sleeping: boolean;
  /** Health status reported by /health (v0.14+). */
  health: "healthy" | "unhealthy" | "initializing";
  /** A fault applied to every POST without its own `x-fake-fault` header. */
  fault: string | null;
  /** Requests its `/metrics` says are waiting (its scheduler's queue). */
  reportedWaiting: number;
  sleep(): void;
  wake(): void;
  /** Requests received for a path. */
  count(path: string): number;
  /**
   * Requests olla-ts forwarded for a client (they carry its `x-request-id`); its probes,
   * model discovery and metrics reads, which run on their own timers, are not counted.
   */
  readonly forwarded: number;
  close(): Promise<void>;
}

const WORDS = [
  "Hello",
  " from",
  " a",
  " fake",
  " LMDeploy",
  " engine",
  " on",
  " port",
  " 23333",
  ".",
];
const SLEEPING_MESSAGE =
  "Engine is sleeping; call POST /wakeup before inference (e.g. tags=weights&tags=kv_cache).";
const JSON_ROUTES = new Set([
  "/v1/chat/completions",
  "/v1/completions",
  "/generate",
  "/v1/encode",
  "/pooling",
  "/get_ppl",
  "/sleep",
  "/wakeup",
  "/update_weights",
  "/v1/responses",
  "/v1/messages",
  "/v1/messages/count_tokens",
]);
const SLEEP_GATED = new Set([
  "/v1/chat/completions",
  "/v1/completions",
  "/generate",
  "/v1/responses",
  "/v1/messages",
]);
const ROUTES: Record<string, string> = {
  "/health": "GET",
  "/v1/models": "GET",
  "/is_sleeping": "GET",
  "/terminate": "GET",
  "/metrics": "GET",
  "/anthropic/v1/models": "GET",
  "/v1/chat/completions": "POST",
  "/v1/completions": "POST",
  "/generate": "POST",
  "/v1/encode": "POST",
  "/pooling": "POST",
  "/get_ppl": "POST",
  "/v1/embeddings": "POST",
  "/sleep": "POST",
  "/wakeup": "POST",
  "/abort_request": "POST",
  "/update_weights": "POST",
  "/v1/responses": "POST",
  "/v1/messages": "POST",
  "/v1/messages/count_tokens": "POST",
};

/** Python's `json.dumps` spacing, which LMDeploy's chat and completion chunks use. */
function pyJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pyJson).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    return `{${
      Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${pyJson(v)}`).join(", ")
    }}`;
  }
  return JSON.stringify(value);
}

function shortUuid(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 22);
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function lmdeployError(status: number, message: string): Response {
  const type = status === 401
    ? "authentication_error"
    : status === 404
    ? "not_found_error"
    : status >= 500
    ? "server_error"
    : "invalid_request_error";
  return json(status, { message, type, code: status, param: null, object: "error" });
}

const sleepFor = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });

/** Starts a fake LMDeploy api_server on 127.0.0.1. */
export async function startFakeLmdeploy(options: FakeLmdeployOptions = {}): Promise<FakeLmdeploy> {
  const modelName = options.modelName ?? "internlm/internlm2_5-7b-chat";
  const version = options.version ?? "0.16";
  const requests: RecordedRequest[] = [];
  let sleeping = options.sleeping ?? false;
  let aborted = 0;
  let active = 0;
  let maxActive = 0;
  let sessionCounter = 0;
  const inflightAborts = new Set<AbortController>();

  const state = {
    health: "healthy" as "healthy" | "unhealthy" | "initializing",
    fault: null as string | null,
    reportedWaiting: 0,
  };

  const models = () => [modelName, ...(options.adapters ?? [])];

  function modelCard(id: string) {
    const created = Math.floor(Date.now() / 1000);
    return {
      id,
      object: "model",
      created,
      owned_by: "lmdeploy",
      root: id,
      parent: null,
      permission: [{
        id: `modelperm-${shortUuid()}`,
        object: "model_permission",
        created,
        allow_create_engine: false,
        allow_sampling: true,
        allow_logprobs: true,
        allow_search_indices: true,
        allow_view: true,
        allow_fine_tuning: false,
        organization: "*",
        group: null,
        is_blocking: false,
      }],
    };
  }

  function sleepingResponse(): Response {
    return version === "0.16"
      ? lmdeployError(503, SLEEPING_MESSAGE)
      : json(503, { error: SLEEPING_MESSAGE });
  }

  /** Token stream as SSE: each event is produced when the client can take it. */
  function sse(
    events: (index: number) => string | undefined,
    opts: {
      ttftMs: number;
      itlMs: number;
      fault: string | null;
      signal: AbortSignal;
      onEnd: () => void;
    },
  ): Response {
    const encoder = new TextEncoder();
    const dropAfter = opts.fault?.startsWith("drop-after:")
      ? Number(opts.fault.split(":")[1])
      : undefined;
    let index = 0;
    let finished = false;
    const finish = () => {
      if (!finished) {
        finished = true;
        opts.onEnd();
      }
    };
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await sleepFor(index === 0 ? opts.ttftMs : opts.itlMs, opts.signal);
        if (opts.signal.aborted) {
          if (!finished) aborted++;
          finish();
          controller.error(new Error("client went away"));
          return;
        }
        if (dropAfter !== undefined && index >= dropAfter) {
          finish();
          controller.error(new Error("fake: connection dropped mid-stream"));
          return;
        }
        const event = events(index++);
        if (event === undefined) {
          controller.enqueue(encoder.encode("data: [DONE]\n\n"));
          controller.close();
          finish();
          return;
        }
        controller.enqueue(encoder.encode(`data: ${event}\n\n`));
      },
      cancel() {
        if (!finished) aborted++;
        finish();
      },
    });
    return new Response(stream, {
      headers: { "content-type": "text/event-stream; charset=utf-8" },
    });
  }

  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const body = new Uint8Array(await request.arrayBuffer());
    requests.push({
      method: request.method,
      path: url.pathname,
      search: url.search,
      headers: request.headers,
      body,
    });
    const path = url.pathname;
    const fault = request.headers.get("x-fake-fault") ??
      (request.method === "POST" ? state.fault : null);
    if (fault === "hang") {
      await new Promise((resolve) =>
        request.signal.addEventListener("abort", resolve, { once: true })
      );
      return new Response(null, { status: 499 });
    }
    if (fault?.startsWith("redirect:")) {
      return new Response(null, { status: 307, headers: { location: fault.slice(9) } });
    }
    if (fault?.startsWith("echo-headers:")) {
      // A backend whose error page repeats the request, credentials and all.
      return json(Number(fault.slice("echo-headers:".length)), {
        error: { message: "bad request", request_headers: Object.fromEntries(request.headers) },
      });
    }
    if (fault?.startsWith("status:")) {
      const status = Number(fault.slice("status:".length));
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (status === 429) headers["retry-after"] = request.headers.get("x-fake-retry-after") ?? "1";
      return new Response(
        JSON.stringify({
          message: `fake status ${status}`,
          type: "server_error",
          code: status,
          param: null,
          object: "error",
        }),
        {
          status,
          headers,
        },
      );
    }
    // Middleware order of v0.13+: sleep gate, then auth, then routes.
    if (sleeping && SLEEP_GATED.has(path) && request.method === "POST") return sleepingResponse();
    if (options.apiKeys?.length && !path.startsWith("/health")) {
      const auth = request.headers.get("authorization") ?? "";
      const match = /^bearer\s+(.+)$/i.exec(auth);
      if (!match || !options.apiKeys.includes(match[1])) {
        return version === "0.16"
          ? lmdeployError(401, "Unauthorized.")
          : json(401, { error: "Unauthorized" });
      }
    }
    const method = ROUTES[path];
    if (!method) return json(404, { detail: "Not Found" });
    if (method !== request.method) return json(405, { detail: "Method Not Allowed" });
    if (JSON_ROUTES.has(path) && request.method === "POST") {
      const contentType = request.headers.get("content-type") ?? "";
      if (!/^application\/json\s*(;|$)/i.test(contentType)) {
        return lmdeployError(400, "Unsupported Media Type: Only 'application/json' is allowed");
      }
    }
    let payload: Record<string, unknown> = {};
    if (request.method === "POST" && body.length > 0 && path !== "/sleep" && path !== "/wakeup") {
      try {
        payload = JSON.parse(new TextDecoder().decode(body));
      } catch {
        return lmdeployError(400, "0: JSON decode error");
      }
    }
    const ttftMs = Number(request.headers.get("x-fake-ttft-ms") ?? options.ttftMs ?? 0);
    const itlMs = Number(request.headers.get("x-fake-itl-ms") ?? options.itlMs ?? 0);
    const maxTokens = Number(payload.max_completion_tokens ?? payload.max_tokens ?? 128);
    const wanted = Number(request.headers.get("x-fake-tokens") ?? 8);
    const tokens = Math.max(0, Math.min(wanted, maxTokens));
    const finishReason = wanted > maxTokens ? "length" : "stop";
    const words = Array.from({ length: tokens }, (_, i) => WORDS[i % WORDS.length]);
    const controller = new AbortController();
    request.signal.addEventListener("abort", () => controller.abort(), { once: true });
    inflightAborts.add(controller);
    active++;
    maxActive = Math.max(maxActive, active);
    const onEnd = () => {
      active--;
      inflightAborts.delete(controller);
    };
    const signal = controller.signal;
    const usage = (completion: number, details: boolean) => ({
      prompt_tokens: 12,
      total_tokens: 12 + completion,
      completion_tokens: completion,
      prompt_tokens_details: details ? { cached_tokens: 0 } : null,
      completion_tokens_details: null,
    });
    try {
      switch (path) {
        case "/health": {
          onEnd();
          if (version === "0.13") return new Response(null, { status: 200 });
          if (sleeping) return json(200, { status: "sleeping", message: "Engine is sleeping." });
          if (state.health === "healthy") {
            return json(200, { status: "healthy", message: "Engine is healthy." });
          }
          return json(503, {
            status: state.health,
            message: state.health === "initializing"
              ? "Engine health monitor is starting."
              : "No successful health probe for 90s.",
          });
        }
        case "/v1/models":
          onEnd();
          return json(200, { object: "list", data: models().map(modelCard) });
        case "/is_sleeping":
          onEnd();
          return json(200, { is_sleeping: sleeping });
        case "/metrics": {
          onEnd();
          // LMDeploy's series and labels (prometheus_client's text format).
          const labels = `{engine="0",model_name="${modelName}"}`;
          return new Response(
            [
              "# HELP lmdeploy:num_requests_running Number of requests currently running.",
              "# TYPE lmdeploy:num_requests_running gauge",
              `lmdeploy:num_requests_running${labels} ${Math.max(0, active - 1)}.0`,
              "# HELP lmdeploy:num_requests_waiting Number of requests waiting.",
              "# TYPE lmdeploy:num_requests_waiting gauge",
              `lmdeploy:num_requests_waiting${labels} ${state.reportedWaiting}.0`,
              "# TYPE lmdeploy:gpu_cache_usage_perc gauge",
              `lmdeploy:gpu_cache_usage_perc${labels} 0.25`,
              "",
            ].join("\n"),
            { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } },
          );
        }
        case "/sleep":
          onEnd();
          sleeping = true;
          for (const abort of inflightAborts) abort.abort();
          return new Response(null, { status: 200 });
        case "/wakeup":
          onEnd();
          sleeping = false;
          return new Response(null, { status: 200 });
        case "/v1/embeddings":
          onEnd();
          return lmdeployError(400, "Unsupported by turbomind.");
        case "/abort_request":
          onEnd();
          return new Response(
            "This server does not support abort requests. Enable with --enable-abort-handling flag.",
            {
              status: 501,
            },
          );
        case "/terminate":
          onEnd();
          return lmdeployError(
            400,
            "The server can not be terminated. Please add --allow-terminate-by-client",
          );
        case "/v1/encode": {
          onEnd();
          const encode = (
            text: string,
          ) => [1, ...Array.from(text).slice(0, 16).map((ch) => ch.charCodeAt(0))];
          if (Array.isArray(payload.input)) {
            const ids = payload.input.map((text) => encode(String(text)));
            return json(200, { input_ids: ids, length: ids.map((list) => list.length) });
          }
          const ids = encode(String(payload.input ?? ""));
          return json(200, { input_ids: ids, length: ids.length });
        }
        case "/pooling": {
          onEnd();
          if (!options.rewardModel) return new Response("Internal Server Error", { status: 500 });
          const inputs = Array.isArray(payload.input) ? payload.input : [payload.input];
          if (inputs.length === 0) return lmdeployError(400, "Input list cannot be empty.");
          return json(200, {
            id: `pool-${shortUuid()}`,
            object: "list",
            created: Math.floor(Date.now() / 1000),
            model: payload.model ?? modelName,
            data: inputs.map((_, index) => ({ index, object: "pooling", data: 1.25 + index })),
            usage: usage(0, true),
          });
        }
        case "/get_ppl":
          onEnd();
          return json(200, { ppl: 3.14 });
        case "/generate":
          return generate();
        case "/v1/chat/completions":
        case "/v1/completions":
          return openAiCompletion(path === "/v1/chat/completions");
        default:
          onEnd();
          return json(200, { ok: true, path });
      }
    } catch (error) {
      onEnd();
      throw error;
    }

    function generate(): Response | Promise<Response> {
      const hasPrompt = typeof payload.prompt === "string";
      const hasIds = Array.isArray(payload.input_ids);
      if (hasPrompt === hasIds) {
        onEnd();
        return lmdeployError(400, "You must specify exactly one of prompt or input_ids");
      }
      if (payload.prompt === "") {
        onEnd();
        return lmdeployError(400, "The prompt must not be an empty string");
      }
      const meta = (completion: number, reason: string | null) => ({
        prompt_tokens: 5,
        completion_tokens: completion,
        finish_reason: reason === null ? null : { type: reason },
        output_token_logprobs: null,
        routed_experts: null,
      });
      if (payload.stream === true) {
        return sse((index) => {
          if (index < words.length) {
            return JSON.stringify({
              text: words[index],
              output_ids: [100 + index],
              meta_info: meta(index + 1, null),
            });
          }
          if (index === words.length) {
            if (fault === "midstream-error") return midstreamError();
            return JSON.stringify({
              text: "",
              output_ids: [],
              meta_info: meta(words.length, finishReason),
            });
          }
          return undefined;
        }, { ttftMs, itlMs, fault, signal, onEnd });
      }
      return delayedJson(() => ({
        text: words.join(""),
        output_ids: words.map((_, i) => 100 + i),
        meta_info: meta(words.length, finishReason),
      }));
    }

    function openAiCompletion(chat: boolean): Response | Promise<Response> {
      if (typeof payload.model !== "string") {
        onEnd();
        return lmdeployError(400, "model: Field required");
      }
      if (!models().includes(payload.model)) {
        onEnd();
        return lmdeployError(404, `The model '${payload.model}' does not exist.`);
      }
      if (chat ? payload.messages === undefined : payload.prompt === undefined) {
        onEnd();
        return lmdeployError(400, `${chat ? "messages" : "prompt"}: Field required`);
      }
      const temperature = payload.temperature;
      if (typeof temperature === "number" && (temperature < 0 || temperature > 2)) {
        onEnd();
        return lmdeployError(400, `The temperature ${temperature} must be in [0, 2]`);
      }
      const model = payload.model;
      const created = Math.floor(Date.now() / 1000);
      const id = chat ? `chatcmpl-${shortUuid()}` : "-1";
      const object = chat ? "chat.completion.chunk" : "text_completion";
      const includeUsage =
        (payload.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
      sessionCounter++;
      if (payload.stream === true) {
        return sse((index) => {
          const extra = includeUsage ? { usage: null } : {};
          if (index < words.length) {
            const choice = chat
              ? { index: 0, delta: { role: "assistant", content: words[index] } }
              : { index: 0, text: words[index] };
            return pyJson({ id, object, created, model, choices: [choice], ...extra });
          }
          if (index === words.length) {
            if (fault === "midstream-error") return midstreamError();
            const choice = chat
              ? { index: 0, delta: { role: "assistant", content: "" }, finish_reason: finishReason }
              : { index: 0, text: "", finish_reason: finishReason };
            return pyJson({ id, object, created, model, choices: [choice], ...extra });
          }
          if (index === words.length + 1 && includeUsage) {
            return JSON.stringify({
              id,
              object,
              created,
              model,
              choices: [],
              usage: usage(words.length, chat),
            });
          }
          return undefined;
        }, { ttftMs, itlMs, fault, signal, onEnd });
      }
      return delayedJson(() =>
        chat
          ? {
            id,
            object: "chat.completion",
            created,
            model,
            choices: [{
              index: 0,
              message: {
                role: "assistant",
                content: words.join(""),
                reasoning_content: null,
                tool_calls: null,
              },
              logprobs: null,
              output_token_logprobs: null,
              finish_reason: finishReason,
              output_ids: null,
              routed_experts: null,
            }],
            usage: usage(words.length, true),
            service_tier: null,
          }
          : {
            id,
            object: "text_completion",
            created,
            model,
            choices: [{
              index: 0,
              text: words.join(""),
              logprobs: null,
              finish_reason: finishReason,
            }],
            usage: usage(words.length, false),
          }
      );
    }

    function midstreamError(): string {
      return JSON.stringify({
        error: {
          message: "The inference engine is unavailable.",
          type: "server_error",
          code: 503,
          param: null,
          object: "error",
        },
      });
    }

    async function delayedJson(make: () => unknown): Promise<Response> {
      // A non-streamed answer arrives when generation ends; headers come with it.
      await sleepFor(ttftMs + itlMs * Math.max(0, words.length - 1), signal);
      onEnd();
      if (!signal.aborted) return json(200, make());
      aborted++;
      return lmdeployError(400, "Client disconnected");
    }
  }

  async function handleWithExtras(request: Request): Promise<Response> {
    const extra = request.headers.get("x-fake-response-headers");
    const response = await handle(request);
    if (!extra) return response;
    const headers = new Headers(response.headers);
    for (const [name, value] of Object.entries(JSON.parse(extra))) {
      headers.append(name, String(value));
    }
    return new Response(response.body, { status: response.status, headers });
  }

  const server: TestServer = await serve(handleWithExtras, { port: options.port });
  return {
    get url() {
      return server.url;
    },
    get port() {
      return server.port;
    },
    modelName,
    requests,
    get forwarded() {
      return requests.filter((request) => request.headers.has("x-request-id")).length;
    },
    get aborted() {
      return aborted;
    },
    get active() {
      return active;
    },
    get maxActive() {
      return maxActive;
    },
    get sleeping() {
      return sleeping;
    },
    get health() {
      return state.health;
    },
    set health(value) {
      state.health = value;
    },
    get fault() {
      return state.fault;
    },
    set fault(value) {
      state.fault = value;
    },
    get reportedWaiting() {
      return state.reportedWaiting;
    },
    set reportedWaiting(value) {
      state.reportedWaiting = value;
    },
    sleep() {
      sleeping = true;
    },
    wake() {
      sleeping = false;
    },
    count: (path) => requests.filter((r) => r.path === path).length,
    close: () => server.close(),
  };
}
