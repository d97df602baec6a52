// Opens N concurrent paced SSE streams (POST <url>?frames=F&interval=I) and reports
// time to first byte, per-frame delay (arrival minus the time the upstream stamped into
// the frame) and stalls (a gap over 10 frame intervals). Plain Node.js, run as its own
// process so the measured server never shares its event loop.
//   node bench/stream_client.mjs <url> <streams> <frames> <intervalMs>
import http from "node:http";

const [url, streams, frames, interval] = [process.argv[2], ...process.argv.slice(3).map(Number)];
const target = new URL(
  `${url}${url.includes("?") ? "&" : "?"}frames=${frames}&interval=${interval}`,
);
const now = () => performance.timeOrigin + performance.now();
const body = JSON.stringify({
  model: "bench-model",
  messages: [{ role: "user", content: "stream" }],
  stream: true,
});

function one() {
  return new Promise((resolve) => {
    const started = now();
    const result = { ttfb: undefined, delays: [], maxGap: 0, frames: 0, error: undefined };
    let last = undefined;
    let buffer = "";
    const request = http.request(target, {
      method: "POST",
      agent: false,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
    }, (response) => {
      if (response.statusCode !== 200) result.error = `status ${response.statusCode}`;
      response.setEncoding("utf8");
      response.on("data", (chunk) => {
        const at = now();
        result.ttfb ??= at - started;
        buffer += chunk;
        let boundary;
        while ((boundary = buffer.indexOf("\n\n")) !== -1) {
          const event = buffer.slice(0, boundary);
          buffer = buffer.slice(boundary + 2);
          if (!event.startsWith("data: {")) continue;
          const frame = JSON.parse(event.slice(6));
          if (typeof frame.sent !== "number") continue;
          result.frames++;
          result.delays.push(at - frame.sent);
          if (last !== undefined) result.maxGap = Math.max(result.maxGap, at - last);
          last = at;
        }
      });
      response.on("end", () => resolve(result));
      response.on("error", (error) => resolve({ ...result, error: String(error) }));
    });
    request.on("error", (error) => resolve({ ...result, error: String(error) }));
    request.end(body);
  });
}

function percentile(values, q) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const pending = [];
for (let i = 0; i < streams; i++) {
  pending.push(one());
  // Open connections in batches so the listen backlog is not the thing being measured.
  if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 10));
}
const results = await Promise.all(pending);
const ttfbs = results.map((r) => r.ttfb).filter((v) => v !== undefined);
const delays = results.flatMap((r) => r.delays);
const stallLimit = 10 * interval;
const summary = {
  streams,
  frames,
  interval_ms: interval,
  completed: results.filter((r) => !r.error && r.frames === frames).length,
  frames_received: results.reduce((sum, r) => sum + r.frames, 0),
  errors: results.filter((r) => r.error).length,
  first_error: results.find((r) => r.error)?.error,
  stalled: results.filter((r) => r.maxGap > stallLimit).length,
  ttfb_ms: { p50: percentile(ttfbs, 0.5), p99: percentile(ttfbs, 0.99) },
  frame_delay_ms: {
    p50: percentile(delays, 0.5),
    p99: percentile(delays, 0.99),
    max: percentile(delays, 1),
  },
  max_gap_ms: Math.max(0, ...results.map((r) => r.maxGap)),
};
process.stdout.write(JSON.stringify(summary) + "\n");
