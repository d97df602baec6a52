/**
 * Recognising the kind of backend behind an endpoint of type `auto`: each candidate
 * profile's own distinguishing probe (Ollama's `/api/version`, llama.cpp's `/props`,
 * LM Studio's `/api/v0/models`, SGLang's `/get_server_info`, vLLM's `/version`,
 * LMDeploy's `/is_sleeping`, ..., and a plain OpenAI `/v1/models` last), in
 * {@linkcode DETECTION_ORDER}. A probe matches when it answers 200 with a JSON object
 * holding the profile's field. Olla instead GETs one model-list URL and lets every
 * parser try it, so its Ollama parser "detects" any OpenAI server; olla-ts does not.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { DETECTION_ORDER } from "../profiles/built_in.ts";
import type { Profile, ProfileSet } from "../profiles/profile.ts";
import type { EndpointView } from "../registry/endpoint.ts";
import { endpointUrl } from "../upstream/endpoint_url.ts";
import { describeFetchError, isConnectionError } from "../upstream/fetch_errors.ts";
import { boundedText } from "../upstream/bounded_text.ts";
import { fetchWithin } from "../upstream/timed_fetch.ts";

/** Options for {@linkcode detectProfile}. */
export interface DetectOptions {
  fetch: typeof fetch;
  clock: Clock;
  profiles: ProfileSet;
}

/** The profiles to try, in order: the built-in order, then user profiles with a probe. */
export function detectionCandidates(profiles: ProfileSet): Profile[] {
  const ordered = DETECTION_ORDER.map((name) => profiles.forType(name))
    .filter((profile): profile is Profile => profile?.detect !== undefined);
  const others = profiles.all.filter((profile) =>
    profile.detect !== undefined && !ordered.includes(profile)
  );
  // The generic OpenAI probe matches every OpenAI server, so it stays last.
  const generic = ordered.filter((profile) => profile.name === "openai-compatible");
  return [...ordered.filter((profile) => !generic.includes(profile)), ...others, ...generic];
}

/**
 * The profile of the backend behind `endpoint`, or the reason none matched (the last
 * probe's failure, for the status page).
 */
export async function detectProfile(
  endpoint: EndpointView,
  options: DetectOptions,
): Promise<{ profile: Profile } | { error: string }> {
  const timeoutMs = endpoint.config.check_timeout;
  let error = "no profile's probe matched";
  for (const profile of detectionCandidates(options.profiles)) {
    const { path, field } = profile.detect as NonNullable<Profile["detect"]>;
    try {
      const body = await fetchWithin(
        {
          ...options,
          timeoutMs,
          timeoutError: () => new Error(`${path} timed out after ${timeoutMs}ms`),
        },
        endpointUrl(endpoint, path),
        { headers: [...endpoint.outboundHeaders] as [string, string][] },
        async (response) => {
          if (response.ok) return await boundedText(response, path);
          await response.body?.cancel();
          return "";
        },
      );
      const json = body === "" ? undefined : JSON.parse(body);
      if (json !== null && typeof json === "object" && !Array.isArray(json) && field in json) {
        return { profile };
      }
    } catch (failure) {
      error = describeFetchError(failure);
      // An endpoint that cannot be reached answers no other probe either.
      if (isConnectionError(failure)) return { error: `type not detected yet: ${error}` };
    }
  }
  return { error: `type not detected yet: ${error}` };
}
