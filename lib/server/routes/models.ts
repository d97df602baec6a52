/**
 * The unified model list across providers, `/olla/models`, and one model by id,
 * `/olla/models/{id}` (ids containing `/`, as every HuggingFace id does, work: the whole
 * rest of the path is the id). `?format=` picks the shape (model_formats.ts); the other
 * parameters filter (model_catalog.ts).
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { OllaError, quoted } from "../../errors.ts";
import type { Registry } from "../../registry/registry.ts";
import type { AppEnv } from "../app_env.ts";
import { splitTarget } from "../request_target.ts";
import { catalog, type CatalogEntry, filterCatalog } from "./model_catalog.ts";
import { MODEL_FORMATS, unifiedEntry } from "./model_formats.ts";

/** Collaborators of the model routes. */
export interface ModelRouteDeps {
  registry: Registry;
}

function render(entries: readonly CatalogEntry[], format: string, now: number): unknown {
  const renderer = MODEL_FORMATS[format];
  if (!renderer) {
    throw new OllaError(
      400,
      `invalid query parameter format=${format}: unsupported format. Supported formats: ${
        Object.keys(MODEL_FORMATS).join(", ")
      }`,
      { code: "invalid_format", fault: "client", param: "format" },
    );
  }
  return renderer(entries, now);
}

/** `GET /olla/models`. */
function listModels(deps: ModelRouteDeps) {
  return function modelList(c: Context<AppEnv>): Response {
    const params = new URLSearchParams(splitTarget(c.req.url).search);
    const entries = filterCatalog(catalog(deps.registry), params);
    return c.json(
      render(entries, params.get("format") ?? "unified", deps.registry.now()) as object,
    );
  };
}

/**
 * `GET /olla/models/{id}`, where the id is the rest of the path and may contain `/`:
 * the unified entry with Olla's fields for one model (`family`, `endpoints` by name,
 * `loaded_endpoints`, `last_seen`, ...), or the entry in `?format=`.
 */
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
    params.set("include_unavailable", "true");
    const entry = filterCatalog(catalog(deps.registry), params).find((item) => item.id === id);
    if (!entry) {
      throw new OllaError(404, `The model ${quoted(id)} is not served by any endpoint`, {
        code: "model_not_found",
        fault: "client",
        param: "model",
      });
    }
    const now = deps.registry.now();
    const format = params.get("format") ?? "unified";
    if (format !== "unified") {
      const list = render([entry], format, now) as { data?: unknown[]; models?: unknown[] };
      return c.json((list.data?.[0] ?? list.models?.[0] ?? list) as object);
    }
    const seen = entry.sources.map(({ endpoint }) => endpoint.modelsUpdatedAt ?? 0);
    return c.json({
      ...unifiedEntry(entry, now),
      family: entry.info.family,
      variant: entry.info.variant,
      parameter_size: entry.info.parameterSize,
      quantization: entry.info.quantization,
      format: entry.sources[0].endpoint.profile.models.format,
      last_seen: new Date(Math.max(...seen)).toISOString(),
      aliases: [entry.id],
      loaded_endpoints: entry.sources.filter((source) => source.routable)
        .map((source) => source.endpoint.name),
      capabilities: entry.info.capabilities,
      ...(entry.info.maxContextLength === undefined
        ? {}
        : { max_context_length: entry.info.maxContextLength }),
    });
  };
}

/** The model list routes as a sub-app. */
export function modelRoutes(deps: ModelRouteDeps): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .get("/olla/models", listModels(deps))
    .get("/olla/models/*", getModel(deps));
}
