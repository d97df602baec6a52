import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FakeClock } from "./fakes/clock.ts";
import { parseCidr } from "../lib/cidr.ts";
import { KeyAuthenticator, presentedKey, timingSafeEqual } from "../lib/server/auth.ts";
import { resolveClientIp } from "../lib/server/client_ip.ts";
import { RateLimiter, TokenBucket } from "../lib/server/rate_limit.ts";

describe("timingSafeEqual()", () => {
  test("compares bytes without short-circuiting", () => {
    assert.equal(timingSafeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3])), true);
    assert.equal(timingSafeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4])), false);
    assert.equal(timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3])), false);
  });
});

describe("KeyAuthenticator", () => {
  const keys = [
    { name: "team-a", key: "key-aaaa-1111", admin: false },
    { name: "ops", key: "key-admin-2222", admin: true },
  ];

  test("accepts Bearer and X-Api-Key, naming the key", async () => {
    const auth = new KeyAuthenticator(keys);
    assert.deepEqual(
      await auth.authenticate(new Headers({ authorization: "Bearer key-aaaa-1111" })),
      {
        name: "team-a",
        admin: false,
      },
    );
    assert.deepEqual(await auth.authenticate(new Headers({ "x-api-key": "key-admin-2222" })), {
      name: "ops",
      admin: true,
    });
    assert.deepEqual(
      await auth.authenticate(new Headers({ authorization: "bearer key-aaaa-1111" })),
      {
        name: "team-a",
        admin: false,
      },
    );
  });

  test("refuses missing, wrong and partial keys", async () => {
    const auth = new KeyAuthenticator(keys);
    const cases: Record<string, string>[] = [
      {},
      { authorization: "Bearer nope" },
      { authorization: "Bearer key-aaaa-111" },
      { authorization: "Basic a2V5" },
    ];
    for (const headers of cases) {
      assert.equal(
        await auth.authenticate(new Headers(headers)),
        undefined,
        JSON.stringify(headers),
      );
    }
  });

  test("compares the presented key's digest against every key in constant time, match or not", async () => {
    const calls: [number, number][] = [];
    const auth = new KeyAuthenticator(keys, {
      compare: (a, b) => {
        calls.push([a.length, b.length]);
        return timingSafeEqual(a, b);
      },
    });
    await auth.authenticate(new Headers({ authorization: "Bearer key-aaaa-1111" }));
    assert.deepEqual(calls, [[32, 32], [32, 32]], "both keys compared although the first matched");
    calls.length = 0;
    await auth.authenticate(new Headers({ authorization: "Bearer x" }));
    assert.deepEqual(calls, [[32, 32], [32, 32]], "digests, so lengths never differ");
  });

  test("presentedKey() prefers Authorization over X-Api-Key", () => {
    assert.equal(presentedKey(new Headers({ authorization: "Bearer a", "x-api-key": "b" })), "a");
    assert.equal(presentedKey(new Headers({ "x-api-key": " b " })), "b");
    assert.equal(presentedKey(new Headers()), undefined);
  });
});

describe("resolveClientIp()", () => {
  const trusted = [parseCidr("127.0.0.0/8"), parseCidr("10.0.0.0/8")];
  const headers = (values: Record<string, string>) => new Headers(values);

  test("ignores forwarding headers unless trusted", () => {
    const h = headers({ "x-forwarded-for": "203.0.113.7" });
    assert.equal(
      resolveClientIp("127.0.0.1", h, { trustProxyHeaders: false, trustedProxies: trusted }),
      "127.0.0.1",
    );
    assert.equal(
      resolveClientIp("198.51.100.1", h, { trustProxyHeaders: true, trustedProxies: trusted }),
      "198.51.100.1",
    );
  });

  test("takes the first untrusted hop from the right, so a client cannot choose its address", () => {
    const options = { trustProxyHeaders: true, trustedProxies: trusted };
    assert.equal(
      resolveClientIp("127.0.0.1", headers({ "x-forwarded-for": "203.0.113.7" }), options),
      "203.0.113.7",
    );
    assert.equal(
      resolveClientIp(
        "127.0.0.1",
        headers({ "x-forwarded-for": "6.6.6.6, 203.0.113.7, 10.1.1.1" }),
        options,
      ),
      "203.0.113.7",
      "the spoofed 6.6.6.6 is ignored",
    );
    assert.equal(
      resolveClientIp("127.0.0.1", headers({ "x-real-ip": "203.0.113.9" }), options),
      "203.0.113.9",
    );
    assert.equal(
      resolveClientIp("127.0.0.1", headers({ "x-forwarded-for": "garbage" }), options),
      "127.0.0.1",
    );
  });
});

describe("TokenBucket and RateLimiter", () => {
  test("a bucket allows its burst, then refills at its per-minute rate", () => {
    const bucket = new TokenBucket(2, 60, 0);
    assert.equal(bucket.take(0), true);
    assert.equal(bucket.take(0), true);
    assert.equal(bucket.take(0), false);
    assert.equal(bucket.msUntilToken(0), 1_000);
    assert.equal(bucket.take(1_000), true);
  });

  const settings = {
    global_requests_per_minute: 0,
    per_ip_requests_per_minute: 60,
    per_key_requests_per_minute: 120,
    health_requests_per_minute: 600,
    burst_size: 2,
    cleanup_interval: 60_000,
  };

  test("limits each client address separately, with headers and Retry-After", () => {
    const limiter = new RateLimiter(settings, new FakeClock());
    assert.equal(limiter.checkClient("a", false).allowed, true);
    const second = limiter.checkClient("a", false);
    assert.deepEqual(second.headers, {
      "x-ratelimit-limit": "60",
      "x-ratelimit-remaining": "0",
      "x-ratelimit-reset": "2",
    });
    const refused = limiter.checkClient("a", false);
    assert.equal(refused.allowed, false);
    assert.equal(refused.retryAfterSeconds, 1);
    assert.equal(refused.scope, "ip");
    assert.equal(
      limiter.checkClient("b", false).allowed,
      true,
      "another address has its own bucket",
    );
  });

  test("the global bucket is shared, and a refusal costs no tokens", () => {
    const limiter = new RateLimiter({
      ...settings,
      global_requests_per_minute: 60,
      per_ip_requests_per_minute: 0,
    }, new FakeClock());
    assert.equal(limiter.checkClient("a", false).allowed, true);
    assert.equal(limiter.checkClient("b", false).allowed, true);
    assert.equal(limiter.checkClient("c", false).scope, "global");
  });

  test("keys and liveness have their own buckets", () => {
    const limiter = new RateLimiter(settings, new FakeClock());
    limiter.checkClient("a", false);
    limiter.checkClient("a", false);
    assert.equal(limiter.checkClient("a", false).allowed, false);
    assert.equal(limiter.checkClient("a", true).allowed, true, "liveness is limited separately");
    assert.equal(limiter.checkKey("team-a").allowed, true);
    assert.equal(limiter.checkKey("team-a").allowed, true);
    assert.equal(limiter.checkKey("team-a").scope, "key");
    assert.equal(limiter.checkKey("team-b").allowed, true);
  });

  test("drops idle per-client buckets on its cleanup interval", async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(settings, clock);
    limiter.start();
    limiter.checkClient("a", false);
    assert.equal(limiter.trackedClients, 1);
    await clock.advance(60_000);
    assert.equal(limiter.trackedClients, 0);
    limiter.stop();
  });
});
