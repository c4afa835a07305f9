/**
 * A fake ComfyUI over real HTTP and a real WebSocket, in the shapes of its server.py
 * (engines.md §6): `/system_stats`, `/object_info/{class}`, `POST /prompt` (400 with
 * `node_errors` for an unknown node class), `/ws?clientId=`, `/history/{id}`, `/queue`,
 * `/interrupt`, `POST /upload/image` and `GET /view` (only `type=output`, no `..`).
 * SaveImage nodes write `fakePng`s that name their prompt, seed and input image; SaveVideo
 * nodes write a `videoBytes` MP4 made as it is read. A prompt deleted or interrupted counts as
 * a generation its client closed early (`client-closed`), as the shared suite expects.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { Readable } from "node:stream";
import { Response } from "undici";
import WebSocket, { WebSocketServer } from "ws";
import { JobQueue, type FakeNode } from "./comfyui-jobs.ts";
import { nodeSchemas, saveOutputs, videoStream, type StoredFile } from "./comfyui-files.ts";
import {
  FakeServer,
  type Body,
  type FakeBaseOptions,
  type RecordedRequest,
} from "./fake-server.ts";

export interface FakeComfyUIOptions extends FakeBaseOptions {
  checkpoints?: string[];
  /** Size of the MP4 each SaveVideo node writes. */
  videoBytes?: number;
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
  readonly #checkpoints: string[];
  readonly #sockets = new Map<string, WebSocket>();
  readonly #wss = new WebSocketServer({ noServer: true });
  #counter = 0;

  constructor(options: FakeComfyUIOptions = {}) {
    super(options);
    this.#checkpoints = options.checkpoints ?? COMFY_CHECKPOINTS;
    this.videoBytes = options.videoBytes ?? 4096;
    this.queue = new JobQueue({
      send: (clientId, type, data) =>
        this.#sockets.get(clientId)?.send(JSON.stringify({ type, data })),
      beforeToken: () => this.beforeToken(),
      running: (delta) => (this.inFlight += delta),
      cancelled: (job) => {
        this.closedEarly++;
        this.emit("client-closed", job.request);
      },
      outputs: (job) => {
        this.completed++;
        return saveOutputs(job.graph, this.files, () => ++this.#counter, this.videoBytes);
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
      const spec = nodeSchemas(this.#checkpoints, [...this.uploads.keys(), "example.png"])[name];
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

  #prompt(req: RecordedRequest, b: Record<string, unknown>, res: ServerResponse): void {
    const graph = (b.prompt ?? {}) as Record<string, FakeNode>;
    const schemas = nodeSchemas(this.#checkpoints, []);
    const unknown = Object.entries(graph).find(([, n]) => !schemas[n.class_type]);
    if (unknown) {
      const message = `Cannot execute because node ${unknown[1].class_type} does not exist.`;
      return json(res, 400, {
        error: {
          type: "invalid_prompt",
          message,
          details: `Node ID '#${unknown[0]}'`,
          extra_info: {},
        },
        node_errors: {},
      });
    }
    // ComfyUI checks every input against its node's min and max (MAX_RESOLUTION here 8192).
    const big = Object.entries(graph).find(([, n]) => Number(n.inputs.width) > 8192);
    if (big)
      return json(res, 400, {
        error: {
          type: "prompt_outputs_failed_validation",
          message: "Prompt outputs failed validation",
          details: "",
          extra_info: {},
        },
        node_errors: {
          [big[0]]: {
            errors: [
              {
                type: "value_bigger_than_max",
                message: "Value bigger than max",
                details: `width: ${String(big[1].inputs.width)} > 8192`,
              },
            ],
            dependent_outputs: [],
            class_type: big[1].class_type,
          },
        },
      });
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
    if (
      filename.includes("..") ||
      subfolder.includes("..") ||
      url.searchParams.get("type") !== "output"
    )
      return void res.writeHead(400).end();
    const file = this.files.get(subfolder ? `${subfolder}/${filename}` : filename);
    if (!file) return void res.writeHead(404).end();
    const type = filename.endsWith(".mp4") ? "video/mp4" : "image/png";
    const size = file.kind === "bytes" ? file.bytes.length : file.size;
    res.writeHead(200, {
      "Content-Type": type,
      "Content-Length": size,
      "Content-Disposition": `filename="${filename}"`,
    });
    if (file.kind === "bytes") return void res.end(file.bytes);
    videoStream(file.size, (n) => (this.videoBytesSent += n)).pipe(res);
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}
