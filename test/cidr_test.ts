import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ipInAny, parseCidr, parseIp } from "../lib/cidr.ts";

describe("parseCidr() and ipInAny()", () => {
  const loopback = [parseCidr("127.0.0.0/8"), parseCidr("::1/128")];

  test("matches IPv4 addresses, including IPv4-mapped IPv6 forms", () => {
    assert.equal(ipInAny("127.0.0.1", loopback), true);
    assert.equal(ipInAny("::ffff:127.0.0.1", loopback), true);
    assert.equal(ipInAny("128.0.0.1", loopback), false);
  });

  test("matches IPv6 addresses and blocks", () => {
    assert.equal(ipInAny("::1", loopback), true);
    assert.equal(ipInAny("[::1]", loopback), true);
    assert.equal(ipInAny("fd00::1", [parseCidr("fd00::/8")]), true);
    assert.equal(ipInAny("fe80::1%eth0", [parseCidr("fe80::/10")]), true);
    assert.equal(ipInAny("2001:db8::1", [parseCidr("fd00::/8")]), false);
  });

  test("treats a bare address as a single host and /0 as everything", () => {
    assert.equal(ipInAny("10.1.2.3", [parseCidr("10.1.2.3")]), true);
    assert.equal(ipInAny("10.1.2.4", [parseCidr("10.1.2.3")]), false);
    assert.equal(ipInAny("8.8.8.8", [parseCidr("0.0.0.0/0")]), true);
  });

  test("refuses malformed blocks, naming them", () => {
    for (const bad of ["10.0.0.0/33", "10.0.0/8", "nonsense", "::1/129", "1.2.3.4/8/9", "1:2:3"]) {
      assert.throws(
        () => parseCidr(bad),
        new RegExp(`Cannot parse CIDR "${bad.replace(/[.*/]/g, "\\$&")}"`),
      );
    }
  });

  test("parseIp() refuses garbage instead of matching it", () => {
    assert.equal(parseIp("not-an-ip"), undefined);
    assert.equal(ipInAny("", loopback), false);
  });
});
