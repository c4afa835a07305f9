import { describe, expect, it } from "vitest";
import { DEFAULT_HEAP_GROWTH_PERCENT, tuneHeapGrowth } from "../../src/process/heap.ts";
import { expectRefusedAtStart } from "../e2e/harness.ts";

/** What `tuneHeapGrowth` hands to V8, for an environment and Node's own arguments. */
function applied(env: NodeJS.ProcessEnv, execArgv: string[] = []) {
  const flags: string[] = [];
  const percent = tuneHeapGrowth(env, execArgv, (f) => flags.push(f));
  return { percent, flags };
}

describe("the heap growth of the relay and the daemon", () => {
  it("lets the old generation grow 4× by default, and takes CLUB_HEAP_GROWTH_PERCENT", () => {
    expect(DEFAULT_HEAP_GROWTH_PERCENT).toBe(300);
    expect(applied({})).toEqual({ percent: 300, flags: ["--heap-growing-percent=300"] });
    expect(applied({ CLUB_HEAP_GROWTH_PERCENT: " " }).percent).toBe(300);
    expect(applied({ CLUB_HEAP_GROWTH_PERCENT: "150" })).toEqual({
      percent: 150,
      flags: ["--heap-growing-percent=150"],
    });
  });

  it("leaves V8's own heuristics with 0, and Node's own flag wherever it was given", () => {
    expect(applied({ CLUB_HEAP_GROWTH_PERCENT: "0" })).toEqual({ percent: undefined, flags: [] });
    expect(applied({}, ["--heap-growing-percent=50"]).flags).toEqual([]);
    expect(applied({}, ["--heap-growing-percent", "50"]).flags).toEqual([]);
    expect(
      applied({ NODE_OPTIONS: "--max-old-space-size=512 --heap-growing-percent=50" }).flags,
    ).toEqual([]);
    // A flag that only starts the same way is not the user's choice of this one.
    expect(applied({}, ["--heap-growing-percent-x"]).flags).toEqual(["--heap-growing-percent=300"]);
  });

  it("says what is wrong with a bad CLUB_HEAP_GROWTH_PERCENT", () => {
    for (const bad of ["-1", "2.5", "lots", "1001"])
      expect(() => applied({ CLUB_HEAP_GROWTH_PERCENT: bad })).toThrow(
        /CLUB_HEAP_GROWTH_PERCENT must be a whole number from 0/,
      );
  });

  it("is set by the relay and the daemon at start: a bad value stops both, saying why, no stack", () => {
    expectRefusedAtStart(
      { CLUB_HEAP_GROWTH_PERCENT: "lots" },
      'CLUB_HEAP_GROWTH_PERCENT must be a whole number from 0 (V8\'s own) to 1000, not "lots"',
    );
  });
});
