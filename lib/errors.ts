/**
 * Errors olla-ts answers itself, and the single place they become HTTP responses.
 *
 * The body is one envelope that both kinds of client read: an OpenAI SDK looks at
 * `error.message` (nested, with a string `code`), while clients written for LMDeploy read
 * its flat shape (`message`, `type`, integer `code`, `object: "error"`):
 *
 * ```json
 * {"object":"error","message":"...","type":"not_found_error","code":404,"param":null,
 *  "error":{"message":"...","type":"not_found_error","code":"model_not_found","param":null}}
 * ```
 *
 * Errors that a backend produced are never rewritten; they pass through as they are.
 *
 * @module
 */

/** Whose fault an error is, for metrics and logs (Bifrost's caller/policy/provider idea). */
export type Fault = "client" | "policy" | "upstream" | "proxy";

/** Options for {@linkcode OllaError}. */
export interface OllaErrorOptions {
  /** Machine-readable reason, such as `model_not_found`. */
  code: string;
  fault: Fault;
  /** OpenAI error type; derived from the status when absent. */
  type?: string;
  /** The request field at fault, when there is one. */
  param?: string;
  /** Seconds after which a retry may succeed; sent as `Retry-After`. */
  retryAfterSeconds?: number;
  /** Extra response headers (for example `WWW-Authenticate`). */
  headers?: Readonly<Record<string, string>>;
  cause?: unknown;
}

/** Longest client-supplied value a message quotes whole. */
const QUOTED_CHARACTERS = 128;

/**
 * A client-supplied value as a message quotes it: in quotes, cut after 128 characters
 * with its length said, so a request naming a megabyte-long model does not get a
 * megabyte-long answer (twice: the envelope carries the message twice) and access line.
 */
export function quoted(value: string): string {
  return value.length <= QUOTED_CHARACTERS
    ? `'${value}'`
    : `'${value.slice(0, QUOTED_CHARACTERS)}...' (${value.length} characters)`;
}

/**
 * A client-supplied value (a path) as a message or log line shows it unquoted: cut after
 * `max` characters with its length said. Request targets may be megabytes long where the
 * header limit allows it.
 */
export function clipped(value: string, max = QUOTED_CHARACTERS): string {
  return value.length <= max ? value : `${value.slice(0, max)}... (${value.length} characters)`;
}

/** An error olla-ts answers itself with a given HTTP status. */
export class OllaError extends Error {
  readonly status: number;
  readonly code: string;
  readonly fault: Fault;
  readonly type: string;
  readonly param: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, message: string, options: OllaErrorOptions) {
    super(message, { cause: options.cause });
    this.name = "OllaError";
    this.status = status;
    this.code = options.code;
    this.fault = options.fault;
    this.type = options.type ?? typeForStatus(status);
    this.param = options.param;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.headers = options.headers ?? {};
  }
}

function typeForStatus(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 413 || status === 431) return "invalid_request_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/**
 * Renders an error as the JSON envelope. Anything that is not an {@linkcode OllaError}
 * is a bug in olla-ts and becomes a 500 without its message (which could hold internals).
 */
export function errorResponse(error: unknown, headers?: Headers): Response {
  const known = error instanceof OllaError
    ? error
    : new OllaError(500, "Internal error in olla-ts", { code: "internal_error", fault: "proxy" });
  const out = headers ?? new Headers();
  out.set("content-type", "application/json");
  for (const [name, value] of Object.entries(known.headers)) out.set(name, value);
  if (known.retryAfterSeconds !== undefined) {
    out.set("retry-after", String(Math.max(1, Math.ceil(known.retryAfterSeconds))));
  }
  const body = {
    object: "error",
    message: known.message,
    type: known.type,
    code: known.status,
    param: known.param ?? null,
    error: {
      message: known.message,
      type: known.type,
      code: known.code,
      param: known.param ?? null,
    },
  };
  return new Response(JSON.stringify(body), { status: known.status, headers: out });
}
