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

/** Whether a card came from an OpenAI-style list (it has the fields that shape requires). */
function isOpenAiCard(card: ModelCard): boolean {
  return "id" in card.raw && "object" in card.raw;
}

/**
 * Renders cards in a model-list format, the inverse of {@linkcode parseModelList}: each
 * card as its backend reported it when it already has that shape (LMDeploy's cards keep
 * `root`, `permission`, ...), else built from what the card knows: OpenAI's four fields
 * for an Ollama card, LM Studio's `type` and `state` for another backend's card.
 */
export function renderModelList(format: ModelListFormat, cards: readonly ModelCard[]): unknown {
  if (format === "ollama") {
    return { models: cards.map((card) => ({ name: card.id, model: card.id, ...card.raw })) };
  }
  if (format === "lmstudio") {
    return {
      object: "list",
      data: cards.map((card) =>
        "state" in card.raw
          ? card.raw
          : { ...openAiModel(card, "olla"), type: "llm", state: "not-loaded" }
      ),
    };
  }
  return {
    object: "list",
    data: cards.map((card) => isOpenAiCard(card) ? card.raw : openAiModel(card, "olla")),
  };
}

/** A card's creation time in Unix seconds: its own `created`, or Ollama's `modified_at`. */
export function createdOf(card: ModelCard): number | undefined {
  const { created, modified_at: modified } = card.raw;
  if (typeof created === "number") return created;
  if (typeof modified === "string") {
    const ms = Date.parse(modified);
    if (!Number.isNaN(ms)) return Math.floor(ms / 1000);
  }
  return undefined;
}

/** An OpenAI model object for a card. */
export function openAiModel(card: ModelCard, fallbackOwner: string) {
  const raw = card.raw;
  return {
    id: card.id,
    object: "model",
    created: createdOf(card) ?? Math.floor(Date.now() / 1000),
    owned_by: typeof raw.owned_by === "string" ? raw.owned_by : fallbackOwner,
  };
}
