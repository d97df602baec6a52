/**
 * Why nothing can serve a request, in words a client can act on: a 404 for a model no
 * endpoint in scope serves, naming the closest model ids served and where they are listed
 * (or the scope's own explanation, such as "use pooling"), or a
 * 503 naming each endpoint's state, with a `Retry-After` from the soonest of their
 * breaker cooldowns, rate limits and next probes. Pure: it reads the selection and the
 * endpoints' state at `now`.
 *
 * @module
 */
import type { Selection } from "./candidates.ts";
import { OllaError, quoted } from "../errors.ts";
import { nearestNames } from "../suggest.ts";
import type { EndpointView } from "../registry/endpoint.ts";

/** What {@linkcode explainUnavailable} reads. */
export interface UnavailableInput {
  selection: Selection;
  model: string | undefined;
  /** Endpoints that may serve this route. */
  scope: readonly EndpointView[];
  /** What to call these endpoints in messages ("LMDeploy", "OpenAI-compatible"). */
  scopeLabel: string;
  now: number;
  /** Whether a wake-up of the named endpoint is in progress. */
  isWaking: (name: string) => boolean;
  /** For a model no endpoint in scope serves: a better answer than 404, if there is one. */
  explainUnknownModel?: (model: string) => OllaError | undefined;
  /** Where this route lists its models (`/olla/lmdeploy/v1/models`), for the 404's hint. */
  modelListPath?: string;
}

/** The 404 or 503 for a request nothing can serve, with the reason and a `Retry-After`. */
export function explainUnavailable(input: UnavailableInput): OllaError {
  const { selection, model, scopeLabel, now } = input;
  if (!selection.known && model !== undefined) {
    const explained = input.explainUnknownModel?.(model);
    if (explained) return explained;
    const served = input.scope.flatMap((endpoint) => [...(endpoint.models?.keys() ?? [])]);
    const nearest = nearestNames(model, new Set(served));
    const hint = (nearest.length > 0
      ? `; did you mean ${
        nearest.map((name) => `'${name}'`).join(" or ")
      }?`
      : "") +
      (input.modelListPath ? ` (GET ${input.modelListPath} lists the models served)` : "");
    return new OllaError(
      404,
      `The model ${quoted(model)} is not served by any ${scopeLabel} endpoint${hint}`,
      {
        code: "model_not_found",
        fault: "client",
        param: "model",
      },
    );
  }
  const unavailable = selection.unavailable.length > 0 ? selection.unavailable : input.scope;
  const waits = unavailable.map((endpoint) =>
    Math.max(
      endpoint.breaker.remainingMs(now),
      endpoint.rateLimitedUntil - now,
      (endpoint.nextCheckAt ?? now) - now,
    )
  );
  const retryAfterSeconds = Math.max(1, Math.ceil(Math.min(...waits, 30_000) / 1000));
  const states = unavailable.map((endpoint) =>
    `${endpoint.name}: ${
      endpoint.breaker.state(now) === "open"
        ? "circuit open"
        : endpoint.held
        ? "drained by an operator"
        : endpoint.status
    }${input.isWaking(endpoint.name) ? " (waking)" : ""}`
  ).join(", ");
  const what = model === undefined ? `No ${scopeLabel} endpoint` : `No endpoint serving '${model}'`;
  const allAsleep = unavailable.length > 0 &&
    unavailable.every((endpoint) => endpoint.status === "sleeping");
  const hint = allAsleep
    ? "; every one is asleep (LMDeploy sleep mode): POST /wakeup on one, or enable proxy.wake_on_demand"
    : "";
  return new OllaError(
    503,
    unavailable.length === 0
      ? `No ${scopeLabel} endpoint is configured`
      : `${what} can take requests now (${states})${hint}`,
    {
      code: allAsleep ? "endpoints_sleeping" : "model_unavailable",
      fault: "upstream",
      retryAfterSeconds,
    },
  );
}
