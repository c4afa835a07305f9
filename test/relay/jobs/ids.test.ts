import { describe, expect, it } from "vitest";
import { newId, nextSeq, seenSeq } from "../../../src/relay/jobs/ids.ts";

describe("ids", () => {
  it("are the prefix and 24 hex digits, never repeated across refills of the pool", () => {
    // 4096 bytes make 341 ids: 2000 draw the pool five times over.
    const ids = Array.from({ length: 2000 }, () => newId("req"));
    for (const id of ids) expect(id).toMatch(/^req_[0-9a-f]{24}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect(newId("job")).toMatch(/^job_[0-9a-f]{24}$/);
  });

  it("use their bytes: the hex digits are evenly spread", () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++)
      for (const d of newId("run").slice(4)) counts.set(d, (counts.get(d) ?? 0) + 1);
    // 48 000 digits, 3000 expected of each; a pool handed out twice or left zero is far off.
    expect(counts.size).toBe(16);
    for (const n of counts.values()) expect(Math.abs(n - 3000)).toBeLessThan(400);
  });

  it("number stored work after everything seen", () => {
    const a = nextSeq();
    seenSeq(a + 1000);
    expect(nextSeq()).toBeGreaterThan(a + 1000);
  });
});
