/**
 * The profiles olla-ts ships with, as data in the same snake_case shape a profile file
 * uses, built through the same validation: a built-in can never be something a file
 * could not be.
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
};

/** The OpenAI paths every OpenAI-compatible engine serves. */
const OPENAI_ROUTES: RouteData[] = [
  { path: "v1/models", action: "models" },
  { path: "v1/chat/completions" },
  { path: "v1/completions" },
  { path: "v1/embeddings" },
];

const LMDEPLOY_MANAGEMENT = [
  "sleep",
  "wakeup",
  "abort_request",
  "update_weights",
  "init_weights_update_group",
  "update_weights_from_distributed",
  "destroy_weights_update_group",
];

const BUILT_IN_DATA: Record<string, unknown>[] = [
  {
    // LMDeploy's api_server (shared/reference/lmdeploy-api.md).
    name: "lmdeploy",
    display_name: "LMDeploy",
    openai_compatible: true,
    default_port: 23333,
    health: { path: "/health", format: "lmdeploy" },
    sleep_probe_path: "/is_sleeping",
    wake_path: "/wakeup",
    models: { path: "/v1/models", format: "openai" },
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
      { path: "v1/messages" },
      { path: "v1/messages/count_tokens" },
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
      { path: "distserve/*", action: "management", methods: ["GET", "POST"] },
    ],
  },
  {
    name: "vllm",
    display_name: "vLLM",
    openai_compatible: true,
    default_port: 8000,
    health: { path: "/health", format: "status" },
    routes: [
      { path: "health", action: "health" },
      ...OPENAI_ROUTES,
      { path: "v1/responses" },
      { path: "tokenize" },
      { path: "detokenize" },
      { path: "pooling" },
      { path: "score" },
      { path: "v1/score" },
      { path: "rerank" },
      { path: "v1/rerank" },
    ],
  },
  {
    name: "sglang",
    display_name: "SGLang",
    openai_compatible: true,
    default_port: 30000,
    health: { path: "/health", format: "status" },
    routes: [
      { path: "health", action: "health" },
      ...OPENAI_ROUTES,
      { path: "generate" },
      { path: "get_model_info", methods: ["GET"] },
    ],
  },
  {
    name: "ollama",
    display_name: "Ollama",
    openai_compatible: true,
    default_port: 11434,
    health: { path: "/", format: "status" },
    models: { path: "/api/tags", format: "ollama" },
    routes: [
      { path: "api/tags", action: "models" },
      { path: "api/chat" },
      { path: "api/generate" },
      { path: "api/embed" },
      { path: "api/embeddings" },
      { path: "api/show" },
      { path: "api/version", methods: ["GET"] },
      ...OPENAI_ROUTES,
      ...["pull", "push", "create", "copy", "delete"].map((operation) => ({
        path: `api/${operation}`,
        action: "refuse" as const,
        status: 403,
        methods: operation === "delete" ? ["DELETE"] : ["POST"],
        message:
          `Ollama model management (/api/${operation}) is not forwarded by olla-ts; run it on the Ollama host`,
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
    routes: [
      { path: "health", action: "health" },
      ...OPENAI_ROUTES,
      { path: "completion" },
      { path: "tokenize" },
      { path: "detokenize" },
      { path: "embedding" },
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
    routes: [
      ...OPENAI_ROUTES,
      { path: "api/v0/models", action: "models" },
      { path: "api/v0/chat/completions" },
      { path: "api/v0/completions" },
      { path: "api/v0/embeddings" },
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
    routes: OPENAI_ROUTES,
  },
];

/** The profiles olla-ts ships with. */
export const BUILT_IN_PROFILES: readonly Profile[] = BUILT_IN_DATA.map((data) =>
  buildProfile(data, "built-in")
);

/** The LMDeploy profile. */
export const LMDEPLOY_PROFILE: Profile = BUILT_IN_PROFILES[0];
