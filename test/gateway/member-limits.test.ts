import { describe, expect, it } from "vitest";
import { OWNER } from "../../src/gateway/capacity.ts";
import { MemberLimits } from "../../src/gateway/member-limits.ts";

const bob = { member: "bob", owner: false };
const carol = { member: "carol", owner: false };

describe("MemberLimits", () => {
  it("lets each member run at most `concurrent` at once; a finished one frees its place", () => {
    const limits = new MemberLimits(() => ({ "*": { concurrent: 2 } }));
    const a = limits.admit(bob);
    const b = limits.admit(bob);
    const c = limits.admit(bob);
    expect("release" in a && "release" in b).toBe(true);
    expect(c).toMatchObject({
      refusal: expect.stringContaining("the most its owner allows at once (2)"),
    });
    // Another member has places of their own; the owner is never limited.
    expect("release" in limits.admit(carol)).toBe(true);
    for (let i = 0; i < 10; i++) expect("release" in limits.admit(OWNER)).toBe(true);
    if ("release" in a) {
      a.release();
      a.release(); // counted once
    }
    expect("release" in limits.admit(bob)).toBe(true);
    expect("refusal" in limits.admit(bob)).toBe(true);
  });

  it("counts requests per UTC day, names the reset, and starts again the next day", () => {
    let now = Date.UTC(2026, 11, 3, 22, 0, 0);
    const limits = new MemberLimits(
      () => ({ "*": { requestsPerDay: 100 }, carol: { requestsPerDay: 2 } }),
      () => now,
    );
    for (let i = 0; i < 2; i++) {
      const ok = limits.admit(carol);
      if ("release" in ok) ok.release();
    }
    const refused = limits.admit(carol);
    expect(refused).toEqual({
      refusal:
        "carol used the 2 requests a day this rig's owner allows; the count resets at 00:00 UTC (2026-12-04T00:00:00.000Z)",
      retryAfter: 7200,
    });
    // Bob is under the "*" limit, not carol's.
    expect("release" in limits.admit(bob)).toBe(true);
    now = Date.UTC(2026, 11, 4, 0, 0, 1);
    expect("release" in limits.admit(carol)).toBe(true);
  });
});
