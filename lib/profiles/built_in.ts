/**
 * The profiles olla-ts ships with, as data in the same snake_case shape a profile file
 * uses, built through the same validation: a built-in can never be something a file
 * could not be. Every type Olla accepts is here (shared/reference/olla-compat.md section 1.3),
 * with its prefixes, health and model-list paths, list format, native Anthropic support
 * and the probe that recognises it when an endpoint's type is `auto`.
 *
 * @module
 */
import { buildProfile, type Profile, type RouteAction } from "./profile.ts";

type RouteData = {
  path: string;
  action?: RouteAction;
  methods?: string[];
  status?: number;
  message?: string;
  format?: string;
};

/** The OpenAI paths every OpenAI-compatible engine serves. */
const OPENAI_ROUTES: RouteData[] = [
  { path: "v1/models", action: "models" },
  { path: "v1/chat/completions" },
  { path: "v1/completions" },
  { path: "v1/embeddings" },
];

/** The Anthropic Messages paths of engines that serve them natively. */
const MESSAGES_ROUTES: RouteData[] = [
  { path: "v1/messages" },
  { path: "v1/messages/count_tokens" },
];

const HEALTH: RouteData = { path: "health", action: "health" };

const LMDEPLOY_MANAGEMENT = [
  "sleep",
  "wakeup",
  "abort_request",
  "update_weights",
  "init_weights_update_group",
  "update_weights_from_distributed",
  "destroy_weights_update_group",
];

/** Olla's answer to model management through a proxy of many instances. */
const MANAGEMENT_NOT_SUPPORTED = "model management operations not supported by proxy";

