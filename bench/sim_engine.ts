/**
 * A simulated inference engine that behaves like a real one where routing matters: a
 * batch of at most `batch` requests runs at once and the rest wait in a queue; a prefix
 * cache of `cacheTokens` tokens (least recently used blocks evicted) makes the prefill of
 * a prompt proportional to its *uncached* tokens; each output token then takes
 * `decodeMsPerToken` (times `slowdown`). Its `/metrics` reports the true running and
 * waiting counts and KV-cache usage in LMDeploy's names, refreshed every `metricsEveryMs`
 * (LMDeploy refreshes every 10 s; a real engine's report is always a little old).
 *
 * It serves LMDeploy's `/health`, `/is_sleeping`, `/v1/models` and streaming
 * `/v1/chat/completions` (4 characters count as a token). Used by bench/fleet.ts and its
 * smoke test.
 *
 * @module
 */
import { serve, type TestServer } from "../test/_serve.ts";

/** How a simulated engine behaves. */
export interface SimEngineOptions {
  model: string;
  /** Requests executed at once. @default {4} */
  batch?: number;
  /** Prefix-cache size in tokens. @default {8192} */
  cacheTokens?: number;
  /** Prefill time per uncached prompt token, ms. @default {0.08} */
  prefillMsPerToken?: number;
  /** Time per output token, ms. @default {20} */
  decodeMsPerToken?: number;
  /** Multiplies every duration (2 = half speed). @default {1} */
  slowdown?: number;
  /** How often `/metrics` figures are refreshed, ms. @default {1000} */
  metricsEveryMs?: number;
}

/** A running simulated engine and what it observed. */
export interface SimEngine {
  readonly url: string;
  readonly completed: number;
  /** Prompt tokens seen, and those found in the prefix cache. */
  readonly promptTokens: number;
  readonly cachedTokens: number;
  close(): Promise<void>;
}

const BLOCK_CHARS = 256;
const CHARS_PER_TOKEN = 4;

/** The chained hashes of a prompt's full blocks. */
function blockChain(text: string): number[] {
  const chain: number[] = [];
  let hash = 0x811c9dc5;
  for (let start = 0; start + BLOCK_CHARS <= text.length; start += BLOCK_CHARS) {
    for (let i = start; i < start + BLOCK_CHARS; i++) {
      hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
    }
    chain.push(hash >>> 0);
  }
  return chain;
}

interface Job {
  prompt: string;
  outputTokens: number;
  start: () => void;
}

/** Starts a simulated engine on a free port. */
export async function startSimEngine(options: SimEngineOptions): Promise<SimEngine> {
  const batch = options.batch ?? 4;
  const slowdown = options.slowdown ?? 1;
  const prefillMs = (options.prefillMsPerToken ?? 0.08) * slowdown;
  const decodeMs = (options.decodeMsPerToken ?? 20) * slowdown;
  const cacheBlocks = Math.floor((options.cacheTokens ?? 8192) * CHARS_PER_TOKEN / BLOCK_CHARS);
  const cache = new Map<number, true>();
  const queue: Job[] = [];
  const stats = { completed: 0, promptTokens: 0, cachedTokens: 0 };
  let running = 0;
  let runningTokens = 0;
  let reported = { running: 0, waiting: 0, kv: 0 };
  const refresh = setInterval(() => {
    reported = {
      running,
      waiting: queue.length,
      kv: Math.min(1, runningTokens / ((options.cacheTokens ?? 8192) * 2)),
    };
  }, options.metricsEveryMs ?? 1000);

  /** Cached prefix of a prompt, in tokens; then the whole prompt is cached (LRU refresh). */
  const prefill = (prompt: string): number => {
    const chain = blockChain(prompt);
    let hits = 0;
    while (hits < chain.length && cache.has(chain[hits])) hits++;
    for (const block of chain) {
      cache.delete(block);
      cache.set(block, true);
    }
    while (cache.size > cacheBlocks) cache.delete(cache.keys().next().value as number);
    const total = Math.ceil(prompt.length / CHARS_PER_TOKEN);
    const cached = Math.min(total, hits * BLOCK_CHARS / CHARS_PER_TOKEN);
    stats.promptTokens += total;
    stats.cachedTokens += cached;
    return total - cached;
  };

  const admit = () => {
    while (running < batch && queue.length > 0) {
      running++;
      (queue.shift() as Job).start();
    }
  };

  const chat = (
    payload: { messages?: { content?: unknown }[]; max_tokens?: number; model?: string },
  ) => {
    const prompt = (payload.messages ?? []).map((m) => String(m.content ?? "")).join("\n");
    const outputTokens = Math.max(1, payload.max_tokens ?? 16);
    const encoder = new TextEncoder();
    const frame = (delta: Record<string, unknown>, finish: string | null = null) =>
      encoder.encode(
        `data: ${
          JSON.stringify({
            id: "sim",
            object: "chat.completion.chunk",
            model: options.model,
            choices: [{ index: 0, delta, finish_reason: finish }],
          })
        }\n\n`,
      );
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const job: Job = {
          prompt,
          outputTokens,
          start: () => {
            const tokens = Math.ceil(prompt.length / CHARS_PER_TOKEN) + outputTokens;
            runningTokens += tokens;
            const finish = () => {
              running--;
              runningTokens -= tokens;
              stats.completed++;
              admit();
            };
            const uncached = prefill(prompt);
            let sent = 0;
            const step = () => {
              if (cancelled) return finish();
              try {
                if (sent < outputTokens) {
                  controller.enqueue(frame({ content: "tok " }));
                  sent++;
                  setTimeout(step, decodeMs);
                  return;
                }
                controller.enqueue(frame({}, "stop"));
                controller.enqueue(encoder.encode("data: [DONE]\n\n"));
                controller.close();
              } catch {
                // The client went away.
              }
              finish();
            };
            setTimeout(step, uncached * prefillMs + decodeMs);
          },
        };
        queue.push(job);
        admit();
      },
      cancel() {
        cancelled = true;
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  };

  const server: TestServer = await serve(async (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/health") {
      return Response.json({ status: "healthy", message: "Engine is healthy." });
    }
    if (path === "/is_sleeping") return Response.json({ is_sleeping: false });
    if (path === "/v1/models") {
      return Response.json({
        object: "list",
        data: [{ id: options.model, object: "model", owned_by: "lmdeploy" }],
      });
    }
    if (path === "/metrics") {
      const labels = `{engine="0",model_name="${options.model}"}`;
      return new Response(
        `lmdeploy:num_requests_running${labels} ${reported.running}\nlmdeploy:num_requests_waiting${labels} ${reported.waiting}\nlmdeploy:gpu_cache_usage_perc${labels} ${reported.kv}\n`,
      );
    }
    if (path === "/v1/chat/completions") return chat(await request.json());
    return Response.json({ detail: "Not Found" }, { status: 404 });
  });
  return {
    url: server.url,
    get completed() {
      return stats.completed;
    },
    get promptTokens() {
      return stats.promptTokens;
    },
    get cachedTokens() {
      return stats.cachedTokens;
    },
    close: async () => {
      clearInterval(refresh);
      await server.close();
    },
  };
}
