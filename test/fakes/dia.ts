/**
 * A fake Dia-TTS-Server (devnen) over real HTTP, in the shapes of its server.py and engine.py
 * (engines.md §9): `/health`, `/api/model-info` (`loaded` false while `loading`),
 * `/get_predefined_voices`, `POST /upload_reference` (multipart `files`, an existing name is
 * skipped but reported as uploaded), `POST /tts` (`CustomTTSRequest`; 404 for a reference
 * file it does not have, 422 for `cfg_scale` above 5, 503 while loading) and its OpenAI
 * `POST /v1/audio/speech`. Speech is a WAV naming what was asked, sent once the fake's gate
 * let each step pass, as Dia answers only when the whole clip is made.
 */
import type { ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { Response } from "undici";
import { wavFile } from "./audio.ts";
import {
  FakeServer,
  send,
  json,
  type Body,
  type FakeBaseOptions,
  type RecordedRequest,
} from "./fake-server.ts";

export const DIA_VOICES = [
  { display_name: "Abigail", filename: "Abigail.wav" },
  { display_name: "Ryan", filename: "Ryan.wav" },
];
const STEPS = 3;

/** The WAV the fake answers for a request body: its fields, as the PCM bytes. */
export function diaSpeech(body: Record<string, unknown>): Buffer {
  const text = Buffer.from(JSON.stringify(body));
  return wavFile(text.length % 2 ? Buffer.concat([text, Buffer.from(" ")]) : text, 44_100);
}

export class FakeDia extends FakeServer {
  /** Reference clips uploaded, by file name. */
  readonly references = new Map<string, Buffer>();
  /** Bodies of `/tts` and `/v1/audio/speech`, in order. */
  readonly generations: { path: string; body: Record<string, unknown> }[] = [];

  constructor(options: FakeBaseOptions = {}) {
    super(options);
  }

  protected async handle(req: RecordedRequest, body: Body, res: ServerResponse): Promise<void> {
    const b = (body.kind === "json" ? body.value : {}) as Record<string, unknown>;
    switch (`${req.method} ${new URL(req.path, "http://fake").pathname}`) {
      case "GET /health":
        return json(res, 200, { status: "healthy", model_loaded: !this.loading });
      case "GET /api/model-info":
        return json(res, 200, {
          loaded: !this.loading,
          selector: "dia-1.6b",
          repo_id: "ttj/dia-1.6b-safetensors",
          display_name: "Dia 1.6B (Original)",
          params: "1.6B",
          model_type: "dia1",
          sample_rate: 44100,
          voices: ["dialogue", "single_s1", "single_s2", "clone", "predefined"],
          default_voice: "predefined",
          supports_cloning: true,
          cloning_method: "audio_prompt",
          device: "cuda",
        });
      case "GET /get_predefined_voices":
        return json(res, 200, DIA_VOICES);
      case "POST /upload_reference":
        return this.#upload(req, res);
      case "POST /tts":
      case "POST /v1/audio/speech":
        return this.#speak(req, b, res);
      default:
        return json(res, 404, { detail: "Not Found" });
    }
  }

  async #upload(req: RecordedRequest, res: ServerResponse): Promise<void> {
    const type = String(req.headers["content-type"] ?? "");
    const form = await new Response(Readable.from([req.bytes]), {
      headers: { "content-type": type },
    }).formData();
    const uploaded: string[] = [];
    for (const file of form.getAll("files")) {
      if (typeof file === "string") continue;
      const name = file.name.replace(/[^\w.-]/g, "_");
      if (!this.references.has(name))
        this.references.set(name, Buffer.from(await file.arrayBuffer()));
      uploaded.push(name);
    }
    json(res, 200, {
      message: `Processed ${uploaded.length} file(s).`,
      uploaded_files: uploaded,
      all_reference_files: [...this.references.keys()],
      errors: [],
    });
  }

  async #speak(
    req: RecordedRequest,
    b: Record<string, unknown>,
    res: ServerResponse,
  ): Promise<void> {
    if (this.loading)
      return json(res, 503, {
        detail: "Model not loaded. Server is starting or encountered an error.",
      });
    if (typeof b.cfg_scale === "number" && b.cfg_scale > 5)
      return json(res, 422, {
        detail: [
          {
            type: "less_than_equal",
            loc: ["body", "cfg_scale"],
            msg: "Input should be less than or equal to 5",
            input: b.cfg_scale,
          },
        ],
      });
    const ref = b.clone_reference_filename;
    if (b.voice_mode === "clone" && !this.references.has(String(ref)))
      return json(res, 404, { detail: `Reference audio file not found: ${String(ref)}` });
    if (b.voice_mode === "predefined" && !DIA_VOICES.some((v) => v.filename === ref))
      return json(res, 404, { detail: `Predefined voice file not found: ${String(ref)}` });
    const path = new URL(req.path, "http://fake").pathname;
    this.generations.push({ path, body: b });
    const generation = this.track(res);
    for (let step = 0; step < STEPS; step++) {
      await this.beforeToken();
      if (generation.closed()) return;
    }
    const audio = diaSpeech(b);
    const type =
      b.output_format === "opus" || b.response_format === "opus" ? "audio/opus" : "audio/wav";
    send(res, 200, audio, type);
    generation.complete();
  }
}
