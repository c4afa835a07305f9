/** The daemon's log tail: lines kept as written, parsed when read, bounded in count and size. */
import { describe, expect, it } from "vitest";
import { LogRing } from "../../src/daemon/log-ring.ts";

const line = (fields: Record<string, unknown>): string => `${JSON.stringify(fields)}\n`;

describe("LogRing", () => {
  it("gives pino lines as time, level and message when read, the same each time", () => {
    const ring = new LogRing(10);
    ring.write(line({ level: 30, time: 5, msg: "hello" }) + line({ level: 50, time: 6, msg: "x" }));
    ring.write("not json at all\n");
    const first = ring.list();
    expect(first.slice(0, 2)).toEqual([
      { time: 5, level: "info", msg: "hello" },
      { time: 6, level: "error", msg: "x" },
    ]);
    expect(first[2]).toMatchObject({ level: "info", msg: "not json at all" });
    expect(first[2]!.time).toBeGreaterThan(0);
    expect(ring.list()).toEqual(first);
  });

  it("keeps the last `capacity` lines and cuts long ones", () => {
    const ring = new LogRing(3);
    for (let i = 0; i < 10; i++) ring.write(line({ level: 40, time: i, msg: `m${i}` }));
    expect(ring.list().map((l) => l.msg)).toEqual(["m7", "m8", "m9"]);
    ring.write(line({ level: 30, time: 1, msg: "y".repeat(50_000) }));
    ring.write(line({ level: 30, time: 1, msg: "z".repeat(5_000) }));
    expect(
      ring
        .list()
        .slice(-2)
        .map((l) => l.msg.length),
    ).toEqual([2000, 2000]);
  });

  it("hands each line, parsed, to a live listener", () => {
    const ring = new LogRing(5);
    ring.write(line({ level: 30, time: 1, msg: "before" }));
    const seen: string[] = [];
    ring.on("line", (l) => seen.push(`${l.level} ${l.msg}`));
    ring.write(line({ level: 40, time: 2, msg: "after" }));
    expect(seen).toEqual(["warn after"]);
    expect(ring.list().map((l) => l.msg)).toEqual(["before", "after"]);
  });
});
