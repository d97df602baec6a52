/**
 * The body of `/internal/status/models`, in Olla's shape: one summary per model name
 * across every endpoint that has a model list (unhealthy ones included), the ten most
 * recently seen, every name by family, and with `?detailed=true&group=family` the
 * summaries grouped by family. olla-ts's earlier fields (`models`: id, endpoints, types,
 * availability; `total`) stay beside them.
 *
 * As in Olla, `family`, `params`, `quant`, `size` and `capabilities` come from the card
 * the backend sent (Ollama's `details`, LM Studio's `type`), not from guessing at the
 * name, so LMDeploy, vLLM and SGLang models group under `unknown`. A model's `aliases`
 * are the `model_aliases` names that lead to it. `last_seen` is when its endpoint's
 * model list was last read.
 *
 * @module
 */
import { endpointIds } from "./endpoint_ids.ts";
import { agoText, bytesText } from "../../observability/olla_text.ts";
import type { ModelCard } from "../../profiles/model_lists.ts";
import type { EndpointView } from "../../registry/endpoint.ts";
import type { Registry } from "../../registry/registry.ts";

/** The model-list parsers Olla names a summary's `type` after; others are `model`. */
const PARSER_TYPES = new Set([
  "lmdeploy",
  "vllm",
  "sglang",
  "llamacpp",
  "lemonade",
  "docker-model-runner",
  "vllm-mlx",
]);

