/**
 * The two reasons an attempt ends without an answer that are not the endpoint's doing:
 * olla-ts stopping it (a timeout, the deadline) and the client going away.
 *
 * @module
 */
import { OllaError } from "../errors.ts";

/** Why olla-ts itself stopped an attempt. */
export class AttemptStop extends Error {
  constructor(
    readonly reason: "header_timeout" | "connect_timeout" | "body_timeout" | "deadline",
    message: string,
  ) {
    super(message);
  }
}

/** An answer's body that went silent for longer than `proxy.read_timeout`. */
export function bodyTimeout(endpointName: string): AttemptStop {
  return new AttemptStop(
    "body_timeout",
    `Endpoint "${endpointName}" stopped sending its answer for longer than proxy.read_timeout`,
  );
}

/** The client went away before an answer (nginx's 499). */
export function clientClosed(cause: unknown): OllaError {
  return new OllaError(499, "The client closed the request", {
    code: "client_closed",
    fault: "client",
    cause,
  });
}
