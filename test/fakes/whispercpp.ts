/**
 * A fake whisper.cpp `whisper-server` over real HTTP, in the shapes of its source (engines.md
 * §8, W1–W3): `Server: whisper.cpp` on every answer, `/health` `{"status":"ok"}` (503 `loading
 * model` while `loading`), and `POST /inference` multipart answering json, text (as
 * `text/html`), srt (`application/x-subrip`), vtt and verbose_json, whose segments nest
 * per-token `words` (timed unless `token_timestamps` is false; its default is
 * `!no_timestamps`). Errors are `{"error": "..."}`; a bad number is httplib's 500 text.
 * Set `inferenceError` to make the next inference fail with a 500.
 */
import type { ServerResponse } from "node:http";
import {
  readForm,
  subtitles,
  timedTranscript,
  wavSeconds,
  type ReceivedForm,
  type TimedSegment,
} from "./audio.ts";
import {
  FakeServer,
  send,
  type Body,
  type FakeBaseOptions,
  type RecordedRequest,
} from "./fake-server.ts";

/** whisper.cpp's tokens for one timed word: long words split in two, punctuation apart. */
function tokens(word: {
  word: string;
  start: number;
  end: number;
}): { text: string; t0: number; t1: number }[] {
  const [, core = "", punct = ""] = /^(.*?)([.,!?]*)$/.exec(word.word) ?? [];
  const parts = core.length > 4 ? [` ${core.slice(0, 3)}`, core.slice(3)] : [` ${core}`];
  if (punct) parts.push(punct);
  const step = (word.end - word.start) / parts.length;
  return parts.map((text, i) => ({
    text,
    t0: word.start + i * step,
    t1: word.start + (i + 1) * step,
  }));
}

const TRUE = ["true", "1", "yes", "y"];

export class FakeWhisperCpp extends FakeServer {
  /** Every inference form, as received. */
  readonly forms: ReceivedForm[] = [];
  /** When set, inference fails with a 500 and this error. */
  inferenceError: string | undefined;

  constructor(options: FakeBaseOptions = {}) {
    super(options);
  }

  protected async handle(req: RecordedRequest, _body: Body, res: ServerResponse): Promise<void> {
    res.setHeader("Server", "whisper.cpp");
    res.setHeader("Access-Control-Allow-Origin", "*");
    const path = req.path.split("?")[0] ?? "";
    const route = `${req.method} ${path}`;
    if (route === "GET /health")
      return this.loading
        ? send(res, 503, '{"status":"loading model"}', "application/json")
        : send(res, 200, '{"status":"ok"}', "application/json");
    if (route === "GET /")
      return send(
        res,
        200,
        "<html><head><title>Whisper.cpp Server</title></head></html>",
        "text/html",
      );
    if (route === "POST /inference") return this.inference(req, res);
    return send(res, 404, `File Not Found (${path})`, "text/plain");
  }

  private async inference(req: RecordedRequest, res: ServerResponse): Promise<void> {
    // Tracked before the first await, so a client that leaves at once is still seen leaving.
    const gen = this.track(res);
    const form = await readForm(req);
    if (form) this.forms.push(form);
    const file = form?.files.file;
    if (!form || !file) return error(res, 400, "no 'file' field in the request");
    const field = (name: string): string | undefined => form.fields[name]?.[0];
    const temperature = field("temperature");
    if (temperature !== undefined && Number.isNaN(Number.parseFloat(temperature)))
      return send(res, 500, "500 Internal Server Error\nstof", "text/plain");
    const seconds = wavSeconds(file.bytes);
    if (seconds === undefined) return error(res, 400, "failed to read audio data");
    await this.beforeToken();
    if (gen.closed()) return; // whisper.cpp would answer 499 to a socket that is gone
    if (this.inferenceError !== undefined) return error(res, 500, this.inferenceError);
    gen.complete();
    const noTimestamps = TRUE.includes(field("no_timestamps") ?? "");
    const tokenTimestamps =
      field("token_timestamps") === undefined
        ? !noTimestamps
        : TRUE.includes(field("token_timestamps") ?? "");
    const segments = timedTranscript(seconds);
    const text = segments.map((s) => ` ${s.text}\n`).join("");
    switch (field("response_format") ?? "json") {
      case "text":
        return send(res, 200, text, "text/html; charset=utf-8");
      case "srt":
        return send(res, 200, subtitles("srt", segments), "application/x-subrip");
      case "vtt":
        return send(res, 200, subtitles("vtt", segments), "text/vtt");
      case "verbose_json":
        return send(
          res,
          200,
          JSON.stringify(verbose(segments, seconds, text, tokenTimestamps)),
          "application/json",
        );
      default:
        return send(res, 200, JSON.stringify({ text }), "application/json");
    }
  }
}

function verbose(
  segments: TimedSegment[],
  duration: number,
  text: string,
  timed: boolean,
): unknown {
  return {
    task: "transcribe",
    language: "english",
    duration,
    text,
    segments: segments.map((s, id) => {
      const toks = s.words.flatMap(tokens);
      return {
        id,
        text: ` ${s.text}`,
        start: s.start,
        end: s.end,
        words: toks.map((t) => ({
          word: t.text,
          ...(timed ? { start: t.t0, end: t.t1 } : {}),
          probability: 0.9,
        })),
        tokens: toks.map((_, i) => 400 + i),
        temperature: 0,
        avg_logprob: -0.1,
        no_speech_prob: 0.01,
      };
    }),
    detected_language: "english",
    detected_language_probability: 0.97,
    language_probabilities: { en: 0.97 },
  };
}

function error(res: ServerResponse, status: number, message: string): void {
  send(res, status, JSON.stringify({ error: message }), "application/json");
}
