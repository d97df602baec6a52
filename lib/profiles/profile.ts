/**
 * Provider profiles as data: for each kind of backend, its route prefixes, the paths
 * clients may use under `/olla/<prefix>/` and what olla-ts does with each, where its
 * health and model list live and how to read them. Adding a provider means adding a
 * profile (built in here, or a YAML file in `proxy.profiles_dir` with the same fields),
 * not code, unless its wire format truly differs.
 *
 * @module
 */
import { list, obj, optObj } from "../schema/composites.ts";
import { bool, num, optional, optStr, str } from "../schema/scalars.ts";
import { type Issue, ParseContext, type Path, type SpecType } from "../schema/spec.ts";

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
  /** For `models`: the list shape, when not the profile's own (Ollama's `v1/models` is OpenAI's). */
  readonly format?: ModelListFormat;
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
  /** `{"data":[{"id":...}, ...]}` (OpenAI, LMDeploy, vLLM, SGLang, llama.cpp, ...). */
  | "openai"
  /** Ollama's `{"models":[{"name":...}, ...]}`. */
  | "ollama"
  /** LM Studio's `/api/v0/models`: OpenAI's list with `type`, `state`, `arch`, ... per model. */
  | "lmstudio";

const MODEL_LIST_FORMATS: readonly ModelListFormat[] = ["openai", "ollama", "lmstudio"];

/** Native Anthropic Messages support of an engine (its passthrough target). */
export interface AnthropicSupport {
  /** Path of the engine's own `/v1/messages`. */
  readonly messagesPath: string;
  /** Whether the engine also serves `<messages path>/count_tokens`. */
  readonly tokenCount: boolean;
}

/** How an endpoint of unknown type is recognised as this type: a GET whose JSON has `field`. */
export interface Detection {
  readonly path: string;
  readonly field: string;
}

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
  /**
   * Where the engine serves OpenAI's paths (`/api` puts `v1/chat/completions` at
   * `/api/v1/chat/completions`); unified routes forward there. "" for the root.
   */
  readonly openaiBase: string;
  readonly anthropic?: AnthropicSupport;
  readonly detect?: Detection;
  /** Where the engine reports its load in Prometheus format, and the series to read. */
  readonly engineMetrics?: EngineMetricNames;
  readonly routes: readonly RouteRule[];
  /** Where the profile came from: `built-in` or a file path. */
  readonly source: string;
}

/** An engine's `/metrics` path and the names of its load series. */
export interface EngineMetricNames {
  readonly path: string;
  /** Requests being executed. */
  readonly running: string;
  /** Requests queued in the engine. */
  readonly waiting: string;
  /** KV-cache blocks in use, 0..1. */
  readonly kvCacheUsage: string;
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
    format: str({ default: "openai", oneOf: MODEL_LIST_FORMATS, doc: "model list shape" }),
  }),
  openai_base: str({ default: "", doc: "where the engine serves OpenAI's paths, e.g. /api" }),
  anthropic: optObj({
    messages_path: str({ default: "/v1/messages", doc: "the engine's Messages API path" }),
    token_count: bool({ default: false, doc: "whether <messages_path>/count_tokens exists" }),
  }, { doc: "native Anthropic Messages support" }),
  detect: optObj({
    path: str({ default: "", doc: "path probed to recognise this type" }),
    field: str({ default: "", doc: "JSON key its answer has" }),
  }, { doc: "how an endpoint of type auto is recognised" }),
  engine_metrics: optObj({
    path: str({ default: "/metrics", doc: "the engine's Prometheus metrics path" }),
    running: str({ default: "", doc: "gauge of requests running" }),
    waiting: str({ default: "", doc: "gauge of requests waiting" }),
    kv_cache_usage: str({ default: "", doc: "gauge of KV-cache usage, 0..1" }),
  }, { doc: "where the engine reports its load (engine_metrics)" }),
  routes: list(
    obj({
      path: str({ default: "", doc: "path after the prefix" }),
      action: str({ default: "proxy", oneOf: ROUTE_ACTIONS, doc: "what olla-ts does" }),
      methods: optional(list(str({ default: "", doc: "" }), { default: [], doc: "" })),
      status: optional(num({ default: 404, min: 400, max: 599, doc: "" })),
      message: optStr({ doc: "" }),
      format: optional(str({ default: "openai", oneOf: MODEL_LIST_FORMATS, doc: "" })),
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
    return {
      path: route.path,
      action,
      methods,
      status: route.status,
      message: route.message,
      format: route.format as ModelListFormat | undefined,
    };
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
    openaiBase: data.openai_base.replace(/\/+$/, ""),
    anthropic: data.anthropic && {
      messagesPath: data.anthropic.messages_path,
      tokenCount: data.anthropic.token_count,
    },
    detect: data.detect && { path: data.detect.path, field: data.detect.field },
    engineMetrics: data.engine_metrics && {
      path: data.engine_metrics.path,
      running: data.engine_metrics.running,
      waiting: data.engine_metrics.waiting,
      kvCacheUsage: data.engine_metrics.kv_cache_usage,
    },
    routes,
    source,
  };
}

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

/** Profiles by type name (and alias), and by route prefix. */
export class ProfileSet {
  readonly #byType = new Map<string, Profile>();
  readonly #byPrefix = new Map<string, Profile>();
  readonly all: readonly Profile[];
  /** What loading the profiles had to say without refusing them (ignored Olla sections). */
  readonly warnings: readonly Issue[];

  constructor(profiles: readonly Profile[], warnings: readonly Issue[] = []) {
    this.all = profiles;
    this.warnings = warnings;
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
