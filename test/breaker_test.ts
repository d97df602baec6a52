import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CircuitBreaker } from "../lib/registry/breaker.ts";

describe("CircuitBreaker", () => {
  test("stays closed below the failure threshold and resets on success", () => {
    const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1_000 });
    breaker.recordFailure(0);
    breaker.recordFailure(0);
    assert.equal(breaker.state(0), "closed");
    breaker.recordSuccess();
    breaker.recordFailure(0);
    breaker.recordFailure(0);
    assert.equal(breaker.state(0), "closed");
  });

  test("opens after the threshold of consecutive failures and refuses requests", () => {
    const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1_000 });
    for (let i = 0; i < 3; i++) breaker.recordFailure(100);
    assert.equal(breaker.state(100), "open");
    assert.equal(breaker.allows(500), false);
    assert.equal(breaker.remainingMs(500), 600);
  });

  test("lets exactly one trial through after the cooldown, then closes on success", () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1_000 });
    breaker.recordFailure(0);
    assert.equal(breaker.state(1_000), "half_open");
    assert.equal(breaker.allows(1_000), true);
    breaker.onSend(1_000);
    assert.equal(breaker.allows(1_000), false, "a second request waits for the trial");
    breaker.recordSuccess();
    assert.equal(breaker.state(1_001), "closed");
    assert.equal(breaker.allows(1_001), true);
  });

  test("reopens for a full cooldown when the trial fails", () => {
    const breaker = new CircuitBreaker({ failureThreshold: 5, cooldownMs: 1_000 });
    for (let i = 0; i < 5; i++) breaker.recordFailure(0);
    breaker.onSend(1_500);
    breaker.recordFailure(1_600);
    assert.equal(breaker.state(1_700), "open");
    assert.equal(breaker.allows(2_599), false);
    assert.equal(breaker.allows(2_600), true);
  });

  test("a trial abandoned by its client frees the slot for another", () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 10 });
    breaker.recordFailure(0);
    breaker.onSend(10);
    breaker.releaseTrial();
    assert.equal(breaker.allows(10), true);
  });
});
