import { existsSync, mkdtempSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
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

  it("reads a header larger than its first chunk, and a sparse file only up to the limit", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gguf-"));
    // 40 000 tokens of 8 bytes: a vocabulary of about 640 KiB before the chat template.
    const tokens = Array.from({ length: 40_000 }, (_, i) => str(`t${String(i).padStart(6, "0")}`));
    const count = Buffer.alloc(8);
    count.writeBigUInt64LE(BigInt(tokens.length));
    const big = header([
      Buffer.concat([str("general.architecture"), u32(8), str("llama")]),
      Buffer.concat([str("tokenizer.ggml.tokens"), u32(9), u32(8), count, ...tokens]),
      Buffer.concat([str("llama.context_length"), u32(4), u32(4096)]),
      Buffer.concat([str("tokenizer.chat_template"), u32(8), str("{% tools %}")]),
    ]);
    const file = join(dir, "big.gguf");
    writeFileSync(file, big);
    // Tensor data follows the header in a real file: 4 GiB of holes here.
    truncateSync(file, 4 * 1024 * 1024 * 1024);
    await expect(readGgufHeader(file)).resolves.toEqual({
      version: 3,
      architecture: "llama",
      contextLength: 4096,
      chatTemplate: "{% tools %}",
    });
    await expect(readGgufHeader(file, 256 * 1024)).rejects.toThrow(/read limit \(262144 bytes\)/);
    const short = join(dir, "short.gguf");
    writeFileSync(short, big.subarray(0, 100_000));
    await expect(readGgufHeader(short)).rejects.toThrow(/ends early .*100000 bytes/);
    writeFileSync(join(dir, "bad.gguf"), "PK\x03\x04 not a model");
    await expect(readGgufHeader(join(dir, "bad.gguf"))).rejects.toThrow(/bad magic/);
  });
});
