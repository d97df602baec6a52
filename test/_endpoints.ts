/** Builders for endpoint configurations and registries in unit tests. */
import type { Clock } from "../lib/clock.ts";
import { type EndpointConfig, endpointSpec } from "../lib/config/schema_endpoint.ts";
import { BUILT_IN_PROFILES } from "../lib/profiles/built_in.ts";
import { ProfileSet } from "../lib/profiles/profile.ts";
import { Registry } from "../lib/registry/registry.ts";
import { ParseContext } from "../lib/schema/spec.ts";

/** An endpoint config with defaults; `fields` uses the YAML key names. */
export function endpointConfig(fields: Record<string, unknown>): EndpointConfig {
  const ctx = new ParseContext();
  const config = endpointSpec.parse({ type: "lmdeploy", ...fields }, [], ctx);
  if (ctx.errors.length > 0) throw new Error(JSON.stringify(ctx.errors));
  return config;
}

export const profiles = new ProfileSet(BUILT_IN_PROFILES);

/** A registry of LMDeploy endpoints named after their URLs' hosts unless named. */
export function registryOf(
  endpoints: Record<string, unknown>[],
  clock: Clock,
  options: { breakerFailureThreshold?: number; breakerCooldownMs?: number } = {},
): Registry {
  return new Registry(endpoints.map(endpointConfig), profiles, { clock, ...options });
}
