/** A raw HTTP/1.1 client over node:net, for requests fetch() would normalise or refuse. */
import { Buffer } from "node:buffer";
import { connect } from "node:net";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
}

/** Sends `text` as-is to 127.0.0.1:port and reads until the server closes. */
export function rawRequest(
  port: number,
  text: string | Uint8Array,
  timeoutMs = 5_000,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port }, () => socket.write(text));
    const chunks: Uint8Array[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("raw request timed out"));
    }, timeoutMs);
    socket.on("data", (chunk: Uint8Array) => {
      chunks.push(chunk);
      // A complete response with a Content-Length ends the exchange even if the server
      // keeps the connection open.
      const sofar = parseResponse(new TextDecoder().decode(Buffer.concat(chunks)));
      const length = Number(sofar.headers["content-length"] ?? NaN);
      if (
        sofar.status > 0 && Number.isFinite(length) &&
        new TextEncoder().encode(sofar.body).length >= length
      ) {
        socket.destroy();
      }
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const raw = new TextDecoder().decode(Buffer.concat(chunks));
      resolve(parseResponse(raw));
    });
  });
}

/** Parses the first response in `raw` (chunked bodies are de-chunked). */
export function parseResponse(raw: string): RawResponse {
  const headerEnd = raw.indexOf("\r\n\r\n");
  const head = headerEnd === -1 ? raw : raw.slice(0, headerEnd);
  const [statusLine, ...lines] = head.split("\r\n");
  const status = Number(statusLine.split(" ")[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
  }
  let body = headerEnd === -1 ? "" : raw.slice(headerEnd + 4);
  if (headers["transfer-encoding"]?.includes("chunked")) {
    let out = "";
    let rest = body;
    for (;;) {
      const lineEnd = rest.indexOf("\r\n");
      if (lineEnd === -1) break;
      const size = parseInt(rest.slice(0, lineEnd), 16);
      if (!size) break;
      out += rest.slice(lineEnd + 2, lineEnd + 2 + size);
      rest = rest.slice(lineEnd + 2 + size + 2);
    }
    body = out;
  } else if (headers["content-length"]) {
    body = body.slice(0, Number(headers["content-length"]));
  }
  return { status, headers, body, raw };
}

/** A GET with `Connection: close`, path sent verbatim. */
export function rawGet(port: number, path: string, extraHeaders = ""): Promise<RawResponse> {
  return rawRequest(
    port,
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n${extraHeaders}\r\n`,
  );
}
