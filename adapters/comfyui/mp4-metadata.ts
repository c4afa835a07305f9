/**
 * Taking ComfyUI's metadata out of an MP4 as it streams. SaveVideo (and VideoHelperSuite)
 * write the graph into the movie's user data (`moov/udta`, with `meta`/`keys`/`ilst` under
 * `movflags use_metadata_tags`). The top-level boxes stream through untouched (`mdat`, hundreds
 * of MB, is never held); only `moov` (the index, small) is held, and its `udta` and `meta`
 * children become `free` boxes of the same size with zeroed contents. No size or offset
 * changes, so the chunk offsets stay right and the content-length stays true.
 */
import { Transform, type TransformCallback } from "node:stream";

/** Boxes of `moov` that carry user metadata. */
const METADATA = new Set(["udta", "meta"]);
/** A `moov` larger than this is not one ComfyUI wrote (its index is a few MB at most). */
const MAX_MOOV_BYTES = 64 * 1024 * 1024;

/** `moov` with its metadata children turned into zeroed `free` boxes (in place). */
function neuter(moov: Buffer, headerSize: number): void {
  for (let at = headerSize; at + 8 <= moov.length;) {
    let size = moov.readUInt32BE(at);
    let header = 8;
    if (size === 1 && at + 16 <= moov.length) {
      size = Number(moov.readBigUInt64BE(at + 8));
      header = 16;
    } else if (size === 0) size = moov.length - at;
    if (size < header || at + size > moov.length) return;
    if (METADATA.has(moov.toString("latin1", at + 4, at + 8))) {
      moov.write("free", at + 4, "latin1");
      moov.fill(0, at + header, at + size);
    }
    at += size;
  }
}

/**
 * A Transform that passes an MP4 through with its movie-level metadata blanked. A stream that
 * does not start with an `ftyp` box is passed as it is.
 * @example pipeline(reply.body, mp4MetadataStripper(), res, done)
 */
export function mp4MetadataStripper(): Transform {
  let pending = Buffer.alloc(0);
  /** Bytes of the current box still to pass through untouched. */
  let passing = 0;
  /** The `moov` box being held, and its full size. */
  let moov: { parts: Buffer[]; have: number; size: number; header: number } | undefined;
  let first = true;
  let plain = false;

  function work(stream: Transform, data: Buffer): void {
    let buf = pending.length ? Buffer.concat([pending, data]) : data;
    pending = Buffer.alloc(0);
    while (buf.length) {
      if (plain) return void stream.push(buf);
      if (passing > 0) {
        const n = Math.min(passing, buf.length);
        stream.push(buf.subarray(0, n));
        passing -= n;
        buf = buf.subarray(n);
        continue;
      }
      if (moov) {
        const n = Math.min(moov.size - moov.have, buf.length);
        moov.parts.push(buf.subarray(0, n));
        moov.have += n;
        buf = buf.subarray(n);
        if (moov.have === moov.size) {
          const whole = Buffer.concat(moov.parts);
          neuter(whole, moov.header);
          stream.push(whole);
          moov = undefined;
        }
        continue;
      }
      if (buf.length < 16) {
        pending = Buffer.from(buf);
        return;
      }
      const type = buf.toString("latin1", 4, 8);
      if (first && type !== "ftyp") {
        plain = true;
        continue;
      }
      first = false;
      let size = buf.readUInt32BE(0);
      let header = 8;
      if (size === 1) {
        size = Number(buf.readBigUInt64BE(8));
        header = 16;
      }
      if (size === 0) {
        // The box runs to the end of the file.
        plain = true;
        continue;
      }
      if (size < header) throw new Error(`a ${JSON.stringify(type)} box of ${size} bytes`);
      if (type === "moov") {
        if (size > MAX_MOOV_BYTES) throw new Error(`a moov box of ${size} bytes`);
        moov = { parts: [], have: 0, size, header };
      } else passing = size;
    }
  }

  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      try {
        work(this, chunk);
        done();
      } catch (err) {
        done(new Error(`ComfyUI's MP4 is malformed: ${(err as Error).message}`));
      }
    },
    flush(done: TransformCallback) {
      if (moov) return done(new Error("ComfyUI's MP4 ends inside its moov box"));
      if (pending.length) this.push(pending);
      done();
    },
  });
}
