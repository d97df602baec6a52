/**
 * The unified model catalogue behind `/olla/models`: one entry per model id across every
 * endpoint, with what olla-ts can tell about it, filtered as Olla filters.
 *
 * Filters: `endpoint=` (name or URL), `family=`, `type=` (the model kind `llm`, `vlm` or
 * `embeddings`, as in Olla; any other value is taken as a backend type, olla-ts's
 * earlier meaning), `capability=`, `available=true|false` (whether an endpoint can serve
 * it now), and `include_unavailable=true`. Without the last two, models no endpoint can
 * serve now are left out, as Olla leaves them out.
 *
 * @module
 */
import { OllaError } from "../../errors.ts";
import { type ModelInfo, modelInfo, type ModelKind } from "../../profiles/model_info.ts";
import type { ModelCard } from "../../profiles/model_lists.ts";
import type { EndpointView } from "../../registry/endpoint.ts";
import { isRoutable } from "../../registry/endpoint_state.ts";
import type { Registry } from "../../registry/registry.ts";

/** One model of the catalogue. */
export interface CatalogEntry {
  readonly id: string;
  /** The card from the first endpoint that listed it. */
  readonly card: ModelCard;
  readonly info: ModelInfo;
  /** Every endpoint that lists it, with its card there and whether it can serve now. */
  readonly sources: readonly { endpoint: EndpointView; card: ModelCard; routable: boolean }[];
  /** Whether one of them can serve it now. */
  readonly available: boolean;
}

const KINDS: readonly ModelKind[] = ["llm", "vlm", "embeddings"];

/** Olla's capability filter values, as model kinds. */
const CAPABILITY_KIND: Readonly<Record<string, ModelKind>> = {
  vision: "vlm",
  multimodal: "vlm",
  embedding: "embeddings",
  embeddings: "embeddings",
  vector_search: "embeddings",
  chat: "llm",
  text_generation: "llm",
  completion: "llm",
};

/** Every model any endpoint lists, in the order endpoints were configured. */
export function catalog(registry: Registry): CatalogEntry[] {
  const now = registry.now();
  const byId = new Map<string, { card: ModelCard; sources: CatalogEntry["sources"][number][] }>();
  for (const endpoint of registry.endpoints) {
    for (const card of endpoint.models?.values() ?? []) {
      const entry = byId.get(card.id);
      const source = { endpoint, card, routable: isRoutable(endpoint, now) };
      if (entry) entry.sources.push(source);
      else byId.set(card.id, { card, sources: [source] });
    }
  }
  return [...byId].map(([id, { card, sources }]) => ({
    id,
    card,
    info: modelInfo(card),
    sources,
    available: sources.some((source) => source.routable),
  }));
}

/**
 * The entries the query's filters keep.
 *
 * @throws {OllaError} 400 for an `available` that is neither `true` nor `false`.
 */
export function filterCatalog(
  entries: readonly CatalogEntry[],
  params: URLSearchParams,
): CatalogEntry[] {
  const endpoint = params.get("endpoint");
  const family = params.get("family");
  const type = params.get("type");
  const capability = params.get("capability");
  const available = params.get("available");
  if (available !== null && available !== "true" && available !== "false") {
    throw new OllaError(400, "invalid value for 'available' parameter. Use 'true' or 'false'", {
      code: "invalid_filter",
      fault: "client",
      param: "available",
    });
  }
  const includeUnavailable = params.get("include_unavailable") === "true" || available !== null;
  const kind = type !== null && (KINDS as readonly string[]).includes(type)
    ? type
    : capability !== null
    ? CAPABILITY_KIND[capability.toLowerCase()] ?? capability
    : undefined;
  return entries.flatMap((entry) => {
    if (!includeUnavailable && !entry.available) return [];
    if (available !== null && entry.available !== (available === "true")) return [];
    if (family !== null && entry.info.family !== family) return [];
    if (kind !== undefined && entry.info.kind !== kind) return [];
    let sources = entry.sources;
    if (type !== null && kind === undefined) {
      sources = sources.filter((source) => source.endpoint.type === type);
    }
    if (endpoint !== null) {
      sources = sources.filter((source) =>
        source.endpoint.name === endpoint || source.endpoint.config.url === endpoint
      );
    }
    if (sources.length === 0) return [];
    return [sources === entry.sources ? entry : { ...entry, card: sources[0].card, sources }];
  });
}
