/**
 * Olla's own profile files (`config/profiles/*.yaml` in Olla) as olla-ts profiles, so an
 * Olla profile directory works as `proxy.profiles_dir` unchanged. What olla-ts acts on is
 * mapped: name, display name, route prefixes, OpenAI compatibility, health and model
 * discovery paths, the model list format, native Anthropic support and the allowed
 * paths. Olla's hints olla-ts has no use for (characteristics, detection, request
 * parsing, path indices, model patterns, resources) are accepted and named in one
 * warning per file.
 *
 * A file for a type olla-ts ships keeps the built-in's rules (its local answers,
 * refusals and management routes) and adds the file's other paths as forwarded routes.
 *
 * @module
 */
import { list, obj, optObj } from "../schema/composites.ts";
import { bool, opaque, optStr, str } from "../schema/scalars.ts";
import type { ParseContext } from "../schema/spec.ts";
import { type Profile, RESERVED_PREFIXES } from "./profile.ts";

/** Olla's profile sections olla-ts reads nothing from. */
const IGNORED_SECTIONS = [
  "home",
  "version",
  "description",
  "characteristics",
  "detection",
  "path_indices",
  "models",
  "resources",
  "metrics",
] as const;

/** The schema of an Olla profile file, as far as olla-ts reads it. */
export const ollaProfileSpec = obj({
  name: str({ default: "", doc: "" }),
  display_name: optStr({ doc: "" }),
  routing: obj({ prefixes: list(str({ default: "", doc: "" }), { default: [], doc: "" }) }),
  api: obj({
    openai_compatible: bool({ default: false, doc: "" }),
    anthropic_support: optObj({
      enabled: bool({ default: false, doc: "" }),
      messages_path: str({ default: "/v1/messages", doc: "" }),
      token_count: bool({ default: false, doc: "" }),
      min_version: optStr({ doc: "" }),
      limitations: list(str({ default: "", doc: "" }), { default: [], doc: "" }),
    }, { doc: "" }),
    paths: list(str({ default: "", doc: "" }), { default: [], doc: "" }),
    model_discovery_path: optStr({ doc: "" }),
    health_check_path: optStr({ doc: "" }),
    metrics_path: optStr({ doc: "" }),
    stats_path: optStr({ doc: "" }),
    props_path: optStr({ doc: "" }),
    slots_path: optStr({ doc: "" }),
  }),
  request: opaque({ doc: "" }),
  ...Object.fromEntries(IGNORED_SECTIONS.map((key) => [key, opaque({ doc: "" })])),
});

/** Whether a parsed profile file is in Olla's shape (it has `routing:` or `api:`). */
export function isOllaProfile(value: unknown): boolean {
  return value !== null && typeof value === "object" && ("api" in value || "routing" in value);
}

function modelFormat(request: unknown): string {
  const format = (request as { response_format?: unknown } | undefined)?.response_format;
  return format === "ollama" || format === "lmstudio" ? format : "openai";
}

/**
 * Olla profile data as olla-ts profile data, over `builtIn` when the file is for a type
 * olla-ts ships. Ignored sections that are present are reported once, as a warning.
 */
export function fromOllaProfile(
  raw: Record<string, unknown>,
  builtIn: Profile | undefined,
  ctx: ParseContext,
): Record<string, unknown> {
  const olla = ollaProfileSpec.parse(raw, [], ctx);
  const ignored = [...IGNORED_SECTIONS, "request"].filter((key) => raw[key] !== undefined);
  if (ignored.length > 0) {
    ctx.warn(
      [],
      `Olla profile "${olla.name}": ${
        ignored.join(", ")
      } are Olla's hints olla-ts does not use; they are ignored`,
    );
  }
  const { api } = olla;
  const rules: RuleData[] = builtIn ? builtIn.routes.map(ruleData) : [];
  const covered = (path: string) =>
    rules.some((rule) =>
      rule.path === path ||
      (rule.path.endsWith("/*") && path.startsWith(rule.path.slice(0, -1)))
    );
  const discovery = api.model_discovery_path ?? builtIn?.models.path ?? "/v1/models";
  for (const modelsPath of [discovery, "/v1/models"]) {
    const path = modelsPath.replace(/^\/+/, "");
    if (path !== "" && !covered(path)) {
      rules.push({ path, action: "models", format: path === "v1/models" ? "openai" : undefined });
    }
  }
  for (const full of api.paths) {
    const path = full.replace(/^\/+/, "").replace(/\/+$/, "");
    if (path !== "" && !covered(path)) rules.push({ path, methods: ["GET", "POST"] });
  }
  const anthropic = api.anthropic_support?.enabled
    ? {
      messages_path: api.anthropic_support.messages_path,
      token_count: api.anthropic_support.token_count,
    }
    : undefined;
  const data: Record<string, unknown> = {
    name: olla.name,
    display_name: olla.display_name ?? builtIn?.displayName,
    aliases: [...(builtIn?.aliases ?? [])],
    // Olla's openai-compatible profile claims the prefix "openai", which is olla-ts's (and
    // Olla's) unified route; olla-ts keeps it for that.
    prefixes: olla.routing.prefixes.length > 0
      ? olla.routing.prefixes.filter((prefix) => !RESERVED_PREFIXES.includes(prefix))
      : [...(builtIn?.prefixes ?? [])],
    openai_compatible: api.openai_compatible,
    default_port: builtIn?.defaultPort ?? 0,
    health: {
      path: api.health_check_path ?? builtIn?.health.path ?? "/health",
      format: builtIn?.health.format ?? "status",
    },
    sleep_probe_path: builtIn?.sleepProbePath,
    wake_path: builtIn?.wakePath,
    models: { path: discovery, format: modelFormat(olla.request) },
    openai_base: builtIn?.openaiBase ?? "",
    anthropic,
    detect: builtIn?.detect,
    routes: rules,
  };
  return data;
}

interface RuleData {
  path: string;
  action?: string;
  methods?: string[];
  status?: number;
  message?: string;
  format?: string;
}

function ruleData(rule: Profile["routes"][number]): RuleData {
  return {
    path: rule.path,
    action: rule.action,
    methods: [...rule.methods],
    status: rule.status,
    message: rule.message,
    format: rule.format,
  };
}
