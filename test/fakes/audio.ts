/**
 * Audio for the fakes and the tests that drive them, all deterministic: PCM WAV files made in
 * code, a fixed transcript timed to the audio's length, speech split into sentence-sized pieces
 * streamed through a fake's gate, and multipart forms read with the platform's own parser.
 */
import type { ServerResponse } from "node:http";
import { send, type FakeServer, type RecordedRequest } from "./fake-server.ts";

/** A mono 16-bit PCM WAV file holding `pcm`. */
export function wavFile(pcm: Buffer, sampleRate: number): Buffer {
  const header = Buffer.alloc(44);
  header.write("RIFF", 0, "latin1");
  header.writeUInt32LE(36 + pcm.length, 4);
  header.write("WAVEfmt ", 8, "latin1");
  header.writeUInt32LE(16, 16); // fmt chunk size
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 2, 28); // byte rate
  header.writeUInt16LE(2, 32); // block align
  header.writeUInt16LE(16, 34); // bits per sample
  header.write("data", 36, "latin1");
  header.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([header, pcm]);
}

/** `samples` of a 440 Hz tone starting at sample `from`, as 16-bit little-endian PCM. */
export function tone(samples: number, sampleRate: number, from = 0): Buffer {
  const pcm = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++)
    pcm.writeInt16LE(
      Math.round(8000 * Math.sin((2 * Math.PI * 440 * (from + i)) / sampleRate)),
      i * 2,
    );
  return pcm;
}

/** A WAV recording of `seconds` of tone at 16 kHz, what a consumer uploads for transcription. */
export function recording(seconds: number, sampleRate = 16_000): Buffer {
  return wavFile(tone(Math.round(seconds * sampleRate), sampleRate), sampleRate);
}

/** The duration in seconds of a PCM WAV file, or undefined when it is not one. */
export function wavSeconds(file: Buffer): number | undefined {
  if (file.length < 44 || file.toString("latin1", 0, 4) !== "RIFF") return undefined;
  if (file.toString("latin1", 8, 12) !== "WAVE") return undefined;
  const rate = file.readUInt32LE(24);
  const blockAlign = file.readUInt16LE(32);
  return rate > 0 && blockAlign > 0 ? (file.length - 44) / (rate * blockAlign) : undefined;
}

/** What every fake STT engine hears in any recording: two sentences, timed to its length. */
export const TRANSCRIPT = ["Hello from the rig.", "Audio works end to end."];

/** A timed transcript: segments of timed words (words keep their punctuation). */
export interface TimedSegment {
  text: string;
  start: number;
  end: number;
  words: { word: string; start: number; end: number }[];
}

const round = (n: number): number => Math.round(n * 1000) / 1000;

/** {@link TRANSCRIPT} spread over `seconds`: equal segments, equal words inside each. */
export function timedTranscript(seconds: number): TimedSegment[] {
  const per = seconds / TRANSCRIPT.length;
  return TRANSCRIPT.map((text, i) => {
    const parts = text.split(" ");
    const start = i * per;
    const step = per / parts.length;
    return {
      text,
      start: round(start),
      end: round(start + per),
      words: parts.map((word, j) => ({
        word,
        start: round(start + j * step),
        end: round(start + (j + 1) * step),
      })),
    };
  });
}

/** Speech's sample rate (Kokoro's): 24 kHz. */
export const SPEECH_RATE = 24_000;

/**
 * The pieces a fake TTS engine sends for `input`: one per sentence, 10 ms of tone per
 * character. For `wav` the first piece starts with the header; `pcm` is the bare samples; other
 * formats are the samples behind a tag naming the format (the fakes encode nothing).
 */
export function speechPieces(input: string, format: string): Buffer[] {
  const sentences = input.match(/[^.!?]+[.!?]*/g)?.map((s) => s.trim()) ?? [input];
  let at = 0;
  const pcm = sentences.map((s) => {
    const samples = Math.max(1, s.length) * (SPEECH_RATE / 100);
    const piece = tone(samples, SPEECH_RATE, at);
    at += samples;
    return piece;
  });
  if (format === "pcm") return pcm;
  const all = Buffer.concat(pcm);
  const head =
    format === "wav"
      ? wavFile(all, SPEECH_RATE).subarray(0, 44)
      : Buffer.from(`FAKE-${format.toUpperCase()}\n`);
  const [first = Buffer.alloc(0), ...rest] = pcm;
  return [Buffer.concat([head, first]), ...rest];
}

/**
 * Writes speech pieces: the first at once, each next one after the fake's gate, stopping when
 * the client leaves. `chunked` streams them (Kokoro's default); otherwise the whole file is
 * produced first and sent with its length.
 */
export async function sendSpeech(
  fake: FakeServer,
  res: ServerResponse,
  pieces: Buffer[],
  contentType: string,
  chunked: boolean,
): Promise<void> {
  const gen = fake.track(res);
  if (!chunked) {
    for (let i = 1; i < pieces.length; i++) {
      await fake.beforeToken();
      if (gen.closed()) return;
    }
    const all = Buffer.concat(pieces);
    gen.complete();
    send(res, 200, all, contentType);
    return;
  }
  res.writeHead(200, { "Content-Type": contentType, "Cache-Control": "no-cache" });
  for (const [i, piece] of pieces.entries()) {
    if (i > 0) await fake.beforeToken();
    if (gen.closed()) return;
    res.write(piece);
  }
  gen.complete();
  res.end();
}

/** One uploaded file as a fake saw it. */
export interface Upload {
  filename: string;
  type: string;
  bytes: Buffer;
}

/** A multipart form as a fake received it: every value per field name, files apart. */
export interface ReceivedForm {
  fields: Record<string, string[]>;
  files: Record<string, Upload>;
}

/** Reads a recorded multipart request with the platform's parser (not the adapters'). */
export async function readForm(req: RecordedRequest): Promise<ReceivedForm | undefined> {
  const type = req.headers["content-type"];
  if (typeof type !== "string" || !type.startsWith("multipart/form-data")) return undefined;
  let form: FormData;
  try {
    // Deprecated for servers (it buffers); a fake wants an independent, well-known parser.
    form = await new Response(req.bytes, { headers: { "content-type": type } }).formData();
  } catch {
    return undefined;
  }
  const out: ReceivedForm = { fields: {}, files: {} };
  for (const [name, value] of form.entries()) {
    if (typeof value === "string") (out.fields[name] ??= []).push(value);
    else
      out.files[name] = {
        filename: value.name,
        type: value.type,
        bytes: Buffer.from(await value.arrayBuffer()),
      };
  }
  return out;
}

function clock(seconds: number, comma: boolean): string {
  const ms = Math.round(seconds * 1000);
  const pad = (n: number, w = 2): string => String(n).padStart(w, "0");
  const hms = `${pad(Math.floor(ms / 3_600_000))}:${pad(Math.floor(ms / 60_000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}`;
  return `${hms}${comma ? "," : "."}${pad(ms % 1000, 3)}`;
}

/** Segments as SubRip or WebVTT, each segment's text as `textOf` writes it. */
export function subtitles(
  kind: "srt" | "vtt",
  segments: TimedSegment[],
  textOf: (s: TimedSegment) => string = (s) => ` ${s.text}`,
): string {
  const cues = segments.map((s, i) => {
    const times = `${clock(s.start, kind === "srt")} --> ${clock(s.end, kind === "srt")}`;
    return `${kind === "srt" ? `${i + 1}\n` : ""}${times}\n${textOf(s)}\n\n`;
  });
  return (kind === "vtt" ? "WEBVTT\n\n" : "") + cues.join("");
}
