import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GgufError, parseGgufHeader, readGgufHeader } from "../../src/engines/gguf.js";

const tiny = join(homedir(), ".cache/club-provider/llama-v0.4.0/tiny-qwen2-chat.gguf");

function header(kvs: Buffer[], count = kvs.length): Buffer {
  const h = Buffer.alloc(24);
  h.write("GGUF", 0, "latin1");
  h.writeUInt32LE(3, 4);
  h.writeBigUInt64LE(0n, 8);
  h.writeBigUInt64LE(BigInt(count), 16);
  return Buffer.concat([h, ...kvs]);
}
function str(s: string): Buffer {
  const b = Buffer.from(s, "utf8");
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(BigInt(b.length));
  return Buffer.concat([n, b]);
}
function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}

describe("GGUF header reader", () => {
  it("reads architecture, context length and chat template", () => {
    const buf = header([
      Buffer.concat([str("general.architecture"), u32(8), str("qwen2")]),
      Buffer.concat([str("qwen2.context_length"), u32(4), u32(32768)]),
      Buffer.concat([
        str("tokenizer.ggml.tokens"),
        u32(9),
        u32(8),
        Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]),
        str("a"),
        str("b"),
      ]),
      Buffer.concat([str("tokenizer.chat_template"), u32(8), str("{{ messages }}")]),
    ]);
    expect(parseGgufHeader(buf)).toEqual({
      version: 3,
      architecture: "qwen2",
      contextLength: 32768,
      chatTemplate: "{{ messages }}",
    });
  });

  it("rejects a bad magic, a truncated header and a length past the limit", () => {
    expect(() => parseGgufHeader(Buffer.from("NOPE0000"))).toThrow(GgufError);
    const buf = header([Buffer.concat([str("general.architecture"), u32(8), str("qwen2")])], 2);
    expect(() => parseGgufHeader(buf)).toThrow(/ends early/);
    const huge = Buffer.concat([
      header([]).subarray(0, 16),
      Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0]),
    ]);
    expect(() => parseGgufHeader(huge)).toThrow(GgufError);
  });

  it.skipIf(!existsSync(tiny))(
    "reads a file written by make-tiny-gguf.py, and refuses past a small read limit",
    async () => {
      const h = await readGgufHeader(tiny);
      expect(h.architecture).toBe("qwen2");
      expect(h.contextLength).toBeGreaterThan(0);
      expect(h.chatTemplate).toContain("<|im_start|>");
      await expect(readGgufHeader(tiny, 4096)).rejects.toThrow(/read limit/);
    },
  );
});
