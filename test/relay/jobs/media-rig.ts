/**
 * A provider for tests of the relay's long-running work: the daemon's own tunnel client
 * (`src/tunnel/client.ts`, real WebSocket and HTTP/2) with a handler that answers like media
 * engines, for the types no daemon adapter serves yet (image, music, video), plus a scripted
 * LLM for fast in-process workflow tests. Like the fake engines it records requests, holds
 * answers behind a gate, and emits `client-closed` when the relay resets a stream.
 */
import { EventEmitter, once } from "node:events";
import type { TunnelExchange } from "../../../src/tunnel/client.ts";
import { silentLogger } from "../../../src/log.ts";
import type {
  Access,
  Manifest,
  ManifestService,
  ServiceType,
} from "../../../src/protocol/index.ts";
import { TunnelClient } from "../../../src/tunnel/client.ts";

/** One request as the rig received it. */
export interface RigRequest {
  path: string;
  model: string;
  /** The member the relay says made the request (`x-club-member`). */
  member: string;
  body: Record<string, unknown>;
}

export interface MediaRigOptions {
  relayUrl: string;
  apiKey: string;
  name?: string;
  /** Models per service type; default one each of `image-1`, `music-1`, `video-1`. */
  models?: Partial<Record<ServiceType, string[]>>;
  /** Jobs each service takes at once (its manifest `max_concurrent`). */
  maxConcurrent?: number;
  /** Who besides the owner may use each model (model id → access); private when absent. */
  access?: Record<string, Access>;
  /** What the LLM answers: the reply's text for a request. */
  reply?: (body: Record<string, unknown>) => string;
  /**
   * The tokens the LLM reports having used for a request, in its answer's `usage` (and, streamed,
   * in a final `choices: []` chunk when `stream_options.include_usage` asks, as llama-server
   * does); no `usage` when absent.
   */
  usage?: (body: Record<string, unknown>) => { prompt_tokens: number; completion_tokens: number };
  /** The image engine's picture (default `PNG`). */
  image?: Buffer;
  /** The video engine's bytes (default `VIDEO`). */
  video?: Buffer;
}

/** A small valid PNG's first bytes plus a tag: what the fake image engine "draws". */
export const PNG = Buffer.concat([Buffer.from("89504e470d0a1a0a", "hex"), Buffer.from("fake")]);
/** Bytes of the fake video and music answers (sent in 4 chunks, through the gate). */
export const VIDEO = Buffer.alloc(256 * 1024, 7);
export const MUSIC = Buffer.alloc(64 * 1024, 3);

const TYPES: Record<string, ServiceType> = {
  "/v1/chat/completions": "llm",
  "/v1/images/generations": "image",
  "/v1/music/generations": "music",
  "/v1/videos/generations": "video",
  "/v1/audio/speech": "tts",
};

/** Whether the relay reset the stream (read through a call: TypeScript would narrow `res.closed`). */
const gone = (res: TunnelExchange): boolean => res.closed;

