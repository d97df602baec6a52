/**
 * What a model's name and card say about it, the way Olla's unified model list
 * describes models: family and variant (`llama` `3.2`), parameter size (`7b`),
 * quantization (`q4km`), kind (`llm`, `vlm`, `embeddings`), capabilities and context
 * length. Read from the card's own fields first (Ollama's `details`, LM Studio's `type`,
 * vLLM's `max_model_len`), else from the name. Pure string work, no lookup table.
 *
 * @module
 */
import type { ModelCard } from "./model_lists.ts";

/** A model's kind, as Olla's `type=` filter and LM Studio name them. */
export type ModelKind = "llm" | "vlm" | "embeddings";

/** What olla-ts can tell about a model. */
export interface ModelInfo {
  family: string;
  variant: string;
  parameterSize: string;
  quantization: string;
  kind: ModelKind;
  capabilities: string[];
  maxContextLength?: number;
}

const FAMILY_REGEXP = /^([a-z]+)[-_.]?(\d+(?:\.\d+)?)?/;
const SIZE_REGEXP = /(?:^|[-_:.])(\d+(?:\.\d+)?(?:x\d+)?[bm])(?=$|[-_:.])/;
const QUANT_REGEXP =
  /(?:^|[-_:.])(q\d(?:_k)?(?:_[msl])?|q\d_\d|iq\d\w*|fp16|f16|bf16|fp8|int8|int4|awq|gptq|gguf)(?=$|[-_:.])/;

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function positive(value: unknown): number | undefined {
  return typeof value === "number" && value > 0 ? value : undefined;
}

/** Olla's quantization spelling: lower case without separators (`Q4_K_M` -> `q4km`). */
export function normaliseQuantization(value: string): string {
  return value.toLowerCase().replace(/[^a-z0-9]/g, "");
}

/** The card's context length, where the backend says it. */
function contextLength(raw: Readonly<Record<string, unknown>>): number | undefined {
  return positive(raw.max_model_len) ?? positive(raw.max_context_length) ??
    positive(raw.context_length) ?? positive((raw.meta as Record<string, unknown>)?.n_ctx_train);
}

function kindOf(name: string, raw: Readonly<Record<string, unknown>>): ModelKind {
  const declared = text(raw.type);
  if (declared === "vlm" || declared === "embeddings" || declared === "llm") return declared;
  if (/embed|bge-|e5-|minilm/.test(name)) return "embeddings";
  if (/vision|vlm|llava|-vl\b|-vl-|qwen2\.5-vl|pixtral/.test(name)) return "vlm";
  return "llm";
}

const KIND_CAPABILITIES: Readonly<Record<ModelKind, readonly string[]>> = {
  llm: ["text-generation", "chat", "completion"],
  vlm: ["text-generation", "vision", "multimodal", "image-understanding"],
  embeddings: ["embeddings", "similarity", "vector-search"],
};

const NAME_CAPABILITIES: readonly [RegExp, readonly string[]][] = [
  [/code|coder|codegen|starcoder/, ["code-generation", "programming", "code-completion"]],
  [/instruct|chat|assistant/, ["instruction-following", "chat"]],
  [/reasoning|think|-r1\b/, ["reasoning", "logic"]],
  [/math|mathstral/, ["mathematics", "problem-solving"]],
  [/vision|vlm|llava/, ["vision", "multimodal", "image-understanding"]],
];

/** Describes a model from its id and the card an endpoint reported for it. */
export function modelInfo(card: ModelCard): ModelInfo {
  const raw = card.raw;
  const details = (raw.details ?? {}) as Record<string, unknown>;
  const id = card.id.toLowerCase();
  // `Qwen/Qwen2.5-7B-Instruct` is named after its publisher's slash.
  const name = id.slice(id.lastIndexOf("/") + 1);
  const family = FAMILY_REGEXP.exec(name);
  const kind = kindOf(name, raw);
  const maxContextLength = contextLength(raw);
  const capabilities = new Set(KIND_CAPABILITIES[kind]);
  for (const [pattern, adds] of NAME_CAPABILITIES) {
    if (pattern.test(name)) { for (const capability of adds) capabilities.add(capability); }
  }
  if (maxContextLength !== undefined) {
    if (maxContextLength >= 32_000) capabilities.add("extended-context");
    if (maxContextLength >= 100_000) capabilities.add("long-context");
    if (maxContextLength >= 1_000_000) capabilities.add("ultra-long-context");
  }
  if (kind === "embeddings") capabilities.delete("text-generation");
  return {
    family: text(details.family)?.toLowerCase() ?? family?.[1] ?? "unknown",
    variant: family?.[2] ?? "",
    parameterSize: (text(details.parameter_size) ?? SIZE_REGEXP.exec(name)?.[1] ?? "")
      .toLowerCase(),
    quantization: normaliseQuantization(
      text(details.quantization_level) ?? text(raw.quantization) ?? QUANT_REGEXP.exec(name)?.[1] ??
        "",
    ),
    kind,
    capabilities: [...capabilities],
    maxContextLength,
  };
}

/**
 * A model's state on one endpoint, as Olla reports it: LM Studio's own `state`, `loaded`
 * when the card says so, `available` when it has a size on disk, else `unknown` (every
 * LMDeploy, vLLM and SGLang model: their lists say nothing about it).
 */
export function modelState(card: ModelCard): string {
  const raw = card.raw;
  if (typeof raw.state === "string") return raw.state;
  if (raw.loaded === true) return "loaded";
  if (typeof raw.size === "number" && raw.size > 0) return "available";
  return "unknown";
}

/** Olla's `source` of an alias: the endpoint type without `-` and `_` (`lmstudio`). */
export function aliasSource(type: string): string {
  return type.toLowerCase().replace(/[-_]/g, "");
}
