import { describe, expect, it } from "vitest";
import { Backoff } from "../../src/tunnel/backoff.ts";

describe("Backoff", () => {
  it("draws each delay uniformly below a ceiling that doubles up to the maximum", () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 1 });
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
    const b = new Backoff({ baseMs: 100, stableMs: 5000, random: () => 1 });
    b.next();
    b.next();
    b.connectionEnded(4999);
    expect(b.next()).toBe(400);
    b.connectionEnded(5000);
    expect(b.next()).toBe(100);
  });
});
