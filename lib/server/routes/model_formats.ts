/**
 * The catalogue in every list shape Olla's `/olla/models?format=` has: `unified` (the
 * default, with Olla's `olla` object and olla-ts's per-endpoint view), `openai`,
 * `ollama` and `lmstudio` (only models an endpoint of that type serves, as Olla lists
 * them), and each engine's own card shape (`lmdeploy`, `vllm`, `sglang`, `llamacpp`,
 * `lemonade`, `docker-model-runner`, `vllm-mlx`). A card an engine reported in its own
 * shape is passed on as it is (LMDeploy's cards keep `root` and `parent`, which Olla's
 * converter drops); others are built from what the card knows.
 *
 * @module
 */
import { aliasSource, modelState } from "../../profiles/model_info.ts";
import { createdOf, type ModelCard } from "../../profiles/model_lists.ts";
import type { CatalogEntry } from "./model_catalog.ts";

/** `owned_by` as Olla derives it: the publisher before `/`, else the format's name. */
function ownerOf(id: string, fallback: string): string {
  const slash = id.indexOf("/");
  return slash > 0 ? id.slice(0, slash) : fallback;
}

/** `at` is the registry's time in ms: a card without a creation time is dated now. */
function base(entry: CatalogEntry, owner: string, at: number) {
  return {
    id: entry.id,
    object: "model",
    created: createdOf(entry.card) ?? Math.floor(at / 1000),
    owned_by: ownerOf(entry.id, owner),
  };
}

/** The card reported by an endpoint of `type`, when one serves the model. */
function cardFrom(entry: CatalogEntry, type: string): ModelCard | undefined {
  return entry.sources.find((source) => source.endpoint.type === type)?.card;
}

function permission(id: string, at: number) {
  return [{
    id: `modelperm-olla-${id.replaceAll("/", "-")}`,
    object: "model_permission",
    created: Math.floor(at / 1000),
    allow_create_engine: false,
    allow_sampling: true,
    allow_logprobs: true,
    allow_search_indices: false,
    allow_view: true,
    allow_fine_tuning: false,
    organization: "*",
    group: null,
    is_blocking: false,
  }];
}

/** One unified entry: Olla's fields, its `olla` object, and olla-ts's endpoint view. */
export function unifiedEntry(entry: CatalogEntry, now: number) {
  const { info } = entry;
  return {
    id: entry.id,
    object: "model",
    created: createdOf(entry.card) ?? Math.floor(now / 1000),
    owned_by: typeof entry.card.raw.owned_by === "string"
      ? entry.card.raw.owned_by
      : entry.sources[0].endpoint.type,
    olla: {
      family: info.family,
      variant: info.variant,
      parameter_size: info.parameterSize,
      quantization: info.quantization,
      aliases: [
        ...new Map(
          entry.sources.map(({ endpoint }) => [aliasSource(endpoint.type), {
            name: entry.id,
            source: aliasSource(endpoint.type),
          }]),
        ).values(),
      ],
      availability: entry.sources.map(({ endpoint, card }) => ({
        endpoint: endpoint.name,
        state: modelState(card),
      })),
      capabilities: info.capabilities,
      ...(info.maxContextLength === undefined ? {} : { max_context_length: info.maxContextLength }),
    },
    available: entry.available,
    types: [...new Set(entry.sources.map(({ endpoint }) => endpoint.type))],
    endpoints: entry.sources.map(({ endpoint, routable }) => ({
      name: endpoint.name,
      type: endpoint.type,
      status: endpoint.status,
      available: routable,
    })),
  };
}

const QUANT_NAMES: Readonly<Record<string, string>> = { q4km: "Q4_K_M", q8: "Q8_0", f16: "F16" };

type Renderer = (entries: readonly CatalogEntry[], now: number) => unknown;

const list = (data: unknown[]) => ({ object: "list", data });

/** Renderers by format name. */
export const MODEL_FORMATS: Readonly<Record<string, Renderer>> = {
  unified: (entries, at) => list(entries.map((entry) => unifiedEntry(entry, at))),
  openai: (entries, at) => list(entries.map((entry) => base(entry, "olla", at))),
  ollama: (entries, at) => ({
    models: entries.flatMap((entry) => {
      const card = cardFrom(entry, "ollama");
      if (!card) return [];
      const details = (card.raw.details ?? {}) as Record<string, unknown>;
      return [{
        name: entry.id,
        model: entry.id,
        modified_at: card.raw.modified_at ?? new Date(at).toISOString(),
        size: card.raw.size ?? 0,
        digest: card.raw.digest ?? "",
        details: {
          family: details.family ?? entry.info.family,
          parameter_size: details.parameter_size ?? entry.info.parameterSize.toUpperCase(),
          quantization_level: details.quantization_level ??
            QUANT_NAMES[entry.info.quantization] ?? entry.info.quantization.toUpperCase(),
        },
      }];
    }),
  }),
  lmstudio: (entries) =>
    list(entries.flatMap((entry) => {
      const card = cardFrom(entry, "lm-studio");
      if (!card) return [];
      const raw = card.raw;
      return [{
        id: entry.id,
        object: "model",
        type: typeof raw.type === "string" ? raw.type : entry.info.kind,
        ...(typeof raw.publisher === "string" ? { publisher: raw.publisher } : {}),
        ...(typeof raw.arch === "string" ? { arch: raw.arch } : {}),
        ...(typeof raw.quantization === "string" ? { quantization: raw.quantization } : {}),
        state: typeof raw.state === "string" ? raw.state : "not-loaded",
        ...(entry.info.maxContextLength === undefined
          ? {}
          : { max_context_length: entry.info.maxContextLength }),
      }];
    })),
  lmdeploy: (entries, at) =>
    list(entries.map((entry) =>
      cardFrom(entry, "lmdeploy")?.raw ??
        {
          ...base(entry, "lmdeploy", at),
          root: entry.id,
          parent: null,
          permission: permission(entry.id, at),
        }
    )),
  vllm: (entries, at) =>
    list(entries.map((entry) =>
      cardFrom(entry, "vllm")?.raw ?? {
        ...base(entry, "vllm", at),
        root: entry.id,
        ...(entry.info.maxContextLength === undefined
          ? {}
          : { max_model_len: entry.info.maxContextLength }),
        permission: permission(entry.id, at),
      }
    )),
  sglang: (entries, at) =>
    list(
      entries.map((entry) =>
        cardFrom(entry, "sglang")?.raw ?? { ...base(entry, "sglang", at), root: entry.id }
      ),
    ),
  llamacpp: (entries, at) => ({
    ...list(
      entries.map((entry) => cardFrom(entry, "llamacpp")?.raw ?? base(entry, "llamacpp", at)),
    ),
    models: null,
  }),
  lemonade: (entries, at) =>
    list(entries.map((entry) =>
      cardFrom(entry, "lemonade")?.raw ??
        { ...base(entry, "lemonade", at), checkpoint: entry.id, recipe: "" }
    )),
  "docker-model-runner": (entries, at) =>
    list(
      entries.map((entry) =>
        cardFrom(entry, "docker-model-runner")?.raw ?? base(entry, "docker", at)
      ),
    ),
  "vllm-mlx": (entries, at) =>
    list(entries.map((entry) => cardFrom(entry, "vllm-mlx")?.raw ?? base(entry, "vllm-mlx", at))),
};
