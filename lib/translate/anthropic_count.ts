/**
 * `count_tokens` per endpoint: the engine's own Messages `count_tokens` where it has one
 * (LMDeploy 0.13+, llama.cpp, Docker Model Runner, vLLM-MLX); else the engine's tokenizer
 * (vLLM's `/tokenize` over the chat messages, with the chat template; LMDeploy's
 * `/v1/encode` over the text); else no endpoint is asked and the route answers Olla's
 * estimate (token_estimate.ts). The answer says which in `X-Olla-Token-Count`: `native`,
 * `tokenizer` or `estimate`.
 *
 * @module
 */
import { isAnthropicError } from "./anthropic_errors.ts";
import type { NativeMessagesSupport } from "./anthropic_plan.ts";
import { toOpenAiChat } from "./anthropic_request.ts";
import type { MessagesRequest } from "./anthropic_validate.ts";
import { OllaError } from "../errors.ts";
import type { Bytes } from "../proxy/body_read.ts";
import { replaceModel } from "../proxy/body_scan.ts";
import type { AnswerTranslation, PlanFor, UpstreamPlan } from "../proxy/upstream_plan.ts";
import type { EndpointView } from "../registry/endpoint.ts";

/** How a count was made, for `X-Olla-Token-Count`. */
export type CountSource = "native" | "tokenizer" | "estimate";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Types whose tokenizer olla-ts can call, and how. */
const TOKENIZERS: Readonly<Record<string, "vllm" | "lmdeploy">> = {
  vllm: "vllm",
  lmdeploy: "lmdeploy",
};

function hasNativeCount(endpoint: EndpointView, support: NativeMessagesSupport): boolean {
  return endpoint.profile.anthropic?.tokenCount === true && !support.lacks(endpoint.name);
}

/** Whether an endpoint can count a request's tokens (natively or with its tokenizer). */
export function canCount(endpoint: EndpointView, support: NativeMessagesSupport): boolean {
  return hasNativeCount(endpoint, support) || TOKENIZERS[endpoint.type] !== undefined;
}

/** The plain text of a chat request's messages, for tokenizers that take text. */
function chatText(chat: Record<string, unknown>): string {
  const messages = chat.messages as { content?: unknown }[];
  return messages.map((message) =>
    typeof message.content === "string"
      ? message.content
      : Array.isArray(message.content)
      ? message.content.map((part) => (part as { text?: string }).text ?? "").join("\n")
      : ""
  ).join("\n");
}

function countAnswer(read: (answer: Record<string, unknown>) => unknown): AnswerTranslation {
  return {
    contentType: "application/json",
    json: (bytes) => {
      const count = read(JSON.parse(decoder.decode(bytes)));
      if (typeof count !== "number") throw new TypeError("the tokenizer's answer has no count");
      return encoder.encode(JSON.stringify({ input_tokens: count }));
    },
    stream: () => {
      throw new TypeError("a token count is not streamed");
    },
  };
}

/** What a count plan is made from. */
export interface CountPlanInput {
  request: MessagesRequest;
  body: Bytes;
  modelRange: readonly [number, number] | undefined;
  support: NativeMessagesSupport;
  hasVersionHeader: boolean;
  /** Told which source the chosen endpoint counted with. */
  onSource: (source: CountSource) => void;
}

/** The count plan for each endpoint, for one request. */
export function countTokensPlan(input: CountPlanInput): PlanFor {
  const { request, support } = input;
  const native = (endpoint: EndpointView, model: string | undefined): UpstreamPlan => ({
    path: `${(endpoint.profile.anthropic as { messagesPath: string }).messagesPath}/count_tokens`,
    body: input.modelRange && model !== undefined && model !== request.model
      ? replaceModel(input.body, input.modelRange, model)
      : input.body,
    headers: input.hasVersionHeader ? undefined : { "anthropic-version": "2023-06-01" },
    mode: "passthrough",
    isMissingPath(status, text) {
      const missing = status === 405 || (status === 404 && !isAnthropicError(text));
      if (missing) support.markMissing(endpoint.name);
      return missing;
    },
  });
  const tokenizer = (endpoint: EndpointView, model: string | undefined): UpstreamPlan => {
    const kind = TOKENIZERS[endpoint.type];
    if (kind === undefined) {
      // Its native count is missing and it has no tokenizer olla-ts can call.
      throw new OllaError(501, `Endpoint "${endpoint.name}" cannot count tokens`, {
        code: "no_tokenizer",
        fault: "upstream",
      });
    }
    const chat = toOpenAiChat(request, model ?? request.model);
    if (kind === "vllm") {
      return {
        path: "/tokenize",
        body: encoder.encode(JSON.stringify({
          model: chat.model,
          messages: chat.messages,
          add_generation_prompt: true,
        })),
        mode: "translation",
        answer: countAnswer((answer) => answer.count),
      };
    }
    return {
      path: "/v1/encode",
      body: encoder.encode(JSON.stringify({ input: chatText(chat), do_preprocess: false })),
      mode: "translation",
      answer: countAnswer((answer) => answer.length),
    };
  };
  return (endpoint, model, translate) => {
    const useNative = !translate && hasNativeCount(endpoint, support);
    input.onSource(useNative ? "native" : "tokenizer");
    return useNative ? native(endpoint, model) : tokenizer(endpoint, model);
  };
}
