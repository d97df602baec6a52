import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseCli } from "../lib/startup/cli.ts";

describe("parseCli()", () => {
  test("reads --config, -c and --config=FILE", () => {
    assert.equal(parseCli(["--config", "a.yaml"]).configPath, "a.yaml");
    assert.equal(parseCli(["-c", "b.yaml"]).configPath, "b.yaml");
    assert.equal(parseCli(["--config=c.yaml"]).configPath, "c.yaml");
  });

  test("reads the action flags", () => {
    assert.deepEqual(parseCli([]), {
      validateConfig: false,
      healthcheck: false,
      version: false,
      help: false,
    });
    assert.equal(parseCli(["--validate-config"]).validateConfig, true);
    assert.equal(parseCli(["--healthcheck"]).healthcheck, true);
    assert.equal(parseCli(["--version"]).version, true);
    assert.equal(parseCli(["-h"]).help, true);
  });

  test("refuses unknown arguments and a missing file, naming them", () => {
    assert.throws(() => parseCli(["--port", "1"]), /unknown argument "--port"/);
    assert.throws(() => parseCli(["--config"]), /--config needs a file path/);
  });
});
