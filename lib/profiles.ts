/**
 * Provider profiles as data: for each kind of backend, its route prefixes, the paths
 * clients may use under `/olla/<prefix>/` and what olla-ts does with each, where its
 * health and model list live and how to read them. Adding a provider means adding a
 * profile (built in here, or a YAML file in `proxy.profiles_dir`), not code, unless its
 * wire format truly differs.
 *
 * @module
 */

/** What olla-ts does with a request to a profile path. */
export type RouteAction =
  /** Forward to an endpoint of this type chosen by model and balancer. */
  | "proxy"
  /** Answer from olla-ts's view of the endpoints' health. */
  | "health"
  /** Answer from the model registry in the provider's own list shape. */
  | "models"
  /** Answer from olla-ts's view of which endpoints sleep. */
  | "sleep_status"
  /** Refuse with `status` and `message`; nothing reaches a backend. */
  | "refuse"
  /** A management route: refused unless enabled, then sent to the endpoint the client names. */
  | "management";

/** One allowed path under a profile's prefix. */
export interface RouteRule {
  /** Path after the prefix, without a leading slash; a trailing `/*` matches any subpath. */
  readonly path: string;
  /** @default {["POST"] for proxy and management, ["GET"] otherwise} */
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

/** How a model list is read. */
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

function rule(
  path: string,
  action: RouteAction = "proxy",
  extra: Partial<RouteRule> = {},
): RouteRule {
  const methods = action === "proxy" || action === "management" ? ["POST"] : ["GET"];
  return { path, action, methods, ...extra };
}

const LMDEPLOY_MANAGEMENT = [
  "sleep",
  "wakeup",
  "abort_request",
  "update_weights",
  "init_weights_update_group",
  "update_weights_from_distributed",
  "destroy_weights_update_group",
];

/** LMDeploy's `api_server` (see the reference in shared/reference/lmdeploy-api.md). */
export const LMDEPLOY_PROFILE: Profile = {
  name: "lmdeploy",
  displayName: "LMDeploy",
  aliases: [],
  prefixes: ["lmdeploy"],
  openaiCompatible: true,
  defaultPort: 23333,
  health: { path: "/health", format: "lmdeploy" },
  sleepProbePath: "/is_sleeping",
  wakePath: "/wakeup",
  models: { path: "/v1/models", format: "openai" },
  source: "built-in",
  routes: [
    rule("health", "health"),
    rule("v1/models", "models"),
    rule("is_sleeping", "sleep_status"),
    rule("v1/chat/completions"),
    rule("v1/completions"),
    rule("v1/encode"),
    rule("generate"),
    rule("pooling"),
    rule("get_ppl"),
    rule("v1/responses"),
    rule("v1/messages"),
    rule("v1/messages/count_tokens"),
    rule("anthropic/v1/models", "proxy", { methods: ["GET"] }),
    rule("v1/embeddings", "refuse", {
      methods: ["POST"],
      status: 400,
      message:
        "LMDeploy does not serve /v1/embeddings (it always answers 'Unsupported by turbomind.'); " +
        "use POST /olla/lmdeploy/pooling for reward scores from a reward model",
    }),
    ...LMDEPLOY_MANAGEMENT.map((path) => rule(path, "management")),
    rule("terminate", "management", { methods: ["GET"] }),
    rule("distserve/*", "management", { methods: ["GET", "POST"] }),
  ],
};

/** The profiles olla-ts ships with. */
export const BUILT_IN_PROFILES: readonly Profile[] = [LMDEPLOY_PROFILE];

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
