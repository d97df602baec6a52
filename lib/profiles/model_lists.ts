/**
 * Model lists in each backend's own shape: parsing what an endpoint reports into cards
 * (kept whole, as the backend sent them) and rendering cards back in a list format.
 *
 * @module
 */
import type { ModelListFormat } from "./profile.ts";

/** One model as an endpoint reported it. */
export interface ModelCard {
  readonly id: string;
  /** The card exactly as the backend returned it (LMDeploy's `root`, `permission`, ...). */
  readonly raw: Readonly<Record<string, unknown>>;
}

/**
 * Parses a model list body. OpenAI-style lists (`{"data":[{"id":...}]}`, which LMDeploy,
 * vLLM, SGLang, llama.cpp and LM Studio use) keep every card field; Ollama's
 * `{"models":[{"name":...}]}` is keyed by `name`. Entries without an id are skipped.
 *
 * @throws {TypeError} when the body is not a model list of that format.
 */
export function parseModelList(format: ModelListFormat, body: unknown): ModelCard[] {
  const key = format === "ollama" ? "models" : "data";
  const idField = format === "ollama" ? "name" : "id";
  const items = (body as Record<string, unknown> | null)?.[key];
  if (!Array.isArray(items)) {
    throw new TypeError(`Cannot read model list: expected an object with a "${key}" array`);
  }
  const cards: ModelCard[] = [];
  for (const item of items) {
    if (item === null || typeof item !== "object") continue;
    const id = (item as Record<string, unknown>)[idField];
    if (typeof id === "string" && id !== "") {
      cards.push({ id, raw: item as Record<string, unknown> });
    }
  }
  return cards;
}

/**
 * Renders cards in a model-list format, the inverse of {@linkcode parseModelList}: each
 * card as its backend reported it, with the fields the format requires filled in when a
 * card came from another kind of backend.
 */
export function renderModelList(format: ModelListFormat, cards: readonly ModelCard[]): unknown {
  if (format === "ollama") {
    return { models: cards.map((card) => ({ name: card.id, model: card.id, ...card.raw })) };
  }
  return {
    object: "list",
    data: cards.map((card) =>
      "id" in card.raw && "object" in card.raw
        ? card.raw
        : { id: card.id, object: "model", owned_by: "olla-ts", ...card.raw }
    ),
  };
}

/** An OpenAI model object for a card. */
export function openAiModel(card: ModelCard, fallbackOwner: string) {
  const raw = card.raw;
  return {
    id: card.id,
    object: "model",
    created: typeof raw.created === "number" ? raw.created : Math.floor(Date.now() / 1000),
    owned_by: typeof raw.owned_by === "string" ? raw.owned_by : fallbackOwner,
  };
}
