/**
 * A fake Kokoro-FastAPI over real HTTP, in the shapes of its source (engines.md §7, K1–K3):
 * `/v1/models` with four `owned_by: "kokoro"` names, `/health` `{"status":"healthy"}` (503
 * "unhealthy" while `loading`), `/v1/audio/voices` as `{id, name}` objects (`?legacy=true`:
 * strings), and `/v1/audio/speech` streaming sentence pieces by default (`stream: true`), with
 * FastAPI's `{"detail": …}` errors. Set `speechError` to make speech fail with a 500.
 */
import type { ServerResponse } from "node:http";
import { sendSpeech, speechPieces } from "./audio.ts";
import {
  FakeServer,
  json,
  type Body,
  type FakeBaseOptions,
  type RecordedRequest,
} from "./fake-server.ts";

/** The voices it has, in its own (unsorted) order. */
export const KOKORO_VOICES = ["af_heart", "am_michael", "bf_emma", "af_bella", "jf_alpha"];
const MODELS = ["tts-1", "tts-1-hd", "kokoro", "gpt-4o-mini-tts"];
const TYPES: Record<string, string> = {
  mp3: "audio/mpeg",
  opus: "audio/opus",
  aac: "audio/aac",
  flac: "audio/flac",
  wav: "audio/wav",
  pcm: "audio/pcm",
};

export class FakeKokoro extends FakeServer {
  /** When set, `/v1/audio/speech` answers 500 with this message. */
  speechError: string | undefined;

  constructor(options: FakeBaseOptions = {}) {
    super(options);
  }

  protected async handle(req: RecordedRequest, body: Body, res: ServerResponse): Promise<void> {
    const url = new URL(req.path, "http://fake");
    switch (`${req.method} ${url.pathname}`) {
      case "GET /health":
        return this.loading
          ? json(res, 503, {
              status: "unhealthy",
              reason: "espeak error detected during operation",
            })
          : json(res, 200, { status: "healthy" });
      case "GET /v1/models":
        return json(res, 200, {
          object: "list",
          data: MODELS.map((id) => ({
            id,
            object: "model",
            created: 1686935002,
            owned_by: "kokoro",
          })),
        });
      case "GET /v1/audio/voices":
        return json(res, 200, {
          voices:
            url.searchParams.get("legacy") === "true"
              ? KOKORO_VOICES
              : KOKORO_VOICES.map((v) => ({ id: v, name: v })),
        });
      case "POST /v1/audio/speech":
        return this.speech(body, res);
      default:
        return json(res, 404, { detail: "Not Found" });
    }
  }

  private async speech(body: Body, res: ServerResponse): Promise<void> {
    const b = (body.kind === "json" ? body.value : {}) as Record<string, unknown>;
    if (typeof b.input !== "string")
      return json(res, 422, {
        detail: [{ type: "missing", loc: ["body", "input"], msg: "Field required", input: b }],
      });
    const model = typeof b.model === "string" ? b.model : "kokoro";
    const voice = typeof b.voice === "string" ? b.voice : "af_heart";
    const format = typeof b.response_format === "string" ? b.response_format : "mp3";
    if (!MODELS.includes(model))
      return invalid(res, "invalid_model", `Unsupported model: ${model}`);
    if (!KOKORO_VOICES.includes(voice))
      return invalid(
        res,
        "validation_error",
        `Voice '${voice}' not found. Available voices: ${[...KOKORO_VOICES].sort().join(", ")}`,
      );
    if (this.speechError !== undefined)
      return json(res, 500, {
        detail: { error: "processing_error", message: this.speechError, type: "server_error" },
      });
    const type = TYPES[format] ?? `audio/${format}`;
    res.setHeader("Content-Disposition", `attachment; filename=speech.${format}`);
    await sendSpeech(this, res, speechPieces(b.input, format), type, b.stream !== false);
  }
}

function invalid(res: ServerResponse, error: string, message: string): void {
  json(res, 400, { detail: { error, message, type: "invalid_request_error" } });
}
