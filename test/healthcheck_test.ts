import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { healthcheckUrl, runHealthcheck } from "../lib/startup/healthcheck.ts";

describe("--healthcheck", () => {
  test("reaches a wildcard listen address on loopback, and brackets IPv6", () => {
    assert.equal(
      healthcheckUrl({ host: "0.0.0.0", port: 40114 }),
      "http://127.0.0.1:40114/internal/health",
    );
    assert.equal(healthcheckUrl({ host: "::", port: 1 }), "http://[::1]:1/internal/health");
    assert.equal(
      healthcheckUrl({ host: "fd00::5", port: 2 }),
      "http://[fd00::5]:2/internal/health",
    );
    assert.equal(
      healthcheckUrl({ host: "localhost", port: 3 }),
      "http://localhost:3/internal/health",
    );
  });

  test("0 for a 200, 1 with the reason for anything else", async () => {
    const lines: string[] = [];
    const answering = (status: number) => () => Promise.resolve(new Response("{}", { status }));
    const server = { host: "127.0.0.1", port: 9 };
    assert.equal(await runHealthcheck(server, (l) => lines.push(l), answering(200)), 0);
    assert.equal(await runHealthcheck(server, (l) => lines.push(l), answering(503)), 1);
    assert.equal(
      await runHealthcheck(
        server,
        (l) => lines.push(l),
        () => Promise.reject(new TypeError("refused")),
      ),
      1,
    );
    assert.deepEqual(lines, [
      "olla-ts at http://127.0.0.1:9/internal/health answered 503",
      "olla-ts at http://127.0.0.1:9/internal/health did not answer: refused",
    ]);
  });
});
