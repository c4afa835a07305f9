import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_HEAP_GROWTH_PERCENT,
  externalMemoryFlagsOf,
  tuneHeapGrowth,
} from "../../src/process/heap.ts";
import { expectRefusedAtStart } from "../e2e/harness.ts";

/** Node 22's V8: no external-memory flags. */
const V8_OF_NODE_22 = "12.4.254.21-node.57";
/** Node 26's V8: both. */
const V8_OF_NODE_26 = "14.6.202.34-node.40";
const ACCOUNTED = "--external-memory-accounted-in-global-limit";

/** What `tuneHeapGrowth` hands to V8, for an environment, Node's own arguments and a V8. */
function applied(env: NodeJS.ProcessEnv, execArgv: string[] = [], v8 = V8_OF_NODE_22) {
  const flags: string[] = [];
  const percent = tuneHeapGrowth(env, execArgv, (f) => flags.push(f), v8);
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

  it("counts memory outside the heap in V8's limit, grown as much, where V8 has the flags", () => {
    expect(externalMemoryFlagsOf(V8_OF_NODE_22)).toEqual([]);
    expect(externalMemoryFlagsOf("12.9.202.28-node.14")).toEqual([]); // Node 23
    // Node 24 has the first flag alone; on it, it cost 55-67 MiB of peak RSS for little CPU.
    expect(externalMemoryFlagsOf("13.6.233.17-node.63")).toEqual([]);
    for (const v8 of ["14.1.146.11-node.25", V8_OF_NODE_26])
      expect(externalMemoryFlagsOf(v8)).toEqual([
        ACCOUNTED,
        "--external-memory-max-growing-factor",
      ]);
    // A V8 newer than the last one checked may not have them: an unknown flag prints an error.
    expect(externalMemoryFlagsOf("15.0.1")).toEqual([]);
    expect(externalMemoryFlagsOf("not a version")).toEqual([]);

    expect(applied({}, [], V8_OF_NODE_26).flags).toEqual([
      "--heap-growing-percent=300",
      ACCOUNTED,
      "--external-memory-max-growing-factor=4",
    ]);
    expect(applied({ CLUB_HEAP_GROWTH_PERCENT: "150" }, [], V8_OF_NODE_26).flags).toContain(
      "--external-memory-max-growing-factor=2.5",
    );
    // V8 grows nothing more than 4× (`heap-controller.h`).
    expect(applied({ CLUB_HEAP_GROWTH_PERCENT: "900" }, [], V8_OF_NODE_26).flags).toContain(
      "--external-memory-max-growing-factor=4",
    );
  });

  it("leaves each external-memory flag that Node was given, and all of them with 0", () => {
    expect(applied({ CLUB_HEAP_GROWTH_PERCENT: "0" }, [], V8_OF_NODE_26).flags).toEqual([]);
    expect(applied({}, [`--no-${ACCOUNTED.slice(2)}`], V8_OF_NODE_26).flags).toEqual([
      "--heap-growing-percent=300",
      "--external-memory-max-growing-factor=4",
    ]);
    expect(
      applied({ NODE_OPTIONS: "--external-memory-max-growing-factor=2" }, [], V8_OF_NODE_26).flags,
    ).toEqual(["--heap-growing-percent=300", ACCOUNTED]);
    // The user's own growth means the user tunes the GC: nothing is added to it.
    expect(applied({}, ["--heap-growing-percent=50"], V8_OF_NODE_26).flags).toEqual([]);
  });

  it("sets on this Node only flags its V8 has: nothing is printed, and --v8-options lists each", () => {
    const options = spawnSync(process.execPath, ["--v8-options"], { encoding: "utf8" }).stdout;
    for (const flag of externalMemoryFlagsOf(process.versions.v8))
      expect(options).toContain(`  ${flag} `);
    const run = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "-e",
        'import("./src/process/heap.ts").then((m) => console.log(m.tuneHeapGrowth({}, [])))',
      ],
      { encoding: "utf8", timeout: 30_000 },
    );
    expect(run.stdout.trim()).toBe("300");
    expect(run.stderr).toBe("");
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
