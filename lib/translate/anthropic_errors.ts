/**
 * Anthropic's error envelope, `{"type":"error","error":{"type","message"},"request_id"}`,
 * which the Anthropic SDKs turn into their typed errors (`NotFoundError`,
 * `RateLimitError`, ...). Every answer with an error status on `/olla/anthropic/*` is
 * rendered in it: olla-ts's own errors and a backend's, whatever shape the backend used.
 *
 * @module
 */

/** Anthropic's error type for an HTTP status. */
export function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
    case 405:
    case 415:
    case 422:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 402:
      return "billing_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 408:
    case 504:
      return "timeout_error";
    case 529:
      return "overloaded_error";
    default:
      return status === 503 ? "overloaded_error" : "api_error";
  }
}

/** The envelope's JSON text. */
export function anthropicErrorBody(status: number, message: string, requestId?: string): string {
  return JSON.stringify({
    type: "error",
    error: { type: anthropicErrorType(status), message },
    ...(requestId === undefined ? {} : { request_id: requestId }),
  });
}

/** The message inside an error body of any common shape, or `undefined`. */
export function errorMessageOf(text: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    const trimmed = text.trim();
    return trimmed === "" ? undefined : trimmed.slice(0, 2_000);
  }
  if (value === null || typeof value !== "object") return undefined;
  const record = value as Record<string, unknown>;
  const error = record.error;
  if (typeof error === "string") return error;
  if (error && typeof error === "object") {
    const message = (error as Record<string, unknown>).message;
    if (typeof message === "string") return message;
  }
  if (typeof record.message === "string") return record.message;
  // FastAPI's {"detail": "..."} or {"detail": [{"msg": ...}]}.
  if (typeof record.detail === "string") return record.detail;
  if (Array.isArray(record.detail)) {
    return record.detail.map((item) => (item as { msg?: unknown })?.msg).filter(Boolean).join("; ");
  }
  return undefined;
}

/** Whether `text` already is Anthropic's envelope (a native backend's own error). */
export function isAnthropicError(text: string): boolean {
  return /^\s*\{\s*"type"\s*:\s*"error"/.test(text);
}
