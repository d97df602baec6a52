/**
 * The unified model list across providers, `/olla/models`, and one model by id,
 * `/olla/models/{id}` (ids containing `/`, as every HuggingFace id does, work: the whole
 * rest of the path is the id). `?format=` picks the shape: `unified` (default, with the
 * endpoints serving each model), `openai`, or a provider's own list shape; `?endpoint=`,
 * `?type=` and `?available=` filter.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import type { AppEnv } from "../app_env.ts";
import { splitTarget } from "../request_target.ts";
import { OllaError } from "../../errors.ts";
import { type ModelCard, openAiModel } from "../../profiles/model_lists.ts";
import type { EndpointView } from "../../registry/endpoint.ts";
import type { Registry } from "../../registry/registry.ts";

/** Collaborators of the model routes. */
export interface ModelRouteDeps {
  registry: Registry;
  /** Renders a provider's own list shape (`lmdeploy`, `ollama`, ...) from cards. */
  nativeFormats: Readonly<Record<string, (cards: readonly ModelCard[]) => unknown>>;
}

interface ModelEntry {
  id: string;
  card: ModelCard;
  endpoints: EndpointView[];
}

function collect(registry: Registry, filters: URLSearchParams): ModelEntry[] {
  const endpointFilter = filters.get("endpoint");
  const typeFilter = filters.get("type");
  const availableFilter = filters.get("available");
  const entries = new Map<string, ModelEntry>();
  for (const endpoint of registry.endpoints) {
    if (endpointFilter !== null && endpoint.name !== endpointFilter) continue;
    if (typeFilter !== null && endpoint.type !== typeFilter) continue;
    for (const card of endpoint.models?.values() ?? []) {
      const entry = entries.get(card.id);
      if (entry) entry.endpoints.push(endpoint);
      else entries.set(card.id, { id: card.id, card, endpoints: [endpoint] });
    }
  }
  const list = [...entries.values()];
  if (availableFilter === null) return list;
  const wanted = availableFilter === "true";
  return list.filter((entry) =>
    entry.endpoints.some((endpoint) => registry.isRoutable(endpoint)) === wanted
  );
}

function unified(registry: Registry, entry: ModelEntry) {
  const raw = entry.card.raw;
  return {
    id: entry.id,
    object: "model",
    created: typeof raw.created === "number" ? raw.created : null,
    owned_by: typeof raw.owned_by === "string" ? raw.owned_by : entry.endpoints[0].type,
    available: entry.endpoints.some((endpoint) => registry.isRoutable(endpoint)),
    types: [...new Set(entry.endpoints.map((endpoint) => endpoint.type))],
    endpoints: entry.endpoints.map((endpoint) => ({
      name: endpoint.name,
      type: endpoint.type,
      status: endpoint.status,
      available: registry.isRoutable(endpoint),
    })),
  };
}

function render(deps: ModelRouteDeps, entries: ModelEntry[], format: string): unknown {
  if (format === "unified") {
    return {
      object: "list",
      data: entries.map((entry) => unified(deps.registry, entry)),
    };
  }
  if (format === "openai") {
    return {
      object: "list",
      data: entries.map((entry) => openAiModel(entry.card, entry.endpoints[0].type)),
    };
  }
  const native = deps.nativeFormats[format];
  if (!native) {
    const formats = ["unified", "openai", ...Object.keys(deps.nativeFormats)].join(", ");
    throw new OllaError(400, `Unknown format "${format}": use one of ${formats}`, {
      code: "invalid_format",
      fault: "client",
      param: "format",
    });
  }
  return native(entries.map((entry) => entry.card));
}

/** `GET /olla/models`. */
function listModels(deps: ModelRouteDeps) {
  return function modelList(c: Context<AppEnv>): Response {
    const params = new URLSearchParams(splitTarget(c.req.url).search);
    return c.json(
      render(deps, collect(deps.registry, params), params.get("format") ?? "unified") as object,
    );
  };
}

/** `GET /olla/models/{id}`, where the id is the rest of the path and may contain `/`. */
function getModel(deps: ModelRouteDeps) {
  return function modelById(c: Context<AppEnv>): Response {
    const target = splitTarget(c.req.url);
    const params = new URLSearchParams(target.search);
    let id: string;
    try {
      id = decodeURIComponent(target.path.slice("/olla/models/".length));
    } catch {
      throw new OllaError(400, "The model id in the path is not valid percent-encoding", {
        code: "invalid_path",
        fault: "client",
      });
    }
    const entry = collect(deps.registry, params).find((candidate) => candidate.id === id);
    if (!entry) {
      throw new OllaError(404, `The model '${id}' is not served by any endpoint`, {
        code: "model_not_found",
        fault: "client",
        param: "model",
      });
    }
    const format = params.get("format") ?? "unified";
    if (format === "unified") return c.json(unified(deps.registry, entry));
    const list = render(deps, [entry], format) as { data?: unknown[] };
    return c.json((Array.isArray(list.data) ? list.data[0] : list) as object);
  };
}

/** The model list routes as a sub-app. */
export function modelRoutes(deps: ModelRouteDeps): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .get("/olla/models", listModels(deps))
    .get("/olla/models/*", getModel(deps));
}
