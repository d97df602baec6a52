/**
 * Per endpoint, how a Messages request is sent: unchanged to an engine that serves the
 * Messages API itself (passthrough, to that engine's own path), else translated to OpenAI
 * chat completions with the answer translated back. Decided per attempt, after selection,
 * so one fleet may mix native paths (`/v1/messages`, DMR's `/anthropic/v1/messages`) and
 * translated engines.
 *
 * An engine whose profile claims native support but whose version lacks the path (LMDeploy
 * before 0.13, vLLM before 0.11.1, Ollama before 0.14 answer 404 "Not Found") is
 * translated instead, on the same attempt, and remembered so later requests go straight
 * to translation.
 *
 * @module
 */
import { isAnthropicError } from "./anthropic_errors.ts";
import { toOpenAiChat } from "./anthropic_request.ts";
import { type AnswerContext, toAnthropicMessage } from "./anthropic_response.ts";
import { AnthropicStreamTranslator } from "./anthropic_stream.ts";
import { type MessagesRequest, MessagesRequestError } from "./anthropic_validate.ts";
import { MessageRebuilder } from "./inspector.ts";
import { estimateInputTokens } from "./token_estimate.ts";
import { OllaError } from "../errors.ts";
import type { Bytes } from "../proxy/body_read.ts";
import { replaceModel } from "../proxy/body_scan.ts";
import type {
  AnswerTranslation,
  PlanFor,
  StreamTranslation,
  TranslationFallback,
  UpstreamPlan,
} from "../proxy/upstream_plan.ts";
import type { EndpointView } from "../registry/endpoint.ts";

/** The Anthropic API version sent to engines that require the header, when the client sent none. */
export const ANTHROPIC_VERSION = "2023-06-01";

/** A route-missing answer from the servers engines are built on (FastAPI, Go, llama.cpp). */
const MISSING_PATH_REGEXP =
  /^\s*\{\s*"detail"\s*:\s*"(?:Not Found|Method Not Allowed)"\s*\}\s*$|page not found|File Not Found/i;

/** Endpoints found to lack their profile's native Messages path (one owner: the route). */
export class NativeMessagesSupport {
  readonly #missing = new Set<string>();

  lacks(endpoint: string): boolean {
    return this.#missing.has(endpoint);
  }

  markMissing(endpoint: string): void {
    this.#missing.add(endpoint);
  }
}

/** What a Messages plan is made from. */
export interface MessagesPlanInput {
  request: MessagesRequest;
  /** The body as the client sent it. */
  body: Bytes;
  /** Where its `model` value sits, for an alias rewrite in passthrough. */
  modelRange: readonly [number, number] | undefined;
  /** `translators.anthropic.passthrough_enabled`. */
  passthrough: boolean;
  support: NativeMessagesSupport;
  /** Whether the client sent `anthropic-version` (LMDeploy refuses requests without it). */
  hasVersionHeader: boolean;
  /** With the inspector on: records each translated answer (a stream rebuilt whole). */
  inspectAnswer?: (message: unknown) => void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An untranslatable request as olla-ts's 400. */
function refusal(error: unknown): never {
  if (error instanceof MessagesRequestError) {
    throw new OllaError(400, `invalid request: ${error.message}`, {
      code: "invalid_request",
      fault: "client",
      param: error.field,
    });
  }
  throw error;
}

function answerTranslation(
  context: AnswerContext,
  inputTokens: number,
  inspect: ((message: unknown) => void) | undefined,
): AnswerTranslation {
  return {
    contentType: "application/json",
    json(bytes) {
      const message = toAnthropicMessage(JSON.parse(decoder.decode(bytes)), context);
      inspect?.(message);
      return encoder.encode(JSON.stringify(message));
    },
    stream() {
      const translator = new AnthropicStreamTranslator({
        ...context,
        inputTokensEstimate: inputTokens,
      });
      return inspect ? inspected(translator, inspect) : translator;
    },
  };
}

/** A stream translation whose output is also rebuilt into one message for the inspector. */
function inspected(
  translator: StreamTranslation,
  inspect: (message: unknown) => void,
): StreamTranslation {
  const rebuilt = new MessageRebuilder();
  const seen = (bytes: Uint8Array | undefined) => {
    if (bytes) rebuilt.push(bytes);
    return bytes;
  };
  const finish = (bytes: Uint8Array) => {
    rebuilt.push(bytes);
    inspect(rebuilt.message());
    return bytes;
  };
  return {
    push: (chunk, now) => seen(translator.push(chunk, now)),
    end: () => finish(translator.end()),
    fail: (message) => finish(translator.fail(message)),
    usage: () => translator.usage(),
  };
}

/** The plan for each endpoint, for one request. */
export function messagesPlan(input: MessagesPlanInput): PlanFor {
  const { request, support } = input;
  const stopSequences = Array.isArray(request.raw.stop_sequences)
    ? request.raw.stop_sequences.filter((item): item is string => typeof item === "string")
    : [];
  const context: AnswerContext = { model: request.model, stopSequences };
  let inputTokens: number | undefined;
  const headers = input.hasVersionHeader ? undefined : { "anthropic-version": ANTHROPIC_VERSION };

  const passthrough = (endpoint: EndpointView, model: string | undefined): UpstreamPlan => {
    const body = input.modelRange && model !== undefined && model !== request.model
      ? replaceModel(input.body, input.modelRange, model)
      : input.body;
    return {
      path: (endpoint.profile.anthropic as { messagesPath: string }).messagesPath,
      body,
      headers,
      mode: "passthrough",
      errorTail: (message) =>
        encoder.encode(
          `event: error\ndata: ${
            JSON.stringify({ type: "error", error: { type: "api_error", message } })
          }\n\n`,
        ),
      isMissingPath(status, text) {
        const missing = status === 405 ||
          (!isAnthropicError(text) && MISSING_PATH_REGEXP.test(text));
        if (missing) support.markMissing(endpoint.name);
        return missing;
      },
    };
  };

  const translation = (
    endpoint: EndpointView,
    model: string | undefined,
    fallback: TranslationFallback,
  ): UpstreamPlan => {
    let chat;
    try {
      chat = toOpenAiChat(request, model ?? request.model);
    } catch (error) {
      refusal(error);
    }
    inputTokens ??= estimateInputTokens(request.raw);
    return {
      path: `${endpoint.profile.openaiBase}/v1/chat/completions`,
      body: encoder.encode(JSON.stringify(chat)),
      mode: "translation",
      fallback,
      answer: answerTranslation(context, inputTokens, input.inspectAnswer),
    };
  };

  return (endpoint, model, translate) => {
    if (!input.passthrough) return translation(endpoint, model, "passthrough_disabled");
    if (!endpoint.profile.anthropic) return translation(endpoint, model, "no_native_support");
    if (translate || support.lacks(endpoint.name)) {
      return translation(endpoint, model, "native_path_missing");
    }
    return passthrough(endpoint, model);
  };
}