const BUILT_IN_DATA: Record<string, unknown>[] = [
  {
    // LMDeploy's api_server (shared/reference/lmdeploy-api.md). It serves the Anthropic
    // Messages API natively since v0.13 (it wants an anthropic-version header).
    name: "lmdeploy",
    display_name: "LMDeploy",
    openai_compatible: true,
    default_port: 23333,
    health: { path: "/health", format: "lmdeploy" },
    sleep_probe_path: "/is_sleeping",
    wake_path: "/wakeup",
    models: { path: "/v1/models", format: "openai" },
    anthropic: { messages_path: "/v1/messages", token_count: true },
    detect: { path: "/is_sleeping", field: "is_sleeping" },
    // On by default since v0.11; the scheduler gauges refresh every 10 s.
    engine_metrics: {
      path: "/metrics",
      running: "lmdeploy:num_requests_running",
      waiting: "lmdeploy:num_requests_waiting",
      kv_cache_usage: "lmdeploy:gpu_cache_usage_perc",
    },
    routes: [
      { path: "health", action: "health" },
      { path: "v1/models", action: "models" },
      { path: "is_sleeping", action: "sleep_status" },
      { path: "v1/chat/completions" },
      { path: "v1/completions" },
      { path: "v1/encode" },
      { path: "generate" },
      { path: "pooling" },
      { path: "get_ppl" },
      { path: "v1/responses" },
      ...MESSAGES_ROUTES,
      { path: "anthropic/v1/models", methods: ["GET"] },
      {
        path: "v1/embeddings",
        action: "refuse",
        status: 400,
        methods: ["POST"],
        message:
          "LMDeploy does not serve /v1/embeddings (it always answers 'Unsupported by turbomind.'); " +
          "use POST /olla/lmdeploy/pooling for reward scores from a reward model",
      },
      ...LMDEPLOY_MANAGEMENT.map((path) => ({ path, action: "management" })),
      { path: "terminate", action: "management", methods: ["GET"] },
      // One engine's own /metrics (X-Olla-Target-Endpoint); olla-ts reads them itself too.
      { path: "metrics", action: "management", methods: ["GET"] },
      { path: "distserve/*", action: "management", methods: ["GET", "POST"] },
    ],
  },
  {
    name: "vllm",
    display_name: "vLLM",
    openai_compatible: true,
    default_port: 8000,
    health: { path: "/health", format: "status" },
    anthropic: { messages_path: "/v1/messages", token_count: false },
    detect: { path: "/version", field: "version" },
    engine_metrics: {
      path: "/metrics",
      running: "vllm:num_requests_running",
      waiting: "vllm:num_requests_waiting",
      kv_cache_usage: "vllm:kv_cache_usage_perc",
    },
    routes: [
      HEALTH,
      ...OPENAI_ROUTES,
      ...MESSAGES_ROUTES,
      { path: "v1/responses" },
      { path: "tokenize" },
      { path: "detokenize" },
      { path: "v1/tokenize" },
      { path: "v1/detokenize" },
      { path: "pooling" },
      { path: "score" },
      { path: "v1/score" },
      { path: "rerank" },
      { path: "v1/rerank" },
      { path: "v2/rerank" },
      { path: "version", methods: ["GET"] },
      { path: "get_tokenizer_info", methods: ["GET"] },
    ],
  },
  {
    name: "sglang",
    display_name: "SGLang",
    openai_compatible: true,
    default_port: 30000,
    health: { path: "/health", format: "status" },
    detect: { path: "/get_server_info", field: "model_path" },
    engine_metrics: { // needs SGLang's --enable-metrics
      path: "/metrics",
      running: "sglang:num_running_reqs",
      waiting: "sglang:num_queue_reqs",
      kv_cache_usage: "sglang:token_usage",
    },
    routes: [
      HEALTH,
      ...OPENAI_ROUTES,
      { path: "generate" },
      { path: "get_model_info", methods: ["GET"] },
      { path: "get_server_info", methods: ["GET"] },
      { path: "tokenize" },
      { path: "detokenize" },
      { path: "version", methods: ["GET"] },
    ],
  },
  {
    name: "ollama",
    display_name: "Ollama",
    openai_compatible: true,
    default_port: 11434,
    health: { path: "/", format: "status" },
    models: { path: "/api/tags", format: "ollama" },
    anthropic: { messages_path: "/v1/messages", token_count: false },
    detect: { path: "/api/version", field: "version" },
    routes: [
      { path: "api/tags", action: "models" },
      // Ollama's OpenAI-compatible path answers in OpenAI's list shape, as Olla's does.
      { path: "v1/models", action: "models", format: "openai" },
      { path: "api/chat" },
      { path: "api/generate" },
      { path: "api/embed" },
      { path: "api/embeddings" },
      // Routed by the body's model, so it reaches an instance that has the model
      // (Olla answers 501 here).
      { path: "api/show" },
      { path: "api/version", methods: ["GET"] },
      ...OPENAI_ROUTES.slice(1),
      ...MESSAGES_ROUTES,
      {
        path: "api/list",
        action: "refuse",
        status: 501,
        methods: ["GET"],
        message: "running models list not supported in multi-instance proxy",
      },
      ...["pull", "push", "create", "copy", "delete"].map((operation) => ({
        path: `api/${operation}`,
        action: "refuse" as const,
        status: 501,
        methods: operation === "delete" ? ["DELETE"] : ["POST"],
        message: `${MANAGEMENT_NOT_SUPPORTED}: run /api/${operation} on the Ollama host itself`,
      })),
    ],
  },
  {
    name: "llamacpp",
    display_name: "llama.cpp",
    aliases: ["llama.cpp", "llama-cpp"],
    openai_compatible: true,
    default_port: 8080,
    health: { path: "/health", format: "llamacpp" },
    anthropic: { messages_path: "/v1/messages", token_count: true },
    detect: { path: "/props", field: "default_generation_settings" },
    routes: [
      HEALTH,
      ...OPENAI_ROUTES,
      ...MESSAGES_ROUTES,
      { path: "completion" },
      { path: "tokenize" },
      { path: "detokenize" },
      { path: "embedding" },
      { path: "infill" },
      {
        path: "slots",
        action: "refuse",
        status: 403,
        methods: ["GET", "POST"],
        message: "llama.cpp's /slots exposes and changes server state; olla-ts does not forward it",
      },
      {
        path: "slots/*",
        action: "refuse",
        status: 403,
        methods: ["GET", "POST"],
        message: "llama.cpp's /slots exposes and changes server state; olla-ts does not forward it",
      },
    ],
  },
  {
    name: "lm-studio",
    display_name: "LM Studio",
    aliases: ["lmstudio", "lm_studio"],
    prefixes: ["lmstudio", "lm-studio", "lm_studio"],
    openai_compatible: true,
    default_port: 1234,
    health: { path: "/v1/models", format: "status" },
    models: { path: "/api/v0/models", format: "lmstudio" },
    anthropic: { messages_path: "/v1/messages", token_count: false },
    detect: { path: "/api/v0/models", field: "data" },
    routes: [
      { path: "v1/models", action: "models", format: "openai" },
      { path: "api/v1/models", action: "models", format: "openai" },
      { path: "api/v0/models", action: "models" },
      ...OPENAI_ROUTES.slice(1),
      ...MESSAGES_ROUTES,
      { path: "api/v0/chat/completions" },
      { path: "api/v0/completions" },
      { path: "api/v0/embeddings" },
      { path: "api/v1/chat/completions" },
      { path: "api/v1/completions" },
      { path: "api/v1/embeddings" },
    ],
  },
  {
    // LiteLLM's proxy: OpenAI's paths at the root and without the v1/.
    name: "litellm",
    display_name: "LiteLLM",
    openai_compatible: true,
    default_port: 4000,
    health: { path: "/health", format: "status" },
    detect: { path: "/health/readiness", field: "litellm_version" },
    routes: [
      HEALTH,
      ...OPENAI_ROUTES,
      { path: "models", action: "models", format: "openai" },
      { path: "chat/completions" },
      { path: "completions" },
      { path: "embeddings" },
      { path: "health/readiness", methods: ["GET"] },
      { path: "health/liveness", methods: ["GET"] },
    ],
  },
  {
    // AMD's Lemonade Server: OpenAI's paths under /api.
    name: "lemonade",
    display_name: "Lemonade",
    openai_compatible: true,
    default_port: 8000,
    health: { path: "/api/v1/health", format: "status" },
    models: { path: "/api/v1/models", format: "openai" },
    openai_base: "/api",
    detect: { path: "/api/v1/health", field: "model_loaded" },
    routes: [
      { path: "v1/models", action: "models" },
      { path: "api/v1/models", action: "models" },
      { path: "api/v1/health", action: "health" },
      { path: "api/v1/chat/completions" },
      { path: "api/v1/completions" },
      { path: "api/v1/embeddings" },
      { path: "api/v1/stats", methods: ["GET"] },
      { path: "api/v1/system-info", methods: ["GET"] },
      ...["pull", "load", "unload", "delete"].map((path) => ({
        path: `api/v1/${path}`,
        action: "management",
      })),
    ],
  },
  {
    // Docker Model Runner: OpenAI's paths under /engines (and per engine below it).
    name: "docker-model-runner",
    display_name: "Docker Model Runner",
    aliases: ["dmr"],
    prefixes: ["dmr"],
    openai_compatible: true,
    default_port: 12434,
    health: { path: "/engines/v1/models", format: "status" },
    models: { path: "/engines/v1/models", format: "openai" },
    openai_base: "/engines",
    anthropic: { messages_path: "/anthropic/v1/messages", token_count: true },
    detect: { path: "/engines/v1/models", field: "data" },
    routes: [
      { path: "v1/models", action: "models" },
      { path: "engines/v1/models", action: "models" },
      { path: "engines/v1/chat/completions" },
      { path: "engines/v1/completions" },
      { path: "engines/v1/embeddings" },
      { path: "engines/*", methods: ["GET", "POST"] },
      { path: "anthropic/v1/messages" },
      { path: "anthropic/v1/messages/count_tokens" },
    ],
  },
  {
    name: "vllm-mlx",
    display_name: "vLLM-MLX",
    openai_compatible: true,
    default_port: 8000,
    health: { path: "/health", format: "status" },
    anthropic: { messages_path: "/v1/messages", token_count: true },
    routes: [HEALTH, ...OPENAI_ROUTES, ...MESSAGES_ROUTES],
  },
  {
    name: "omlx",
    display_name: "oMLX",
    openai_compatible: true,
    default_port: 8000,
    health: { path: "/health", format: "status" },
    anthropic: { messages_path: "/v1/messages", token_count: false },
    detect: { path: "/v1/models/status", field: "models" },
    routes: [
      HEALTH,
      ...OPENAI_ROUTES,
      ...MESSAGES_ROUTES,
      { path: "v1/models/status", methods: ["GET"] },
      { path: "v1/responses" },
      { path: "v1/rerank" },
    ],
  },
  {
    name: "openai-compatible",
    display_name: "OpenAI-compatible",
    aliases: ["openai"],
    prefixes: ["openai-compatible"],
    openai_compatible: true,
    default_port: 8000,
    health: { path: "/v1/models", format: "status" },
    detect: { path: "/v1/models", field: "data" },
    routes: OPENAI_ROUTES,
  },
];

