/**
 * Provider profiles as data: for each kind of backend, its route prefixes, the paths
 * clients may use under `/olla/<prefix>/` and what olla-ts does with each, where its
 * health and model list live and how to read them. Adding a provider means adding a
 * profile (built in here, or a YAML file in `proxy.profiles_dir` with the same fields),
 * not code, unless its wire format truly differs.
 *
 * Built-in profiles are written in the same snake_case shape a profile file uses and go
 * through the same validation, so a built-in can never be something a file could not be.
 *
 * @module
 */
import {
  bool,
  list,
  num,
  obj,
  optional,
  optStr,
  ParseContext,
  type Path,
  type SpecType,
  str,
} from "./schema.ts";

/** What olla-ts does with a request to a profile path. */
export type RouteAction =
  /** Forward to an endpoint of this type chosen by model and balancer. */
  | "proxy"
  /** Answer from olla-ts's view of the endpoints' health. */
  | "health"
  /** Answer from the model registry in the profile's list shape. */
  | "models"
  /** Answer from olla-ts's view of which endpoints sleep. */
  | "sleep_status"
  /** Refuse with `status` and `message`; nothing reaches a backend. */
  | "refuse"
  /** A management route: refused unless enabled, then sent to the endpoint the client names. */
  | "management";

const ROUTE_ACTIONS: readonly RouteAction[] = [
  "proxy",
  "health",
  "models",
  "sleep_status",
  "refuse",
  "management",
];

/** One allowed path under a profile's prefix. */
export interface RouteRule {
  /** Path after the prefix, without a leading slash; a trailing `/*` matches any subpath. */
  readonly path: string;
  /** Defaults: POST for proxy and management, GET otherwise. */
  readonly methods: readonly string[];
  readonly action: RouteAction;
  /** For `refuse`: the status and message of the answer. */
  readonly status?: number;
  readonly message?: string;
}

/** How a health answer is read. */
export type HealthFormat =
  /** LMDeploy: empty 200 (<= v0.13) or JSON `{status, message}`, `sleeping` on 200. */
  | "lmdeploy"
  /** llama.cpp: 200 `{"status":"ok"}`, 503 while the model loads. */
  | "llamacpp"
  /** Any 2xx is healthy. */
  | "status";

/** How a model list is read and written. */
export type ModelListFormat =
  /** `{"data":[{"id":...}, ...]}` (OpenAI, LMDeploy, vLLM, SGLang, llama.cpp, LM Studio). */
  | "openai"
  /** Ollama's `{"models":[{"name":...}, ...]}`. */
  | "ollama";

/** A provider profile. */
export interface Profile {
  readonly name: string;
  readonly displayName: string;
  /** Other names accepted as an endpoint `type` for this profile. */
  readonly aliases: readonly string[];
  /** Route prefixes: `/olla/<prefix>/...`. */
  readonly prefixes: readonly string[];
  /** Whether unified OpenAI routes (`/olla/proxy/`, `/olla/openai/`) may use these endpoints. */
  readonly openaiCompatible: boolean;
  readonly defaultPort: number;
  readonly health: { readonly path: string; readonly format: HealthFormat };
  /** Path answering `{"is_sleeping": bool}`, for engines with a sleep mode. */
  readonly sleepProbePath?: string;
  /** Path that wakes a sleeping engine (POST). */
  readonly wakePath?: string;
  readonly models: { readonly path: string; readonly format: ModelListFormat };
  readonly routes: readonly RouteRule[];
  /** Where the profile came from: `built-in` or a file path. */
  readonly source: string;
}

/** Route prefixes olla-ts uses itself. */
export const RESERVED_PREFIXES: readonly string[] = ["proxy", "openai", "models", "anthropic"];

/** The schema of a profile file (and of the built-ins). */
export const profileSpec = obj({
  name: str({ default: "", doc: "the endpoint type this profile serves" }),
  display_name: optStr({ doc: "name shown in messages" }),
  aliases: list(str({ default: "", doc: "" }), { default: [], doc: "other type names" }),
  prefixes: list(str({ default: "", doc: "" }), {
    default: [],
    doc: "route prefixes (default: the name)",
  }),
  openai_compatible: bool({ default: false, doc: "usable from /olla/proxy/ and /olla/openai/" }),
  default_port: num({ default: 0, min: 0, max: 65535, doc: "the engine's usual port" }),
  health: obj({
    path: str({ default: "/health", doc: "health path" }),
    format: str({
      default: "status",
      oneOf: ["lmdeploy", "llamacpp", "status"],
      doc: "how to read it",
    }),
  }),
  sleep_probe_path: optStr({ doc: 'path answering {"is_sleeping": bool}' }),
  wake_path: optStr({ doc: "path that wakes a sleeping engine" }),
  models: obj({
    path: str({ default: "/v1/models", doc: "model list path" }),
    format: str({ default: "openai", oneOf: ["openai", "ollama"], doc: "model list shape" }),
  }),
  routes: list(
    obj({
      path: str({ default: "", doc: "path after the prefix" }),
      action: str({ default: "proxy", oneOf: ROUTE_ACTIONS, doc: "what olla-ts does" }),
      methods: optional(list(str({ default: "", doc: "" }), { default: [], doc: "" })),
      status: optional(num({ default: 404, min: 400, max: 599, doc: "" })),
      message: optStr({ doc: "" }),
    }),
    { default: [], doc: "the paths clients may use" },
  ),
});

