/** The control line splitter of tunnel protocol 2: lines across chunks, and its bound. */
import { describe, expect, it } from "vitest";
import { LineSplitter } from "../../src/transport/lines.ts";

function split(chunks: string[], max = 16): { lines: string[]; ok: boolean[] } {
  const s = new LineSplitter(max);
  const lines: string[] = [];
  const ok = chunks.map((c) => s.push(Buffer.from(c), (l) => lines.push(l.toString())));
  return { lines, ok };
}

describe("LineSplitter", () => {
  it("gives whole lines, joined across chunks, and skips empty ones", () => {
    expect(split(['{"a":1}\n{"b"', ":2}\n\n", '{"c":3}\n'])).toEqual({
      lines: ['{"a":1}', '{"b":2}', '{"c":3}'],
      ok: [true, true, true],
    });
  });

  it("refuses a line longer than its bound, even spread over chunks", () => {
    expect(split(["0123456789", "0123456789\n"]).ok).toEqual([true, false]);
    expect(split(["0123456789abcdef\n"]).lines).toEqual(["0123456789abcdef"]);
    expect(split(["0123456789abcdefg\n"]).ok).toEqual([false]);
  });
});
