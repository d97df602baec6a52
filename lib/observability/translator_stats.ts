/**
 * Olla's `/internal/stats/translators` counts for the Anthropic translator, from the
 * finished `/olla/anthropic/v1/messages` requests (count_tokens and the model list are not
 * counted, as in Olla): requests by mode and by streaming, success, the mean latency of
 * successful ones, and why requests were translated rather than passed through.
 *
 * As in Olla, a request *failed* only when olla-ts answered with its own error (a body it
 * refused, no endpoint, a proxy failure); a backend's 4xx or 5xx handed on still counts
 * as the translator's success.
 *
 * @module
 */
import { latencyText, percentText } from "./olla_text.ts";
import type { RequestRecord } from "../proxy/request_record.ts";

/** The route template the statistics count. */
export const MESSAGES_ROUTE = "/olla/anthropic/v1/messages";

/** The Anthropic translator's counters. */
export class TranslatorStats {
  #requests = 0;
  #failed = 0;
  #passthrough = 0;
  #translation = 0;
  #streaming = 0;
  #successLatencyMs = 0;
  #noNativeSupport = 0;
  #cannotPassthrough = 0;

  observe(record: RequestRecord, latencyMs: number): void {
    if (record.route !== MESSAGES_ROUTE) return;
    this.#requests++;
    if (record.error) this.#failed++;
    else this.#successLatencyMs += latencyMs;
    if (record.mode === "passthrough") this.#passthrough++;
    if (record.mode === "translation") this.#translation++;
    if (record.stream) this.#streaming++;
    if (record.modeFallback === "no_native_support") this.#noNativeSupport++;
    else if (record.modeFallback !== undefined) this.#cannotPassthrough++;
  }

  /** The body of `/internal/stats/translators`, in Olla's shape. */
  body(now: number) {
    const requests = this.#requests;
    const successful = requests - this.#failed;
    const percent = (part: number) => percentText(requests === 0 ? 0 : (part / requests) * 100);
    const translators = requests === 0 ? [] : [{
      translator_name: "anthropic",
      total_requests: requests,
      successful_requests: successful,
      failed_requests: this.#failed,
      success_rate: percent(successful),
      passthrough_requests: this.#passthrough,
      translation_requests: this.#translation,
      passthrough_rate: percent(this.#passthrough),
      streaming_requests: this.#streaming,
      non_streaming_requests: requests - this.#streaming,
      average_latency: latencyText(successful === 0 ? 0 : this.#successLatencyMs / successful),
      fallback_no_compatible_endpoints: this.#noNativeSupport,
      fallback_translator_does_not_support_passthrough: 0,
      fallback_cannot_passthrough: this.#cannotPassthrough,
    }];
    return {
      timestamp: new Date(now).toISOString(),
      translators,
      summary: {
        total_translators: 1,
        active_translators: translators.length,
        total_requests: requests,
        overall_success_rate: percent(successful),
        total_passthrough: this.#passthrough,
        total_translations: this.#translation,
        overall_passthrough_rate: percent(this.#passthrough),
        total_streaming: this.#streaming,
        total_non_streaming: requests - this.#streaming,
      },
    };
  }
}
