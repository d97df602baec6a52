/**
 * The request body as handed to `fetch` for one attempt. Small bodies go as they are (one
 * write with a `Content-Length`). On Deno a large `Uint8Array` body is copied about three
 * times on its way to the socket (measured on Deno 2.9: four concurrent 40 MB uploads grew
 * RSS by 480 MB beyond the bodies themselves), while the same bytes streamed in 1 MiB
 * views of the one buffer cost nothing extra; so above `streamAboveBytes` the body is
 * streamed (chunked transfer encoding, which every supported engine's server accepts).
 * Bun uploads a buffer without that amplification and keeps `Content-Length` throughout
 * (`streamAboveBytes` is `Infinity` there). Each attempt gets its own stream over the same
 * bytes, so failover replays without copying.
 *
 * @module
 */
import type { Bytes } from "./body_read.ts";

/** Size of each view of a streamed upload. */
const UPLOAD_CHUNK_BYTES = 1 << 20;

/** Streams bodies at least this large on Deno (see the module doc). */
export const DENO_STREAM_UPLOAD_BYTES = 1 << 20;

/** The `body` for `fetch`: the bytes, a stream of views of them, or nothing. */
export function uploadBody(
  body: Bytes | undefined,
  streamAboveBytes: number,
): BodyInit | undefined {
  if (!body || body.byteLength === 0) return undefined;
  if (body.byteLength < streamAboveBytes) return body;
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= body.byteLength) return controller.close();
      const end = Math.min(offset + UPLOAD_CHUNK_BYTES, body.byteLength);
      controller.enqueue(body.subarray(offset, end));
      offset = end;
    },
  });
}
