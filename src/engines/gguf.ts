/**
 * A small reader for the header of a GGUF file: the key/value metadata only, never the tensors.
 * Reads the file in growing chunks (64 KiB, doubled while the header goes on), at most
 * `maxBytes` (default 64 MiB, enough for a 150k-token vocabulary), and fails with a clear error
 * rather than reading further.
 */
import { open } from "node:fs/promises";

export const DEFAULT_GGUF_HEADER_LIMIT = 64 * 1024 * 1024;

export interface GgufHeader {
  version: number;
  architecture?: string;
  contextLength?: number;
  chatTemplate?: string;
  name?: string;
}

export class GgufError extends Error {
  readonly code = "GGUF_INVALID";
}

/** The first read; most headers without a large vocabulary fit in it. */
const FIRST_CHUNK = 64 * 1024;

/** The header goes on past the bytes read so far, and more of the file may be read. */
class NeedMore extends Error {}

const SCALAR_SIZE: Record<number, number> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  10: 8,
  11: 8,
  12: 8,
};
const STRING = 8;
const ARRAY = 9;

class Cursor {
  pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly file: string,
    private readonly partial = false,
  ) {}
  need(n: number): void {
    if (this.pos + n > this.buf.length) {
      if (this.partial) throw new NeedMore();
      throw new GgufError(
        `${this.file}: GGUF header ends early or is larger than the read limit (${this.buf.length} bytes)`,
      );
    }
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw new GgufError(`${this.file}: GGUF length ${v} is out of range`);
    return Number(v);
  }
  str(): string {
    const n = this.u64();
    this.need(n);
    const s = this.buf.toString("utf8", this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
  scalar(type: number): number | bigint | boolean {
    const size = SCALAR_SIZE[type];
    if (size === undefined) throw new GgufError(`${this.file}: unknown GGUF value type ${type}`);
    this.need(size);
    const b = this.buf;
    const p = this.pos;
    this.pos += size;
    switch (type) {
      case 0:
        return b.readUInt8(p);
      case 1:
        return b.readInt8(p);
      case 2:
        return b.readUInt16LE(p);
      case 3:
        return b.readInt16LE(p);
      case 4:
        return b.readUInt32LE(p);
      case 5:
        return b.readInt32LE(p);
      case 6:
        return b.readFloatLE(p);
      case 7:
        return b.readUInt8(p) !== 0;
      case 10:
        return b.readBigUInt64LE(p);
      case 11:
        return b.readBigInt64LE(p);
      default:
        return b.readDoubleLE(p);
    }
  }
}

/** Reads the metadata of the GGUF file at `file`, within `maxBytes`. */
export async function readGgufHeader(
  file: string,
  maxBytes = DEFAULT_GGUF_HEADER_LIMIT,
): Promise<GgufHeader> {
  const fh = await open(file, "r");
  try {
    const size = (await fh.stat()).size;
    const end = Math.min(size, maxBytes);
    let buf = Buffer.alloc(0);
    for (let want = Math.min(FIRST_CHUNK, end); ; want = Math.min(want * 2, end)) {
      const more = Buffer.alloc(want - buf.length);
      const { bytesRead } = await fh.read(more, 0, more.length, buf.length);
      buf = Buffer.concat([buf, more.subarray(0, bytesRead)]);
      const last = bytesRead < more.length || buf.length >= end;
      try {
        return parseHeader(buf, file, !last);
      } catch (err) {
        if (!(err instanceof NeedMore)) throw err;
      }
    }
  } finally {
    await fh.close();
  }
}

/** Parses GGUF metadata from the start of a file held in `buf`. */
export function parseGgufHeader(buf: Buffer, file = "gguf"): GgufHeader {
  return parseHeader(buf, file, false);
}

/** `partial`: `buf` is only the start of what may be read, so running past it asks for more. */
function parseHeader(buf: Buffer, file: string, partial: boolean): GgufHeader {
  const c = new Cursor(buf, file, partial);
  if (buf.length >= 4 && buf.toString("latin1", 0, 4) !== "GGUF")
    throw new GgufError(`${file}: not a GGUF file (bad magic)`);
  c.need(4);
  if (buf.toString("latin1", 0, 4) !== "GGUF")
    throw new GgufError(`${file}: not a GGUF file (bad magic)`);
  c.skip(4);
  const version = c.u32();
  if (version < 2 || version > 3)
    throw new GgufError(`${file}: unsupported GGUF version ${version}`);
  c.u64(); // tensor count
  const kvCount = c.u64();
  const values = new Map<string, unknown>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.str();
    const type = c.u32();
    if (type === STRING) values.set(key, c.str());
    else if (type === ARRAY) {
      const itemType = c.u32();
      const count = c.u64();
      if (itemType === STRING) for (let j = 0; j < count; j++) c.skip(c.u64());
      else if (itemType === ARRAY)
        throw new GgufError(`${file}: nested GGUF arrays are not supported`);
      else {
        const size = SCALAR_SIZE[itemType];
        if (size === undefined)
          throw new GgufError(`${file}: unknown GGUF array item type ${itemType}`);
        c.skip(size * count);
      }
    } else values.set(key, c.scalar(type));
  }
  const architecture =
    typeof values.get("general.architecture") === "string"
      ? (values.get("general.architecture") as string)
      : undefined;
  const ctx = architecture === undefined ? undefined : values.get(`${architecture}.context_length`);
  const template = values.get("tokenizer.chat_template");
  const name = values.get("general.name");
  return {
    version,
    ...(architecture !== undefined && { architecture }),
    ...((typeof ctx === "number" || typeof ctx === "bigint") && { contextLength: Number(ctx) }),
    ...(typeof template === "string" && { chatTemplate: template }),
    ...(typeof name === "string" && { name }),
  };
}
