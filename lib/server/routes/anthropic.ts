/**
 * The Anthropic Messages API under `/olla/anthropic/`: `POST v1/messages`, `POST
 * v1/messages/count_tokens` and `GET v1/models` (Olla's three routes), present while
 * `translators.anthropic.enabled` is on.
 *
 * Messages are routed like every other request (by `model`, through `model_aliases`, the
 * routing strategy, failover before the first byte, admission, sticky sessions) across
 * every endpoint, and adapted per endpoint after selection: passed through unchanged to
 * engines with a native Messages API, translated for the rest (translate/). Every error
 * answer on these routes, olla-ts's own or a backend's, is in Anthropic's envelope.
 *
 * As in Olla, these routes spend no rate-limit tokens: Claude Code and other agents send
 * bursts of requests, and Olla users' setups rely on them not being refused.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { servableCards } from "./local_answers.ts";
import { forwardingOf, type ProviderRouteDeps } from "./provider.ts";
import type { AppEnv } from "../app_env.ts";
import { splitTarget } from "../request_target.ts";
import type { Config } from "../../config/schema.ts";
import { DEFAULT_MESSAGE_BYTES } from "../../config/schema_translators.ts";
import { OllaError } from "../../errors.ts";
import { type Inspector, inspectorSession } from "../../translate/inspector.ts";
import { MESSAGES_ROUTE } from "../../observability/translator_stats.ts";
import type { Bytes } from "../../proxy/body_read.ts";
import type { BodyFields } from "../../proxy/body_scan.ts";
import { OLLA } from "../../proxy/olla_headers.ts";
import { canCount, type CountSource, countTokensPlan } from "../../translate/anthropic_count.ts";
import {
  anthropicErrorBody,
  errorMessageOf,
  isAnthropicError,
} from "../../translate/anthropic_errors.ts";
import { messagesPlan, type NativeMessagesSupport } from "../../translate/anthropic_plan.ts";
import {
  type MessagesRequest,
  MessagesRequestError,
  parseMessagesRequest,
} from "../../translate/anthropic_validate.ts";
import { estimateInputTokens } from "../../translate/token_estimate.ts";

/** Collaborators of the Anthropic routes. */
export interface AnthropicRouteDeps extends ProviderRouteDeps {
  anthropic: Config["translators"]["anthropic"];
  nativeMessages: NativeMessagesSupport;
  /** `translators.anthropic.inspector`, when enabled. */
  inspector?: Inspector;
  /** When the process started, Olla's `created_at` for every listed model. */
  startedAt: number;
}

const PREFIX = "/olla/anthropic";
/** Anthropic's model list, also named in the 404 for a model no endpoint serves. */
const MODELS_ROUTE = `${PREFIX}/v1/models`;
const MAX_ERROR_BYTES = 64 * 1024;
const decoder = new TextDecoder();

/** A Messages body parsed and checked, or olla-ts's 400 naming the field. */
function parseBody(body: Bytes): MessagesRequest {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(body));
  } catch {
    throw new OllaError(400, "invalid request: the body is not valid JSON", {
      code: "invalid_json",
      fault: "client",
    });
  }
  try {
    return parseMessagesRequest(json);
  } catch (error) {
    if (!(error instanceof MessagesRequestError)) throw error;
    throw new OllaError(400, `invalid request: ${error.message}`, {
      code: "invalid_request",
      fault: "client",
      param: error.field,
    });
  }
}

/** An error answer in Anthropic's envelope, keeping its status and headers. */
async function asAnthropicError(response: Response, requestId: string): Promise<Response> {
  const text = response.body
    ? decoder.decode((await response.arrayBuffer()).slice(0, MAX_ERROR_BYTES))
    : "";
  const headers = new Headers(response.headers);
  headers.delete("content-length");
  headers.set("content-type", "application/json");
  headers.set("request-id", requestId);
  const body = isAnthropicError(text)
    ? text
    : anthropicErrorBody(response.status, errorMessageOf(text) ?? "Backend error", requestId);
  return new Response(body, { status: response.status, headers });
}

/** Every endpoint that can take a Messages request, one way or the other. */
function messagesScope(deps: AnthropicRouteDeps) {
  return deps.registry.endpoints.filter((endpoint) =>
    endpoint.profile.anthropic !== undefined || endpoint.profile.openaiCompatible
  );
}

