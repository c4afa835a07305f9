/**
 * A fake Hunyuan3D-2 `api_server.py` over real HTTP, in the shapes of its source (engines.md
 * §9): no health route; `GET /status/{uid}` answers `{"status": "processing"}` for any id it
 * has no file for; `POST /generate` takes `{image (base64), seed, octree_resolution, …,
 * type}` and answers the mesh file once the fake's gate let each step pass (as the real one,
 * which generates on its event loop); every failure is a 404 `{"text", "error_code": 1}`.
 */
import type { ServerResponse } from "node:http";
import {
  FakeServer,
  send,
  json,
  type Body,
  type FakeBaseOptions,
  type RecordedRequest,
} from "./fake-server.ts";

const STEPS = 3;
const SERVER_ERROR =
  "**NETWORK ERROR DUE TO HIGH TRAFFIC. PLEASE REGENERATE OR REFRESH THIS PAGE.**";

/** A GLB file (magic, version 2, length, one JSON chunk) describing what was asked. */
export function fakeGlb(params: Record<string, unknown>): Buffer {
  const { image, ...rest } = params;
  const about = JSON.stringify({
    ...rest,
    imageBytes: typeof image === "string" ? Buffer.from(image, "base64").length : 0,
  });
  const json = Buffer.from(about.padEnd(Math.ceil(about.length / 4) * 4, " "));
  const header = Buffer.alloc(20);
  header.write("glTF", 0, "latin1");
  header.writeUInt32LE(2, 4);
  header.writeUInt32LE(20 + json.length, 8);
  header.writeUInt32LE(json.length, 12);
  header.write("JSON", 16, "latin1");
  return Buffer.concat([header, json]);
}

export class FakeHunyuan3D extends FakeServer {
  /** `/generate` bodies, in order. */
  readonly bodies: Record<string, unknown>[] = [];
  /** When set, the next generation fails (the server's 404). */
  failNext = false;

  constructor(options: FakeBaseOptions = {}) {
    super(options);
  }

  protected async handle(req: RecordedRequest, body: Body, res: ServerResponse): Promise<void> {
    const path = new URL(req.path, "http://fake").pathname;
    if (req.method === "GET" && path.startsWith("/status/"))
      return json(res, 200, { status: "processing" });
    if (req.method !== "POST" || path !== "/generate")
      return json(res, 404, { detail: "Not Found" });
    const b = (body.kind === "json" ? body.value : {}) as Record<string, unknown>;
    this.bodies.push(b);
    const failed = this.failNext || (typeof b.image !== "string" && typeof b.text !== "string");
    this.failNext = false;
    const generation = this.track(res);
    for (let step = 0; step < STEPS; step++) {
      await this.beforeToken();
      if (generation.closed()) return;
    }
    if (failed) return json(res, 404, { text: SERVER_ERROR, error_code: 1 });
    const mesh = fakeGlb(b);
    // Starlette's FileResponse guesses the type from `.glb`; Python knows none for it.
    send(res, 200, mesh, "application/octet-stream");
    generation.complete();
  }
}
