/**
 * What a voice clip's header says: its format and length, read from the bytes (never from the
 * name or a declared type). WAV: the `fmt ` and `data` chunks; FLAC: STREAMINFO; MP3: the first
 * frame header after any ID3v2 tag, the length estimated from its bit rate.
 */

/** A clip's format and length. */
export interface ClipInfo {
  contentType: "audio/wav" | "audio/flac" | "audio/mpeg";
  durationMs: number;
  /** WAV only: the `fmt ` chunk and where the samples are, for joining clips of one format. */
  wav?: { fmt: Buffer; dataStart: number; dataBytes: number };
}

function wav(b: Buffer): ClipInfo | undefined {
  if (
    b.length < 12 ||
    b.toString("latin1", 0, 4) !== "RIFF" ||
    b.toString("latin1", 8, 12) !== "WAVE"
  )
    return undefined;
  let fmt: Buffer | undefined;
  for (let at = 12; at + 8 <= b.length;) {
    const id = b.toString("latin1", at, at + 4);
    const size = b.readUInt32LE(at + 4);
    if (id === "fmt " && at + 8 + size <= b.length) fmt = b.subarray(at + 8, at + 8 + size);
    if (id === "data") {
      if (!fmt || fmt.length < 16) return undefined;
      const byteRate = fmt.readUInt32LE(8);
      const dataBytes = Math.min(size, b.length - at - 8);
      if (byteRate === 0) return undefined;
      return {
        contentType: "audio/wav",
        durationMs: Math.round((dataBytes / byteRate) * 1000),
        wav: { fmt, dataStart: at + 8, dataBytes },
      };
    }
    at += 8 + size + (size % 2);
  }
  return undefined;
}

function flac(b: Buffer): ClipInfo | undefined {
  if (b.length < 26 || b.toString("latin1", 0, 4) !== "fLaC" || ((b[4] ?? 0) & 0x7f) !== 0)
    return undefined;
  const rate = ((b[18] ?? 0) << 12) | ((b[19] ?? 0) << 4) | ((b[20] ?? 0) >> 4);
  const samples = ((b[21] ?? 0) & 0x0f) * 2 ** 32 + b.readUInt32BE(22);
  if (rate === 0) return undefined;
  return { contentType: "audio/flac", durationMs: Math.round((samples / rate) * 1000) };
}

const MP3_KBPS = {
  v1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  v2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};

function mp3(b: Buffer): ClipInfo | undefined {
  let at = 0;
  if (b.length >= 10 && b.toString("latin1", 0, 3) === "ID3")
    at = 10 + (((b[6] ?? 0) << 21) | ((b[7] ?? 0) << 14) | ((b[8] ?? 0) << 7) | (b[9] ?? 0));
  if (at + 4 > b.length || b[at] !== 0xff || ((b[at + 1] ?? 0) & 0xe0) !== 0xe0) return undefined;
  const version = ((b[at + 1] ?? 0) >> 3) & 3; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
  const layer = ((b[at + 1] ?? 0) >> 1) & 3; // 1: Layer III
  const kbps = (version === 3 ? MP3_KBPS.v1 : MP3_KBPS.v2)[((b[at + 2] ?? 0) >> 4) & 15] ?? 0;
  if (version === 1 || layer !== 1 || kbps === 0) return undefined;
  return {
    contentType: "audio/mpeg",
    durationMs: Math.round(((b.length - at) * 8) / kbps),
  };
}

/** The clip's format and length, or undefined when it is not a WAV, FLAC or MP3 file. */
export function readClip(b: Buffer): ClipInfo | undefined {
  return wav(b) ?? flac(b) ?? mp3(b);
}

/**
 * One WAV file of several clips of the same format, back to back (what Dia clones two speakers
 * from); undefined when they are not all WAV of one format.
 */
export function joinWav(clips: Buffer[]): Buffer | undefined {
  const infos = clips.map(wav);
  const first = infos[0]?.wav;
  if (!first || infos.some((i) => !i?.wav || !i.wav.fmt.equals(first.fmt))) return undefined;
  const data = Buffer.concat(
    clips.map((c, n) => {
      const w = infos[n]?.wav;
      return w ? c.subarray(w.dataStart, w.dataStart + w.dataBytes) : Buffer.alloc(0);
    }),
  );
  const header = Buffer.alloc(20);
  header.write("RIFF", 0, "latin1");
  header.writeUInt32LE(4 + 8 + first.fmt.length + 8 + data.length, 4);
  header.write("WAVE", 8, "latin1");
  header.write("fmt ", 12, "latin1");
  header.writeUInt32LE(first.fmt.length, 16);
  const dataHeader = Buffer.alloc(8);
  dataHeader.write("data", 0, "latin1");
  dataHeader.writeUInt32LE(data.length, 4);
  return Buffer.concat([header, first.fmt, dataHeader, data]);
}