/** A profile as written in a file. */
export type ProfileData = SpecType<typeof profileSpec>;

const NAME_REGEXP = /^[a-z0-9][a-z0-9_.-]*$/;
const PATH_REGEXP = /^[A-Za-z0-9_.~-]+(\/[A-Za-z0-9_.~-]+)*(\/\*)?$/;

/**
 * Turns validated profile data into a profile, recording problems in `ctx` with their
 * paths (so a file's line and column can be reported).
 */
export function profileFromData(
  data: ProfileData,
  source: string,
  ctx: ParseContext,
  base: Path = [],
): Profile {
  if (!NAME_REGEXP.test(data.name)) {
    ctx.error(
      [...base, "name"],
      `"${data.name}" is not a valid profile name (lowercase letters, digits, . _ -)`,
    );
  }
  const prefixes = data.prefixes.length > 0 ? data.prefixes : [data.name];
  prefixes.forEach((prefix, index) => {
    if (!NAME_REGEXP.test(prefix)) {
      ctx.error([...base, "prefixes", index], `"${prefix}" is not a valid route prefix`);
    }
    if (RESERVED_PREFIXES.includes(prefix)) {
      ctx.error(
        [...base, "prefixes", index],
        `"${prefix}" is reserved for olla-ts's own /olla/${prefix}/ routes`,
      );
    }
  });
  const routes = data.routes.map((route, index): RouteRule => {
    if (
      !PATH_REGEXP.test(route.path) ||
      route.path.split("/").some((segment) => /^\.+$/.test(segment))
    ) {
      ctx.error(
        [...base, "routes", index, "path"],
        `"${route.path}" is not a plain relative path (no leading /, no dot segments)`,
      );
    }
    if (route.action === "refuse" && route.message === undefined) {
      ctx.error(
        [...base, "routes", index, "message"],
        "a refuse route needs a message telling clients what to do",
      );
    }
    const action = route.action as RouteAction;
    const methods = route.methods?.map((method) => method.toUpperCase()) ??
      (action === "proxy" || action === "management" ? ["POST"] : ["GET"]);
    return { path: route.path, action, methods, status: route.status, message: route.message };
  });
  return {
    name: data.name,
    displayName: data.display_name ?? data.name,
    aliases: data.aliases,
    prefixes,
    openaiCompatible: data.openai_compatible,
    defaultPort: data.default_port,
    health: { path: data.health.path, format: data.health.format },
    sleepProbePath: data.sleep_probe_path,
    wakePath: data.wake_path,
    models: { path: data.models.path, format: data.models.format },
    routes,
    source,
  };
}

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

/**
 * Validates profile data into a profile.
 *
 * @throws {TypeError} listing every problem (built-in data is checked by the tests).
 */
export function buildProfile(data: unknown, source: string, ctx = new ParseContext()): Profile {
  const profile = profileFromData(profileSpec.parse(data, [], ctx), source, ctx);
  if (ctx.errors.length > 0) {
    throw new TypeError(
      `Cannot build profile from ${source}: ${
        ctx.errors.map((e) => `${e.path}: ${e.message}`).join("; ")
      }`,
    );
  }
  return profile;
}

/** The profiles olla-ts ships with. */
export const BUILT_IN_PROFILES: readonly Profile[] = BUILT_IN_DATA.map((data) =>
  buildProfile(data, "built-in")
);

/** The LMDeploy profile. */
export const LMDEPLOY_PROFILE: Profile = BUILT_IN_PROFILES[0];

/** Profiles by type name (and alias), and by route prefix. */
export class ProfileSet {
  readonly #byType = new Map<string, Profile>();
  readonly #byPrefix = new Map<string, Profile>();
  readonly all: readonly Profile[];

  constructor(profiles: readonly Profile[]) {
    this.all = profiles;
    for (const profile of profiles) {
      for (const name of [profile.name, ...profile.aliases]) this.#byType.set(name, profile);
      for (const prefix of profile.prefixes) this.#byPrefix.set(prefix, profile);
    }
  }

  /** Every name accepted as an endpoint `type`. */
  get typeNames(): string[] {
    return [...this.#byType.keys()];
  }

  forType(type: string): Profile | undefined {
    return this.#byType.get(type);
  }

  forPrefix(prefix: string): Profile | undefined {
    return this.#byPrefix.get(prefix);
  }
}

/** The rule matching a path (after the prefix), or `undefined`. */
export function findRule(profile: Profile, path: string): RouteRule | undefined {
  for (const candidate of profile.routes) {
    if (candidate.path === path) return candidate;
    if (candidate.path.endsWith("/*") && path.startsWith(candidate.path.slice(0, -1))) {
      return candidate;
    }
  }
  return undefined;
}