/** The profiles olla-ts ships with. */
export const BUILT_IN_PROFILES: readonly Profile[] = BUILT_IN_DATA.map((data) =>
  buildProfile(data, "built-in")
);

/**
 * The profile of an endpoint whose type is `auto` until probing recognises it: no
 * routes, not OpenAI-compatible, so nothing is sent to it before its type is known.
 */
export const UNDETECTED_PROFILE: Profile = {
  ...buildProfile({ name: "auto", routes: [{ path: "v1/models", action: "models" }] }, "built-in"),
  displayName: "not yet detected",
  prefixes: [],
  routes: [],
};

/** The LMDeploy profile. */
export const LMDEPLOY_PROFILE: Profile = BUILT_IN_PROFILES[0];

/**
 * The order endpoints of type `auto` are probed in: Olla's (ollama, llamacpp, lm-studio,
 * vllm, omlx, openai-compatible), with SGLang before vLLM (both may answer `/version`),
 * LMDeploy after vLLM (vLLM's sleep mode also has `/is_sleeping`), and the plain OpenAI
 * list last, since every OpenAI-compatible server has one.
 */
export const DETECTION_ORDER: readonly string[] = [
  "ollama",
  "llamacpp",
  "lm-studio",
  "sglang",
  "vllm",
  "lmdeploy",
  "lemonade",
  "docker-model-runner",
  "litellm",
  "omlx",
  "openai-compatible",
];
