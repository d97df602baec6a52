/**
 * The types every route and middleware shares, in a file of their own below the app that
 * mounts them: what the runtime passes with each request, and the per-request variables
 * the request context and the guard set.
 *
 * @module
 */
import type { Principal } from "./auth.ts";
import type { RateDecision } from "./rate_limit.ts";
import type { RequestRecord } from "../proxy/request_record.ts";

/** Address of the peer that opened the connection. */
export interface ConnInfo {
  /** IP address of the client as the socket sees it (no proxy headers applied). */
  remoteAddr: string;
  /** Called once the answer has been sent in full (or abandoned); Bun restores the idle timeout. */
  onFinished?: () => void;
}

/**
 * How a route names itself where Hono's route template is not precise enough: provider
 * and unified routes label each request with the profile path it matched (a bounded
 * metric label) and the backend type it addresses.
 */
export interface RouteLabel {
  /** The route template, such as `/olla/lmdeploy/v1/chat/completions`. */
  readonly template: string;
  /** The backend type the route addresses, for `X-Olla-Backend-Type` on local answers. */
  readonly backendType?: string;
}

/** Hono environment of the app. */
export interface AppEnv {
  Bindings: ConnInfo;
  Variables: {
    /** The request's record (request_context.ts creates it). */
    record: RequestRecord;
    /** The client's address after trusted-proxy handling. */
    clientIp: string;
    /** Who presented a valid inbound key, when one was checked (the guard sets it). */
    principal: Principal | undefined;
    /** Set by routes whose template is finer than Hono's. */
    route: RouteLabel | undefined;
    /** Rate-limit decisions that applied (the guard and the rate gate set them). */
    rateDecisions: readonly RateDecision[] | undefined;
  };
}