interface ModelSummary {
  name: string;
  type?: string;
  family?: string;
  size?: string;
  params?: string;
  quant?: string;
  last_seen: string;
  last_seen_at?: string;
  endpoints: string[];
  endpoint_ids: string[];
  aliases?: string[];
  capabilities?: string[];
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function parserType(endpoint: EndpointView): string | undefined {
  if (endpoint.profile.models.format === "ollama") return undefined;
  return PARSER_TYPES.has(endpoint.type) ? endpoint.type : "model";
}

/** Capabilities the card itself states (Olla infers none from the name here). */
function cardCapabilities(card: ModelCard): string[] {
  const raw = card.raw;
  const details = (raw.details ?? {}) as Record<string, unknown>;
  const capabilities: string[] = [];
  const kind = text(raw.type);
  if (kind === "vlm") capabilities.push("vision", "multimodal");
  if (kind === "embeddings") capabilities.push("embeddings", "vector_search");
  if (kind === "llm") capabilities.push("text_generation", "chat");
  const context = [raw.max_context_length, raw.context_length, raw.max_model_len]
    .find((value) => typeof value === "number");
  if (typeof context === "number" && context > 100_000) capabilities.push("long_context");
  const quant = (text(details.quantization_level) ?? text(raw.quantization) ?? "").toLowerCase();
  if (quant === "fp16" || quant === "bf16" || quant === "f16") capabilities.push("high_precision");
  return capabilities;
}

/** Fills the fields still empty from another endpoint's card (the first non-empty wins). */
function mergeCard(summary: ModelSummary, card: ModelCard): void {
  const details = (card.raw.details ?? {}) as Record<string, unknown>;
  summary.family ??= text(details.family);
  summary.params ??= text(details.parameter_size);
  summary.quant ??= text(details.quantization_level);
  if (summary.size === undefined && typeof card.raw.size === "number" && card.raw.size > 0) {
    summary.size = bytesText(card.raw.size);
  }
  if (summary.capabilities === undefined) {
    const capabilities = cardCapabilities(card);
    if (capabilities.length > 0) summary.capabilities = capabilities;
  }
}

function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** One summary per model name, endpoints visited in URL order as Olla visits them. */
function summaries(
  registry: Registry,
  aliases: Readonly<Record<string, readonly string[]>>,
  now: number,
): ModelSummary[] {
  const ids = endpointIds(registry.endpoints);
  const listed = registry.endpoints.filter((endpoint) => endpoint.models !== undefined)
    .sort((a, b) => byText(a.config.url, b.config.url));
  const byName = new Map<string, ModelSummary & { seenAt: number }>();
  for (const endpoint of listed) {
    const seenAt = endpoint.modelsUpdatedAt ?? 0;
    for (const card of endpoint.models?.values() ?? []) {
      let summary = byName.get(card.id);
      if (!summary) {
        summary = { name: card.id, last_seen: "", endpoints: [], endpoint_ids: [], seenAt: -1 };
        const type = parserType(endpoint);
        if (type !== undefined) summary.type = type;
        byName.set(card.id, summary);
      }
      summary.endpoints.push(endpoint.name);
      summary.endpoint_ids.push(ids.get(endpoint.name) ?? "");
      if (seenAt > summary.seenAt) summary.seenAt = seenAt;
      mergeCard(summary, card);
    }
  }
  const aliasesOf = new Map<string, string[]>();
  for (const [alias, targets] of Object.entries(aliases)) {
    for (const target of targets) aliasesOf.set(target, [...(aliasesOf.get(target) ?? []), alias]);
  }
  return [...byName.values()].map(({ seenAt, ...summary }) => {
    const pairs = summary.endpoints.map((name, i) => [name, summary.endpoint_ids[i]] as const)
      .sort(([a, x], [b, y]) => byText(a, b) || byText(x, y));
    const modelAliases = aliasesOf.get(summary.name);
    return {
      ...summary,
      last_seen: agoText(seenAt > 0 ? seenAt : undefined, now),
      ...(seenAt > 0 ? { last_seen_at: new Date(seenAt).toISOString() } : {}),
      endpoints: pairs.map(([name]) => name),
      endpoint_ids: pairs.map(([, id]) => id),
      ...(modelAliases ? { aliases: modelAliases.sort(byText) } : {}),
      seenAt,
    };
  }).sort((a, b) => b.seenAt - a.seenAt || byText(a.name, b.name))
    .map(({ seenAt: _seenAt, ...summary }) => summary);
}

/** The body of `/internal/status/models`; `params` holds `detailed` and `group`. */
export function modelStatusBody(
  registry: Registry,
  aliases: Readonly<Record<string, readonly string[]>>,
  params: URLSearchParams,
) {
  const now = registry.now();
  const all = summaries(registry, aliases, now);
  const byFamily = new Map<string, ModelSummary[]>();
  for (const summary of all) {
    const family = summary.family ?? "unknown";
    byFamily.set(family, [...(byFamily.get(family) ?? []), summary]);
  }
  const families = [...byFamily.keys()].sort((a, b) =>
    Number(a === "unknown") - Number(b === "unknown") || byText(a, b)
  );
  const detailed = params.get("detailed") === "true" && params.get("group") === "family";
  const models = [...registry.modelIds()].sort().map((id) => {
    const serving = [...(registry.endpointsServing(id) ?? [])].map((name) =>
      registry.get(name) as EndpointView
    );
    return {
      id,
      endpoints: serving.map((endpoint) => endpoint.name),
      types: [...new Set(serving.map((endpoint) => endpoint.type))],
      available: serving.some((endpoint) => registry.isRoutable(endpoint)),
    };
  });
  return {
    timestamp: new Date(now).toISOString(),
    models_by_family: Object.fromEntries(
      [...byFamily.keys()].sort(byText).map((family) => [
        family,
        (byFamily.get(family) ?? []).map((summary) => summary.name).sort(byText),
      ]),
    ),
    recent_models: all.slice(0, 10),
    ...(detailed
      ? {
        model_groups: families.map((family) => {
          const members = byFamily.get(family) ?? [];
          return {
            family,
            models: members,
            endpoints: [...new Set(members.flatMap((summary) => summary.endpoints))].sort(byText),
            model_count: members.length,
          };
        }),
      }
      : {}),
    total_models: all.length,
    total_families: byFamily.size,
    total_endpoints: registry.endpoints.filter((endpoint) => endpoint.models !== undefined).length,
    // olla-ts's own
    total: models.length,
    models,
  };
}