export class MediaRig extends EventEmitter<{
  request: [RigRequest];
  "client-closed": [RigRequest];
  /** A form upload began to arrive (its body is read as it comes). */
  upload: [path: string];
  /** The relay reset a form upload before its end. */
  "upload-cut": [path: string];
}> {
  readonly requests: RigRequest[] = [];
  inFlight = 0;
  /** Answers the next N requests with 500 (a failing engine). */
  failNext = 0;
  /** Answers every request with this status while set (429: a full rig, with `Retry-After`). */
  refuseWith: number | undefined;
  readonly #client: TunnelClient;
  #paused: string | undefined;
  #pausedModels: Record<string, string> | undefined;
  #gate: { promise: Promise<void>; open: () => void } | undefined;

  constructor(readonly options: MediaRigOptions) {
    super();
    this.#client = new TunnelClient({
      relayUrl: options.relayUrl.replace(/^http/, "ws"),
      apiKey: options.apiKey,
      provider: { name: options.name ?? "media1", version: "test" },
      manifest: () => this.manifest(),
      heartbeat: () => ({
        in_flight: this.inFlight,
        queued: 0,
        services: {},
        gpus: [],
        ...(this.#paused ? { paused: this.#paused } : {}),
        ...(this.#pausedModels ? { paused_models: this.#pausedModels } : {}),
      }),
      onRequest: (req, res) => void this.#handle(req, res),
      backoff: { baseMs: 50, maxMs: 500 },
      log: silentLogger,
    });
  }

  manifest(): Manifest {
    const models = this.options.models ?? {
      image: ["image-1"],
      music: ["music-1"],
      video: ["video-1"],
    };
    const services = Object.entries(models).map(([type, ids]): ManifestService => ({
      name: `${type}-svc`,
      engine: "other",
      type: type as ServiceType,
      features: [],
      max_concurrent: this.options.maxConcurrent ?? 4,
      models: ids.map((id) => ({
        id,
        input_modalities: ["text"],
        output_modalities: [type === "llm" ? "text" : type],
        features: [],
        context_length: null,
        ...(this.options.access?.[id] ? { access: this.options.access[id] } : {}),
      })),
    }));
    const name = this.options.name ?? "media1";
    return { schema_version: 1, agent: { name }, hosts: [{ id: "h1", gpus: [], services }] };
  }

  /** Connects and resolves once the relay welcomed the rig. */
  async start(): Promise<void> {
    const connected = once(this.#client, "connected");
    this.#client.start();
    await connected;
  }

  stop(): void {
    this.resume();
    this.#client.stop();
  }

  /**
   * Says in a heartbeat, sent now, that the owner paused the rig (or only `models`); `undefined`
   * serves again.
   */
  setPaused(reason: string | undefined, models?: Record<string, string>): void {
    this.#paused = reason;
    this.#pausedModels = models;
    this.#client.sendHeartbeat();
  }

  /** Holds every answer (before its first byte, and between chunks) until `resume()`. */
  pause(): void {
    if (this.#gate) return;
    let open = (): void => undefined;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.#gate = { promise, open };
  }

  resume(): void {
    this.#gate?.open();
    this.#gate = undefined;
  }

  async #wait(): Promise<void> {
    while (this.#gate) await this.#gate.promise;
  }

  async #handle(req: TunnelExchange, res: TunnelExchange): Promise<void> {
    const chunks: Buffer[] = [];
    const sent = req.headers["content-type"];
    if (typeof sent === "string" && sent.startsWith("multipart/form-data")) {
      // A transcription engine: the form is taken as it streams in, and its length answered.
      this.emit("upload", req.url);
      try {
        for await (const chunk of req) chunks.push(chunk as Buffer);
      } catch {
        this.emit("upload-cut", req.url);
        return;
      }
      const bytes = Buffer.concat(chunks).length;
      return this.#json(res, 200, { text: `${bytes} bytes` });
    }
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<
      string,
      unknown
    >;
    const path = req.url.split("?")[0] ?? "";
    const recorded: RigRequest = {
      path,
      model: String(req.headers["x-club-model"]),
      member: String(req.headers["x-club-member"]),
      body,
    };
    this.requests.push(recorded);
    this.inFlight++;
    let done = false;
    res.on("close", () => {
      this.inFlight--;
      if (!done) this.emit("client-closed", recorded);
    });
    this.emit("request", recorded);
    await this.#wait();
    if (gone(res)) return;
    if (typeof body.fail_with === "number") {
      done = true;
      const error = { message: `refused with ${body.fail_with}`, type: "invalid_request_error" };
      return this.#json(res, body.fail_with, { error });
    }
    if (this.refuseWith !== undefined) {
      done = true;
      const error = { message: `the rig is full (${this.refuseWith})`, type: "rate_limit_error" };
      return this.#json(res, this.refuseWith, { error }, { "retry-after": "1" });
    }
    if (this.failNext > 0) {
      this.failNext--;
      done = true;
      return this.#json(res, 500, {
        error: { message: "the engine crashed", type: "server_error" },
      });
    }
    const type = TYPES[path];
    if (type === "image") {
      done = true;
      const n = typeof body.n === "number" ? body.n : 1;
      const image = (this.options.image ?? PNG).toString("base64");
      const data = Array.from({ length: n }, () => ({
        b64_json: image,
        revised_prompt: body.prompt,
      }));
      return this.#json(res, 200, { created: 1, data });
    }
    if (type === "llm") {
      done = true;
      const content = this.options.reply?.(body) ?? "ok";
      const usage = this.options.usage?.(body);
      if (body.stream === true) return this.#stream(res, recorded.model, content, body, usage);
      return this.#json(res, 200, {
        id: "chatcmpl-rig",
        object: "chat.completion",
        model: recorded.model,
        choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content } }],
        ...(usage
          ? { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } }
          : {}),
      });
    }
    const bytes = type === "video" ? (this.options.video ?? VIDEO) : MUSIC;
    res.writeHead(200, { "content-type": type === "video" ? "video/mp4" : "audio/wav" });
    for (let i = 0; i < 4; i++) {
      await this.#wait();
      if (gone(res)) return;
      res.write(bytes.subarray((i * bytes.length) / 4, ((i + 1) * bytes.length) / 4));
    }
    done = true;
    res.end();
  }

  /** A chat answer streamed as llama-server streams it: one chunk per word, then the usage. */
  #stream(
    res: TunnelExchange,
    model: string,
    content: string,
    body: Record<string, unknown>,
    usage: { prompt_tokens: number; completion_tokens: number } | undefined,
  ): void {
    res.writeHead(200, { "content-type": "text/event-stream" });
    const base = { id: "chatcmpl-rig", object: "chat.completion.chunk", created: 1, model };
    const event = (v: unknown): string => `data: ${JSON.stringify(v)}\n\n`;
    const deltas = [
      { role: "assistant", content: null },
      ...content.split(/(?= )/).map((w) => ({ content: w })),
    ];
    for (const delta of deltas)
      res.write(event({ choices: [{ index: 0, finish_reason: null, delta }], ...base }));
    res.write(event({ choices: [{ index: 0, finish_reason: "stop", delta: {} }], ...base }));
    const options = body.stream_options as { include_usage?: unknown } | undefined;
    if (usage && options?.include_usage === true)
      res.write(
        event({
          choices: [],
          ...base,
          usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
        }),
      );
    res.end("data: [DONE]\n\n");
  }

  #json(res: TunnelExchange, status: number, value: unknown, headers = {}): void {
    const text = JSON.stringify(value);
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(text);
  }
}
