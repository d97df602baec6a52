/** A scripted `fetch` for unit tests: answers by URL, records every call. */

export interface FetchCall {
  url: string;
  method: string;
  headers: Headers;
  body: string | null;
}

export type FetchScript = (
  call: FetchCall,
  signal: AbortSignal | undefined,
) => Response | Promise<Response>;

/** A promise that never settles unless the request is aborted (a hung backend). */
export function hang(signal: AbortSignal | undefined): Promise<Response> {
  return new Promise((_, reject) => {
    signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

/** A fetch failure as Deno reports a refused connection. */
export function refused(): never {
  throw new TypeError("fetch failed", {
    cause: new Error("tcp connect error: Connection refused (os error 111)"),
  });
}

export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** Creates a fake fetch; `calls` lists every request made. */
export function fakeFetch(script: FetchScript): typeof fetch & { calls: FetchCall[] } {
  const calls: FetchCall[] = [];
  const fn = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const call = {
      url: request.url,
      method: request.method,
      headers: request.headers,
      body: request.body ? await request.text() : null,
    };
    calls.push(call);
    return script(call, init?.signal ?? undefined);
  };
  return Object.assign(fn, { calls }) as typeof fetch & { calls: FetchCall[] };
}
