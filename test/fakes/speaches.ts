/**
 * A fake speaches over real HTTP, in the shapes of its source (engines.md §7–§8, S1–S3):
 * `/v1/models` entries with `task` (TTS ones carry `sample_rate` and `voices`), `/v1/models/{id}`,
 * `/v1/audio/voices` (every TTS voice), `/v1/audio/speech` streamed (`stream_format: "sse"` gives
 * `speech.audio.delta` events), and `/v1/audio/transcriptions` in every response_format with
 * segment and word timings per `timestamp_granularities[]`. Errors are FastAPI's `{"detail"}`.
 * With `apiKey`, a Bearer key is needed everywhere but `/health`.
 */
import type { ServerResponse } from "node:http";
import {
  readForm,
  sendSpeech,
  speechPieces,
  subtitles,
  timedTranscript,
  wavSeconds,
  type ReceivedForm,
} from "./audio.ts";
import {
  FakeServer,
  send,
  json,
  type Body,
  type FakeBaseOptions,
  type RecordedRequest,
} from "./fake-server.ts";

export const SPEACHES_STT = "Systran/faster-whisper-tiny.en";
export const SPEACHES_TTS = "speaches-ai/Kokoro-82M-v1.0-ONNX";
export const SPEACHES_PIPER = "speaches-ai/piper-en_US-amy-medium";

const KOKORO_VOICES = [
  { name: "af_heart", language: "en-us", gender: "female", id: "af_heart" },
  { name: "bm_george", language: "en-gb", gender: "male", id: "bm_george" },
];
const MODELS: Record<string, unknown>[] = [
  { id: SPEACHES_STT, owned_by: "Systran", language: ["en"], task: "automatic-speech-recognition" },
  {
    id: SPEACHES_TTS,
    owned_by: "speaches-ai",
    language: ["en"],
    task: "text-to-speech",
    sample_rate: 24000,
    voices: KOKORO_VOICES,
  },
  {
    id: SPEACHES_PIPER,
    owned_by: "speaches-ai",
    language: ["en"],
    task: "text-to-speech",
    sample_rate: 22050,
    voices: [{ name: "amy", language: "en", id: "amy" }],
  },
  {
    id: "onnx-community/silero-vad",
    owned_by: "onnx-community",
    language: [],
    task: "voice-activity-detection",
  },
].map((m) => ({ created: 1700000000, object: "model", ...m }));
const TYPES: Record<string, string> = {
  mp3: "audio/mpeg",
  wav: "audio/wav",
  pcm: "audio/pcm",
  flac: "audio/flac",
  opus: "audio/opus",
  aac: "audio/aac",
};

export interface FakeSpeachesOptions extends FakeBaseOptions {
  apiKey?: string;
}

export class FakeSpeaches extends FakeServer {
  /** Every transcription form, as received. */
  readonly forms: ReceivedForm[] = [];

  constructor(readonly options: FakeSpeachesOptions = {}) {
    super(options);
  }

  protected async handle(req: RecordedRequest, body: Body, res: ServerResponse): Promise<void> {
    const url = new URL(req.path, "http://fake");
    const key = this.options.apiKey;
    if (url.pathname === "/health") return send(res, 200, "OK", "text/plain; charset=utf-8");
    if (key !== undefined && req.headers.authorization !== `Bearer ${key}`)
      return json(res, 401, { detail: "Invalid or missing API key" });
    const route = `${req.method} ${url.pathname}`;
    if (route === "GET /v1/models") {
      const task = url.searchParams.get("task");
      return json(res, 200, {
        data: MODELS.filter((m) => !task || m.task === task),
        object: "list",
      });
    }
    if (req.method === "GET" && url.pathname.startsWith("/v1/models/")) {
      const id = decodeURIComponent(url.pathname.slice("/v1/models/".length));
      const model = MODELS.find((m) => m.id === id);
      return model ? json(res, 200, model) : json(res, 404, { detail: `Model '${id}' not found` });
    }
    if (route === "GET /v1/audio/voices") {
      const voices = MODELS.flatMap((m) =>
        Array.isArray(m.voices) ? (m.voices as unknown[]) : [],
      );
      return json(res, 200, { voices, object: "list" });
    }
    if (route === "POST /v1/audio/speech") return this.speech(body, res);
    if (route === "POST /v1/audio/transcriptions") return this.transcribe(req, res);
    return json(res, 404, { detail: "Not Found" });
  }

