/**
 * A POST to one of an engine's control routes (LMDeploy's `/wakeup`, `/sleep`): no body,
 * but the JSON content type LMDeploy refuses these without, and the endpoint's own
 * credentials; bounded in time like every other call olla-ts makes on its own behalf.
 * The wake-up coordinator and the status page's actions both send exactly this.
 *
 * @module
 */
import { endpointUrl } from "./endpoint_url.ts";
import { fetchWithin, type TimedFetchOptions } from "./timed_fetch.ts";

/** What {@linkcode postEngineControl} needs of an endpoint. */
export interface ControlledEndpoint {
  readonly baseUrl: string;
  readonly outboundHeaders: readonly (readonly [string, string])[];
}

/**
 * POSTs to `path` on the endpoint; resolves to the answer's status.
 *
 * @throws the timeout error when the time runs out, else whatever `fetch` threw.
 */
export function postEngineControl(
  endpoint: ControlledEndpoint,
  path: string,
  options: TimedFetchOptions,
): Promise<number> {
  return fetchWithin(
    options,
    endpointUrl(endpoint, path),
    {
      method: "POST",
      headers: [["content-type", "application/json"], ...endpoint.outboundHeaders] as [
        string,
        string,
      ][],
    },
    async (response) => {
      await response.body?.cancel();
      return response.status;
    },
  );
}
