/**
 * How a request is sent to one endpoint when that depends on the endpoint chosen, and
 * how that endpoint's answer becomes the client's: the Anthropic Messages route sends a
 * request unchanged to an engine that serves the Messages API (passthrough) and
 * translates it for one that does not. Plans are made per attempt, after selection, so a
 * fleet whose engines differ (native paths, translation) is served as one.
 *
 * @module
 */
import type { Bytes } from "./body_read.ts";
import type { UsageSummary } from "./usage.ts";
import type { EndpointView } from "../registry/endpoint.ts";

/**
 * Why a request was translated: the engine has no native Messages API, its version lacks
 * the path its profile names, or passthrough is turned off.
 */
export type TranslationFallback =
  | "no_native_support"
  | "native_path_missing"
  | "passthrough_disabled";

/**
 * Turns one streamed answer into the client's, chunk by chunk. It reads every event
 * anyway, so it also reports the answer's usage (no separate usage observer runs).
 */
export interface StreamTranslation {
  /** The client's bytes for one upstream chunk, or `undefined` when it completes nothing. */
  push(chunk: Uint8Array, now: number): Uint8Array | undefined;
  /** The closing bytes once the upstream stream has ended. */
  end(): Uint8Array;
  /** The closing bytes for a stream cut short. */
  fail(message: string): Uint8Array;
  /** What the answer said about its cost, once it has ended. */
  usage(): UsageSummary;
}

/** Turns an endpoint's successful (2xx) answer into the client's. */
export interface AnswerTranslation {
  /** Content type of the translated answer. */
  readonly contentType: "application/json";
  /** A whole JSON answer. */
  json(bytes: Bytes): Bytes;
  /** A fresh translation for one SSE stream. */
  stream(): StreamTranslation;
}

/** The request for one endpoint. */
export interface UpstreamPlan {
  /** Path and query, starting with `/`. */
  readonly path: string;
  readonly body: Bytes;
  /** Headers to send besides the client's (an endpoint's own credentials still win). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Reported in `X-Olla-Mode`. */
  readonly mode: "passthrough" | "translation";
  /** Why a request was translated rather than passed through, for the translator statistics. */
  readonly fallback?: TranslationFallback;
  /** Present when the answer must be translated back. */
  readonly answer?: AnswerTranslation;
  /**
   * The closing bytes for a passed-through stream cut short, in the answer's own dialect
   * (an Anthropic `error` event), instead of the OpenAI-style error event.
   */
  errorTail?(message: string): Uint8Array;
  /**
   * For a passthrough: whether a 404/405 answer means the engine lacks the native path
   * (an older version), rather than a real "not found". The attempt is then re-planned
   * with translation on the same endpoint.
   */
  isMissingPath?(status: number, body: string): boolean;
}

/** Makes the plan for an endpoint and the model name it knows; `translate` forces translation. */
export type PlanFor = (
  endpoint: EndpointView,
  model: string | undefined,
  translate: boolean,
) => UpstreamPlan;