  private async speech(body: Body, res: ServerResponse): Promise<void> {
    const b = (body.kind === "json" ? body.value : {}) as Record<string, unknown>;
    const model = MODELS.find((m) => m.id === b.model && m.task === "text-to-speech");
    if (!model)
      return json(res, 404, { detail: `Model '${String(b.model)}' is not installed locally.` });
    if (typeof b.input !== "string" || typeof b.voice !== "string")
      return json(res, 422, {
        detail: [{ type: "missing", loc: ["body", "input"], msg: "Field required" }],
      });
    const voices = model.voices as { name: string }[];
    if (!voices.some((v) => v.name === b.voice))
      return json(res, 422, { detail: `Voice '${b.voice}' is not supported.` });
    const format = typeof b.response_format === "string" ? b.response_format : "mp3";
    const pieces = speechPieces(b.input, format);
    if (b.stream_format !== "sse")
      return sendSpeech(this, res, pieces, TYPES[format] ?? "audio/mpeg", true);
    const events = [
      ...pieces.map((p) =>
        JSON.stringify({ type: "speech.audio.delta", audio: p.toString("base64") }),
      ),
      JSON.stringify({
        type: "speech.audio.done",
        usage: { input_tokens: 0, output_tokens: 0, total_tokens: 0 },
      }),
    ].map((e) => Buffer.from(`data: ${e}\n\n`));
    return sendSpeech(this, res, events, "text/event-stream; charset=utf-8", true);
  }

  private async transcribe(req: RecordedRequest, res: ServerResponse): Promise<void> {
    // Tracked before the first await, so a client that leaves at once is still seen leaving.
    const gen = this.track(res);
    const form = await readForm(req);
    if (!form)
      return json(res, 422, {
        detail: [{ type: "missing", loc: ["body", "file"], msg: "Field required" }],
      });
    this.forms.push(form);
    const field = (name: string): string | undefined => form.fields[name]?.[0];
    const model = field("model");
    if (!MODELS.some((m) => m.id === model && m.task === "automatic-speech-recognition"))
      return json(res, 404, {
        detail: `Model '${String(model)}' is not installed locally. You can download the model using \`POST /v1/models\``,
      });
    const file = form.files.file;
    const seconds = file ? wavSeconds(file.bytes) : undefined;
    if (seconds === undefined) return json(res, 400, { detail: "Failed to decode the audio file" });
    await this.beforeToken();
    if (gen.closed()) return;
    gen.complete();
    const segments = timedTranscript(seconds);
    const text = segments.map((s) => s.text).join(" ");
    const format = field("response_format") ?? "json";
    const wantWords = (form.fields["timestamp_granularities[]"] ?? []).includes("word");
    const words = (s: (typeof segments)[number]) =>
      s.words.map((w) => ({ start: w.start, end: w.end, word: ` ${w.word}`, probability: 0.9 }));
    switch (format) {
      case "text":
        return send(res, 200, text, "text/plain; charset=utf-8");
      case "srt":
        return send(res, 200, subtitles("srt", segments), "text/plain; charset=utf-8");
      case "vtt":
        return send(res, 200, subtitles("vtt", segments), "text/vtt; charset=utf-8");
      case "verbose_json":
        return json(res, 200, {
          task: "transcribe",
          language: "en",
          duration: seconds,
          text,
          words: wantWords ? segments.flatMap(words) : null,
          segments: segments.map((s, id) => ({
            id,
            seek: 0,
            start: s.start,
            end: s.end,
            text: ` ${s.text}`,
            tokens: [50364 + id],
            temperature: 0,
            avg_logprob: -0.2,
            compression_ratio: 1.1,
            no_speech_prob: 0.01,
            words: wantWords ? words(s) : null,
          })),
        });
      default:
        return json(res, 200, { text });
    }
  }
}
