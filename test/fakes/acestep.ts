/**
 * A fake ACE-Step 1.5 API server over real HTTP, in the shapes of its docs/en/API.md and
 * acestep/api/http (engines.md §9): every answer wrapped as `{data, code, error, timestamp,
 * extra}`; `/health` public (`models_initialized` false while `loading`); `/v1/models`,
 * `/release_task`, `/query_result` and `/v1/audio` behind the key (401 `{"detail"}`). A task
 * runs one step per gate of the fake, reporting `progress` and `progress_text`; its `result`
 * is a JSON string whose `file` is `/v1/audio?path=<encoded>`. `failNext` fails the next task.
 */
import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import {
  FakeServer,
  send,
  json,
  type Body,
  type FakeBaseOptions,
  type RecordedRequest,
} from "./fake-server.ts";

export interface FakeAceStepOptions extends FakeBaseOptions {
  apiKey?: string;
  models?: { name: string; is_loaded?: boolean }[];
}

interface Task {
  id: string;
  body: Record<string, unknown>;
  request: RecordedRequest;
  status: 0 | 1 | 2;
  step: number;
  error?: string;
  path?: string;
}

const STEPS = 4;

/** The audio the fake writes for a task: an MP3-looking file naming what was asked. */
export function aceAudio(body: Record<string, unknown>): Buffer {
  const about = { prompt: body.prompt, lyrics: body.lyrics, seed: body.seed, model: body.model };
  return Buffer.concat([Buffer.from("ID3"), Buffer.from(JSON.stringify(about))]);
}

export class FakeAceStep extends FakeServer {
  readonly tasks: Task[] = [];
  readonly audio = new Map<string, Buffer>();
  failNext: string | undefined;
  readonly #apiKey: string | undefined;
  readonly #models: { name: string; is_loaded?: boolean }[];

  constructor(options: FakeAceStepOptions = {}) {
    super(options);
    this.#apiKey = options.apiKey;
    this.#models = options.models ?? [
      { name: "acestep-v15-turbo", is_loaded: true },
      { name: "acestep-v15-base", is_loaded: false },
    ];
  }

  protected async handle(req: RecordedRequest, body: Body, res: ServerResponse): Promise<void> {
    await Promise.resolve(this.#route(req, body, res));
  }

  #route(req: RecordedRequest, body: Body, res: ServerResponse): void {
    const url = new URL(req.path, "http://fake");
    const b = (body.kind === "json" ? body.value : {}) as Record<string, unknown>;
    if (req.method === "GET" && url.pathname === "/health")
      return wrapped(res, {
        status: "ok",
        service: "ACE-Step API",
        version: "1.0",
        models_initialized: !this.loading,
      });
    if (this.#apiKey && req.headers.authorization !== `Bearer ${this.#apiKey}`)
      return json(res, 401, {
        detail: req.headers.authorization ? "Invalid API key" : "Missing Authorization header",
      });
    switch (`${req.method} ${url.pathname}`) {
      case "GET /v1/models":
        return wrapped(res, {
          models: this.#models.map((m, i) => ({
            ...m,
            is_default: i === 0,
            supported_task_types: ["text2music"],
          })),
          default_model: this.#models[0]?.name ?? null,
        });
      case "POST /release_task":
        return this.#release(req, b, res);
      case "POST /query_result": {
        const ids = Array.isArray(b.task_id_list) ? b.task_id_list : [];
        return wrapped(
          res,
          ids.map((id) =>
            this.#report(
              this.tasks.find((t) => t.id === id),
              id,
            ),
          ),
        );
      }
      case "GET /v1/audio": {
        const file = this.audio.get(url.searchParams.get("path") ?? "");
        if (!file) return json(res, 404, { detail: "File not found" });
        return send(res, 200, file, "audio/mpeg");
      }
      default:
        return json(res, 404, { detail: "Not Found" });
    }
  }

  #release(req: RecordedRequest, b: Record<string, unknown>, res: ServerResponse): void {
    const duration = b.audio_duration;
    if (typeof duration === "number" && (duration < 10 || duration > 600))
      return json(res, 400, { detail: "audio_duration must be between 10 and 600 seconds" });
    const task: Task = { id: randomUUID(), body: b, request: req, status: 0, step: 0 };
    this.tasks.push(task);
    wrapped(res, { task_id: task.id, status: "queued", queue_position: 1 });
    void this.#run(task);
  }

  async #run(task: Task): Promise<void> {
    this.inFlight++;
    const failure = this.failNext;
    this.failNext = undefined;
    try {
      for (task.step = 1; task.step <= STEPS; task.step++) await this.beforeToken();
      if (failure) {
        task.status = 2;
        task.error = failure;
        return;
      }
      const format = typeof task.body.audio_format === "string" ? task.body.audio_format : "mp3";
      task.path = `/tmp/api_audio/${task.id}.${format}`;
      this.audio.set(task.path, aceAudio(task.body));
      task.status = 1;
      this.completed++;
    } finally {
      this.inFlight--;
    }
  }

  #report(task: Task | undefined, id: unknown): Record<string, unknown> {
    if (!task) return { task_id: id, status: 0, result: "[]" };
    const base = { task_id: task.id, status: task.status };
    if (task.status === 0)
      return {
        ...base,
        result: "[]",
        progress: (task.step - 1) / STEPS,
        progress_text: `diffusion ${task.step - 1}/${STEPS}`,
      };
    if (task.status === 2) return { ...base, result: "[]", error: task.error };
    const file = `/v1/audio?path=${encodeURIComponent(task.path ?? "")}`;
    const result = [
      { file, wave: "", status: 1, prompt: task.body.prompt, metas: { bpm: 120 }, seed_value: "1" },
    ];
    return { ...base, result: JSON.stringify(result) };
  }
}

function wrapped(res: ServerResponse, data: unknown): void {
  json(res, 200, { data, code: 200, error: null, timestamp: Date.now(), extra: null });
}