function messages(deps: AnthropicRouteDeps, maxBytes: number) {
  return async function messagesRoute(c: Context<AppEnv>): Promise<Response> {
    c.set("route", { template: MESSAGES_ROUTE });
    const url = splitTarget(c.req.url);
    return await deps.dispatcher.dispatch({
      request: c.req.raw,
      record: c.get("record"),
      scope: messagesScope(deps),
      scopeKey: "anthropic",
      scopeLabel: "Messages-capable",
      upstreamPath: "/v1/messages",
      modelListPath: MODELS_ROUTE,
      forwarding: forwardingOf(c, url.proto),
      maxBodyBytes: maxBytes,
      adapt: (body: Bytes, fields: BodyFields) => {
        const request = parseBody(body);
        const inspector = deps.inspector;
        const session = inspector &&
          inspectorSession(c.req.raw.headers, deps.anthropic.inspector.session_header);
        if (inspector && session) {
          void inspector.record(session, "request", request.raw, request.model);
        }
        return messagesPlan({
          request,
          body,
          modelRange: fields.modelRange,
          passthrough: deps.anthropic.passthrough_enabled,
          support: deps.nativeMessages,
          hasVersionHeader: c.req.header("anthropic-version") !== undefined,
          inspectAnswer: inspector && session
            ? (message) => void inspector.record(session, "response", message, request.model)
            : undefined,
        });
      },
    });
  };
}

function countTokens(deps: AnthropicRouteDeps, maxBytes: number) {
  return async function countTokensRoute(c: Context<AppEnv>): Promise<Response> {
    c.set("route", { template: `${PREFIX}/v1/messages/count_tokens` });
    const url = splitTarget(c.req.url);
    let request: MessagesRequest | undefined;
    let source: CountSource = "estimate";
    let answer: Response | undefined;
    try {
      answer = await deps.dispatcher.dispatch({
        request: c.req.raw,
        record: c.get("record"),
        scope: deps.registry.endpoints.filter((endpoint) =>
          canCount(endpoint, deps.nativeMessages)
        ),
        scopeKey: "anthropic",
        scopeLabel: "token-counting",
        upstreamPath: "/v1/messages/count_tokens",
        modelListPath: MODELS_ROUTE,
        forwarding: forwardingOf(c, url.proto),
        maxBodyBytes: maxBytes,
        adapt: (body: Bytes, fields: BodyFields) => {
          // count_tokens takes no max_tokens; checked like a Messages request otherwise.
          request = parseBody(withMaxTokens(body));
          return countTokensPlan({
            request,
            body,
            modelRange: fields.modelRange,
            support: deps.nativeMessages,
            hasVersionHeader: c.req.header("anthropic-version") !== undefined,
            onSource: (used) => source = used,
          });
        },
      });
    } catch (error) {
      // A body olla-ts cannot read is the client's mistake; anything else is estimated.
      if (!request) throw error;
    }
    if (answer?.ok) {
      answer.headers.set(OLLA.tokenCount, source);
      return answer;
    }
    await answer?.body?.cancel();
    const headers = { [OLLA.tokenCount]: "estimate" };
    return c.json(
      { input_tokens: estimateInputTokens((request as MessagesRequest).raw) },
      200,
      headers,
    );
  };
}

/** The body with `max_tokens` added when absent (count_tokens requests do not carry it). */
function withMaxTokens(body: Bytes): Bytes {
  try {
    const json = JSON.parse(decoder.decode(body));
    if (json !== null && typeof json === "object" && json.max_tokens === undefined) {
      return new TextEncoder().encode(JSON.stringify({ ...json, max_tokens: 1 }));
    }
  } catch {
    // parseBody reports it.
  }
  return body;
}

/** The Anthropic routes as a sub-app (empty while the translator is disabled). */
export function anthropicRoutes(deps: AnthropicRouteDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  if (!deps.anthropic.enabled) return app;
  const configured = deps.anthropic.max_message_size;
  const maxBytes = configured > 0 ? configured : DEFAULT_MESSAGE_BYTES;

  app.use(`${PREFIX}/*`, async (c, next) => {
    await next();
    if (c.res.status >= 400) c.res = await asAnthropicError(c.res, c.get("record").id);
  });
  app.post(`${PREFIX}/v1/messages`, messages(deps, maxBytes));
  app.post(`${PREFIX}/v1/messages/count_tokens`, countTokens(deps, maxBytes));
  app.get(MODELS_ROUTE, (c) => {
    c.set("route", { template: MODELS_ROUTE });
    const createdAt = new Date(deps.startedAt).toISOString();
    const cards = servableCards(deps.registry.endpoints, deps.wakeOnDemand, deps.registry.now());
    const data = cards.map((card) => ({
      type: "model",
      id: card.id,
      display_name: card.id,
      created_at: createdAt,
    }));
    return c.json({
      data,
      has_more: false,
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
    });
  });
  return app;
}
