/**
 * A fake ComfyUI over real HTTP and a real WebSocket, answering as ComfyUI 0.3.64 does (the
 * recordings in shared/reference/comfyui-captures): `/system_stats`, `/object_info/{class}`
 * (`{}` for an unknown class), `POST /prompt` (its three 400s: `invalid_prompt`,
 * `prompt_no_outputs`, `prompt_outputs_failed_validation` from each input's `min`, `max` and
 * options), `/ws?clientId=`, `/history/{id}` (`{}` when unknown), `/queue`, `/interrupt` (200,
 * empty), `POST /upload/image` and `GET /view` (a missing `type` means `output`; 400 for `..`
 * in the name, 403 for a subfolder that climbs out, 404 for a missing file). SaveImage nodes
 * write `fakePng`s that name their prompt, seed and input image and, as ComfyUI does, carry the
 * graph in `prompt` and `workflow` text chunks; SaveVideo nodes write a `videoBytes` MP4 made as
 * it is read. A prompt deleted or interrupted counts as a generation its client closed early
 * (`client-closed`), as the shared suite expects.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { Readable } from "node:stream";
import { Response } from "undici";
import WebSocket, { WebSocketServer } from "ws";
import { JobQueue, type FakeNode } from "./comfyui-jobs.ts";
import { refusePrompt } from "./comfyui-validate.ts";
import { nodeSchemas, saveOutputs, videoStream, type StoredFile } from "./comfyui-files.ts";
import {
  FakeServer,
  json,
  type Body,
  type FakeBaseOptions,
  type RecordedRequest,
} from "./fake-server.ts";

export interface FakeComfyUIOptions extends FakeBaseOptions {
  checkpoints?: string[];
  /** Size of the MP4 each SaveVideo node writes. */
  videoBytes?: number;
  /** When set, what each SaveVideo node writes instead (an MP4 with metadata, say). */
  videoFile?: Buffer;
}

export const COMFY_CHECKPOINTS = ["sd_xl_base_1.0.safetensors", "ltx-video-2b-v0.9.5.safetensors"];

export class FakeComfyUI extends FakeServer {
  readonly queue: JobQueue;
  /** Files written by prompts, by `subfolder/filename`. */
  readonly files = new Map<string, StoredFile>();
  /** Images uploaded to the input folder, by the name LoadImage takes. */
  readonly uploads = new Map<string, Buffer>();
  /** `GET /view` paths asked for. */
  readonly views: string[] = [];
  /** Video bytes produced by `/view` so far. */
  videoBytesSent = 0;
  /** When set, the next prompt fails at its sampler with this message. */
  failNext: string | undefined;
  /** False: `/ws` is refused (a proxy in front that does not pass WebSockets). */
  acceptSockets = true;
  videoBytes: number;
  readonly #videoFile: Buffer | undefined;
  readonly #checkpoints: string[];
  readonly #sockets = new Map<string, WebSocket>();
  readonly #wss = new WebSocketServer({ noServer: true });
  #counter = 0;

