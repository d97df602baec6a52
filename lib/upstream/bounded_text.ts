/**
 * Reading a backend's answer to olla-ts's own requests (health, model lists, engine
 * metrics, type detection) within a size. Each is bounded in time already; bounded in
 * size too, a misaddressed endpoint (a URL that serves a large file) or a misbehaving one
 * cannot make olla-ts hold what it sends in one check interval: at loopback speed,
 * gigabytes.
 *
 * @module
 */

/** What an answer read whole may hold: far above any real model list or metrics page. */
export const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/**
 * The body as text, up to `maxBytes`. With `truncate`, a longer body is cut there (for a
 * probe, whose status code alone may decide); without, it is refused.
 *
 * @throws {RangeError} naming `what` and the limit, for a longer body without `truncate`.
 */
export async function boundedText(
  response: Response,
  what: string,
  { maxBytes = MAX_ANSWER_BYTES, truncate = false } = {},
): Promise<string> {
  if (!response.body) return "";
  const tooLong = () => new RangeError(`${what} is larger than ${maxBytes} bytes`);
  const declared = Number(response.headers.get("content-length") ?? 0);
  if (declared > maxBytes && !truncate) {
    await response.body.cancel().catch(() => {});
    throw tooLong();
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return text + decoder.decode();
      if (size + value.byteLength > maxBytes) {
        if (!truncate) throw tooLong();
        return text + decoder.decode(value.subarray(0, maxBytes - size));
      }
      size += value.byteLength;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
