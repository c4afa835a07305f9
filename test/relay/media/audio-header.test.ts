/** Reading voice clips' headers (WAV, FLAC, MP3), joining WAVs, and parsing `Range`. */
import { describe, expect, it } from "vitest";
import { joinWav, readClip } from "../../../src/relay/media/audio-header.ts";
import { parseRange } from "../../../src/relay/media/serve.ts";
import { recording } from "../../fakes/audio.ts";

/** A FLAC file's first bytes: the marker and a STREAMINFO of `samples` at `rate`. */
function flac(rate: number, samples: number): Buffer {
  const b = Buffer.alloc(42);
  b.write("fLaC", 0, "latin1");
  b[4] = 0x80; // last block, type 0 (STREAMINFO)
  b.writeUIntBE(34, 5, 3);
  b[18] = (rate >> 12) & 0xff;
  b[19] = (rate >> 4) & 0xff;
  b[20] = ((rate & 0x0f) << 4) | (1 << 1); // 2 channels
  b[21] = 0xf0 | Math.floor(samples / 2 ** 32);
  b.writeUInt32BE(samples % 2 ** 32, 22);
  return b;
}

/** An MP3 of `seconds` at 128 kbit/s (MPEG-1 Layer III) behind a 10-byte ID3v2 tag. */
function mp3(seconds: number): Buffer {
  const id3 = Buffer.from([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 0]);
  const frames = Buffer.alloc((128_000 / 8) * seconds);
  frames[0] = 0xff;
  frames[1] = 0xfb; // MPEG-1, Layer III, no CRC
  frames[2] = 0x90; // 128 kbit/s, 44.1 kHz
  return Buffer.concat([id3, frames]);
}

describe("readClip", () => {
  it("reads a WAV's length from its fmt and data chunks", () => {
    expect(readClip(recording(2.5))).toMatchObject({ contentType: "audio/wav", durationMs: 2500 });
  });

  it("reads a FLAC's length from STREAMINFO", () => {
    expect(readClip(flac(44_100, 44_100 * 7))).toEqual({
      contentType: "audio/flac",
      durationMs: 7000,
    });
  });

  it("estimates an MP3's length from its first frame's bit rate", () => {
    expect(readClip(mp3(4))).toEqual({ contentType: "audio/mpeg", durationMs: 4000 });
  });

  it("refuses what is none of them, whatever its name", () => {
    expect(readClip(Buffer.from("RIFF....AVI LIST"))).toBeUndefined();
    expect(readClip(Buffer.from("<html>not audio</html>"))).toBeUndefined();
    expect(readClip(Buffer.alloc(0))).toBeUndefined();
  });
});

describe("joinWav", () => {
  it("joins WAVs of one format back to back, and refuses different formats", () => {
    const joined = joinWav([recording(1), recording(2)]);
    expect(readClip(joined ?? Buffer.alloc(0))?.durationMs).toBe(3000);
    expect(joinWav([recording(1), recording(1, 8000)])).toBeUndefined();
    expect(joinWav([recording(1), mp3(1)])).toBeUndefined();
  });
});

describe("parseRange", () => {
  it("takes one span, a suffix or an open end; refuses what cannot be met", () => {
    expect(parseRange(undefined, 100)).toBeUndefined();
    expect(parseRange("bytes=10-19", 100)).toEqual({ start: 10, end: 19 });
    expect(parseRange("bytes=90-", 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange("bytes=-5", 100)).toEqual({ start: 95, end: 99 });
    expect(parseRange("bytes=50-500", 100)).toEqual({ start: 50, end: 99 });
    expect(parseRange("bytes=100-", 100)).toBe("bad");
    expect(parseRange("bytes=20-10", 100)).toBe("bad");
    expect(parseRange("bytes=-", 100)).toBe("bad");
    // Several ranges: served whole.
    expect(parseRange("bytes=0-1,5-6", 100)).toBeUndefined();
  });
});