  constructor(options: FakeComfyUIOptions = {}) {
    super(options);
    this.#checkpoints = options.checkpoints ?? COMFY_CHECKPOINTS;
    this.videoBytes = options.videoBytes ?? 4096;
    this.#videoFile = options.videoFile;
    this.queue = new JobQueue({
      send: (clientId, type, data) =>
        this.#sockets.get(clientId)?.send(JSON.stringify({ type, data })),
      broadcast: (type, data) => {
        for (const ws of this.#sockets.values()) ws.send(JSON.stringify({ type, data }));
      },
      beforeToken: () => this.beforeToken(),
      running: (delta) => (this.inFlight += delta),
      cancelled: (job) => {
        this.closedEarly++;
        this.emit("client-closed", job.request);
      },
      outputs: (job) => {
        this.completed++;
        const outputs = saveOutputs(job.graph, this.files, () => ++this.#counter, this.videoBytes);
        const given = this.#videoFile;
        if (given)
          for (const [key, file] of this.files)
            if (file.kind === "video") this.files.set(key, { kind: "bytes", bytes: given });
        return outputs;
      },
      takeFailure: () => {
        const failure = this.failNext;
        this.failNext = undefined;
        return failure;
      },
    });
    this.httpServer.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? "/", "http://fake");
      if (url.pathname !== "/ws" || !this.acceptSockets) return socket.destroy();
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        const sid = url.searchParams.get("clientId") ?? "anonymous";
        this.#sockets.set(sid, ws);
        ws.on("close", () => this.#sockets.delete(sid));
        ws.send(
          JSON.stringify({
            type: "status",
            data: { status: { exec_info: { queue_remaining: 0 } }, sid },
          }),
        );
      });
    });
  }

  /** The graph of the last prompt submitted. */
  lastGraph(): Record<string, FakeNode> {
    return this.queue.jobs.at(-1)?.graph ?? {};
  }

  override async stop(): Promise<void> {
    for (const ws of this.#sockets.values()) ws.terminate();
    await super.stop();
  }

  protected async handle(req: RecordedRequest, body: Body, res: ServerResponse): Promise<void> {
    const url = new URL(req.path, "http://fake");
    const b = (body.kind === "json" ? body.value : {}) as Record<string, unknown>;
    const route = `${req.method} ${url.pathname.replace(/^\/api\//, "/")}`;
    if (route === "GET /system_stats")
      return json(res, 200, {
        system: {
          os: "posix",
          comfyui_version: "0.3.99-fake",
          python_version: "3.12",
          argv: ["main.py"],
        },
        devices: [
          { name: "cuda:0 Fake GPU", type: "cuda", index: 0, vram_total: 8e9, vram_free: 7e9 },
        ],
      });
    if (route.startsWith("GET /object_info/")) {
      const name = decodeURIComponent(url.pathname.slice("/object_info/".length));
      const spec = this.#schemas()[name];
      return json(
        res,
        200,
        spec ? { [name]: { input: { required: spec }, name, output_node: false } } : {},
      );
    }
    if (route === "POST /prompt") return this.#prompt(req, b, res);
    if (route.startsWith("GET /history/")) {
      const id = url.pathname.slice("/history/".length);
      const entry = this.queue.history.get(id);
      return json(res, 200, entry ? { [id]: entry } : {});
    }
    if (route === "GET /queue") return json(res, 200, this.queue.queue());
    if (route === "POST /queue") {
      this.queue.delete(Array.isArray(b.delete) ? b.delete : []);
      return void res.writeHead(200).end();
    }
    if (route === "POST /interrupt") {
      this.queue.interrupt(b.prompt_id);
      return void res.writeHead(200).end();
    }
    if (route === "POST /upload/image") return this.#upload(req, res);
    if (route === "GET /view") return this.#view(url, res);
    return json(res, 404, { error: "not found" });
  }

  #schemas(): Record<string, Record<string, unknown>> {
    return nodeSchemas(this.#checkpoints, [...this.uploads.keys(), "example.png"]);
  }

  #prompt(req: RecordedRequest, b: Record<string, unknown>, res: ServerResponse): void {
    const graph = (b.prompt ?? {}) as Record<string, FakeNode>;
    const refused = refusePrompt(graph, this.#schemas());
    if (refused) return json(res, 400, refused);
    const job = this.queue.add(graph, typeof b.client_id === "string" ? b.client_id : "", req);
    json(res, 200, { prompt_id: job.id, number: job.number, node_errors: {} });
  }

  async #upload(req: RecordedRequest, res: ServerResponse): Promise<void> {
    const type = String(req.headers["content-type"] ?? "");
    const form = await new Response(Readable.from([req.bytes]), {
      headers: { "content-type": type },
    }).formData();
    const image = form.get("image");
    if (!image || typeof image === "string") return void res.writeHead(400).end();
    const field = (name: string, fallback: string): string => {
      const value = form.get(name);
      return typeof value === "string" ? value : fallback;
    };
    const subfolder = field("subfolder", "");
    this.uploads.set(
      subfolder ? `${subfolder}/${image.name}` : image.name,
      Buffer.from(await image.arrayBuffer()),
    );
    json(res, 200, { name: image.name, subfolder, type: field("type", "input") });
  }

  #view(url: URL, res: ServerResponse): void {
    const filename = url.searchParams.get("filename") ?? "";
    const subfolder = url.searchParams.get("subfolder") ?? "";
    this.views.push(url.search);
    if (!filename || filename.startsWith("/") || filename.includes(".."))
      return void res.writeHead(400).end();
    if (subfolder.startsWith("/") || subfolder.split("/").includes(".."))
      return void res.writeHead(403).end();
    const type = url.searchParams.get("type") ?? "output";
    const key = subfolder ? `${subfolder}/${filename}` : filename;
    const upload = type === "input" ? this.uploads.get(key) : undefined;
    const file: StoredFile | undefined = upload
      ? { kind: "bytes", bytes: upload }
      : type === "output"
        ? this.files.get(key)
        : undefined;
    if (!file) return void res.writeHead(404).end();
    const contentType = filename.endsWith(".mp4") ? "video/mp4" : "image/png";
    const size = file.kind === "bytes" ? file.bytes.length : file.size;
    res.writeHead(200, {
      "Content-Type": contentType,
      "Content-Length": size,
      "Content-Disposition": `filename="${filename}"`,
    });
    if (file.kind === "bytes") return void res.end(file.bytes);
    videoStream(file.size, (n) => (this.videoBytesSent += n)).pipe(res);
  }
}
