/**
 * Reading what went wrong from a failed `fetch`. Deno and Bun phrase network failures
 * differently (Deno: `TypeError("fetch failed")` with the reason in `cause`; Bun:
 * `TypeError` with a `code` such as `ECONNREFUSED`), so both are read here and nowhere else.
 *
 * @module
 */

/** Kinds of network failure that matter for failover. */
export type NetworkFailure =
  /** Nothing listens: the backend is down. */
  | "refused"
  /** The connection broke, often a pooled keep-alive connection the backend closed. */
  | "reset"
  /** The host name does not resolve. */
  | "dns"
  | "other";

/**
 * A runtime's fetch error text without what a client must not see or need not read:
 * the backend's URL and address (Deno names them; the endpoint's name says which) and
 * Bun's hint to pass `verbose: true`.
 */
function withoutInternals(text: string): string {
  return text
    .replace(/\.?\s*For more information, pass `verbose: true`[^.]*(?:\.|$)/g, "")
    .replace(/ from \S+ for \S+ \([^)]*\)/g, "")
    .replace(/ for url \([^)]*\)/g, "")
    .replace(/ fetching "[^"]*"/g, "")
    .trim();
}

/** The error's message together with its cause's, for logs, answers and classification. */
export function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? error.cause.message : error.cause;
  const code = (error as { code?: unknown }).code;
  return [
    withoutInternals(error.message),
    typeof cause === "string" ? withoutInternals(cause) : cause,
    typeof code === "string" && !error.message.includes(code) ? code : undefined,
  ]
    .filter((part) => part !== undefined && part !== "")
    .join(": ");
}

/**
 * Whether the backend's answer could not be read as HTTP (Bun's `Malformed_HTTP_Response`,
 * Deno's "message head is too large", a parse error): the upstream's fault, not olla-ts's.
 */
export function isMalformedAnswer(error: unknown): boolean {
  return error instanceof TypeError &&
    /Malformed_HTTP_Response|message head is too large|invalid HTTP|HPE_|parse error|header overflow/i
      .test(describeFetchError(error));
}

/** Whether a thrown value is a network failure from fetch (not an abort or a bug). */
export function isConnectionError(error: unknown): boolean {
  if (isMalformedAnswer(error)) return false;
  return error instanceof TypeError && networkFailureKind(error) !== "other" ||
    error instanceof TypeError &&
      /fetch failed|error sending request|connect/i.test(describeFetchError(error));
}

/** Classifies a network failure. */
export function networkFailureKind(error: unknown): NetworkFailure {
  const text = describeFetchError(error);
  if (/refused|ECONNREFUSED/i.test(text)) return "refused";
  if (/dns error|ENOTFOUND|EAI_AGAIN|lookup address|getaddrinfo/i.test(text)) return "dns";
  if (
    /reset|closed|ECONNRESET|EPIPE|hang up|error reading a body|broken pipe|UND_ERR_SOCKET/i.test(
      text,
    )
  ) {
    return "reset";
  }
  return "other";
}
