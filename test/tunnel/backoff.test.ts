import { describe, expect, it } from "vitest";
import { Backoff } from "../../src/tunnel/backoff.ts";

describe("Backoff", () => {
  it("draws each delay uniformly below a ceiling that doubles up to the maximum", () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1000, fastWindowMs: 0, random: () => 1 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
  });

  it("uses full jitter: a random draw of 0 gives an immediate retry", () => {
    const b = new Backoff({ baseMs: 100, random: () => 0 });
    b.next();
    expect(b.next()).toBe(0);
  });

  it("starts again from the smallest step only after a stable connection", () => {
    const b = new Backoff({ baseMs: 100, stableMs: 5000, fastWindowMs: 0, random: () => 1 });
    b.next();
    b.next();
    b.connectionEnded(4999);
    expect(b.next()).toBe(400);
    b.connectionEnded(5000);
    expect(b.next()).toBe(100);
  });

  it("keeps the ceiling at fastMaxMs for the first fastWindowMs of an outage, then grows it", () => {
    let now = 0;
    const b = new Backoff({ random: () => 1, now: () => now });
    const delays: number[] = [];
    for (; now < 30_000; now += 1000) delays.push(b.next());
    expect(delays).toEqual([500, ...Array<number>(29).fill(1000)]);
    expect(b.next()).toBe(30_000);
  });

  it("a connection that drops before it is stable does not restart the fast window", () => {
    let now = 0;
    const b = new Backoff({ stableMs: 60_000, random: () => 1, now: () => now });
    for (; now < 10_000; now += 1000) b.next();
    now = 31_000;
    b.connectionEnded(10_000);
    expect(b.next()).toBe(30_000);
    b.connectionEnded(60_000);
    expect(b.next()).toBe(500);
  });
});
