/**
 * Hunyuan3D-2's `api_server.py` (Tencent-Hunyuan/Hunyuan3D-2, engines.md §9): a GLB mesh from
 * one image. It has no health or model route; it is recognised by `GET /status/<uuid>`
 * answering `{"status": "processing"}` for any id, and serves one model, advertised as
 * `hunyuan3d-2` (an operator alias renames it), `mesh` type.
 *
 * `3d/generations` (multipart `image`, `options` JSON) runs `POST /generate` with the image in
 * base64 and answers its file as `model/gltf-binary`, streamed. `/generate`, not `/send` and
 * `/status`: the latter answers the whole mesh as base64 inside JSON, and may read the file
 * while it is still being written. `/generate` runs on the server's event loop, so it answers
 * nothing, probes included, until the mesh is done: probes meanwhile are answered from our own
 * record of the job. It has no cancel: an aborted call closes its connection and the server
 * finishes the mesh. Every failure is its 404 `{"text", "error_code": 1}`: answered 502 here.
 */
import { UpstreamError } from "../src/errors.ts";
import { readCapped } from "../src/http/read-capped.ts";
import { badRequest } from "../src/http/error.ts";
import type { Adapter, EngineCall, EngineReply, ServiceInfo, Upstream } from "./adapter.ts";
import { serving } from "./kit/reply.ts";
import { no, ready } from "./kit/engine.ts";
import { obj, str } from "./kit/fields.ts";
import { BusyUpstreams, longReply } from "./kit/job.ts";
import { fileField, readForm, sniff, textField } from "./kit/media.ts";
import { forwardOpenAI, getJson } from "./kit/openai-style.ts";

const LABEL = { name: "Hunyuan3D-2", hint: "is Hunyuan3D-2's api_server.py running?" };
const GLB = "model/gltf-binary";
/** Any id will do: the server answers "processing" for every file it has not written. */
const PROBE_ID = "00000000-0000-4000-8000-000000000000";

/** `options` the server takes: name → [min, max, integer]; booleans apart. */
const NUMBERS: Record<string, [number, number, boolean]> = {
  seed: [0, 2 ** 32 - 1, true],
  octree_resolution: [16, 1024, true],
  num_inference_steps: [1, 200, true],
  guidance_scale: [0, 50, false],
  face_count: [1000, 10_000_000, true],
};

const INFO: ServiceInfo = {
  engine: "other",
  label: "Hunyuan3D-2 api_server",
  maxConcurrent: 1,
  models: [
    {
      id: "hunyuan3d-2",
      servedId: "hunyuan3d-2",
      type: "mesh",
      inputModalities: ["image"],
      outputModalities: ["model"],
      features: [],
      contextLength: null,
    },
  ],
};

/** The `/generate` body fields of the form's `options` (the club's, plus the server's own). */
function options(raw: string | undefined): Record<string, unknown> {
  if (raw === undefined || raw.trim() === "") return {};
  let parsed: Record<string, unknown>;
  try {
    parsed = obj(JSON.parse(raw));
  } catch {
    throw badRequest(`"options" must be a JSON object`);
  }
  const out: Record<string, unknown> = {};
  const formats = parsed.formats;
  if (formats !== undefined && !(Array.isArray(formats) && formats.includes("glb")))
    throw badRequest(`this rig makes GLB meshes: "options.formats" must include "glb"`);
  for (const [name, [min, max, integer]] of Object.entries(NUMBERS)) {
    const v = parsed[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || (integer && !Number.isInteger(v)) || v < min || v > max)
      throw badRequest(`"options.${name}" must be a number from ${min} to ${max}`);
    out[name] = v;
  }
  if (parsed.randomize_seed === true) out.seed = Math.floor(Math.random() * 2 ** 31);
  if (parsed.texture !== undefined) {
    if (typeof parsed.texture !== "boolean") throw badRequest(`"options.texture" is true or false`);
    out.texture = parsed.texture;
  }
  return out;
}

/** The `text` of the server's error answer, if it is one. */
function reason(body: string): string | undefined {
  try {
    return str(obj(JSON.parse(body)).text);
  } catch {
    return undefined;
  }
}

/** The Hunyuan3D-2 adapter. */
export default function hunyuan3d(): Adapter {
  const busy = new BusyUpstreams();

  async function generate(call: EngineCall): Promise<EngineReply> {
    const parts = await readForm(call);
    const image = await fileField(parts, "image", "image[]");
    if (!image) throw badRequest(`"image" is required`);
    if (!sniff(image)?.type.startsWith("image/"))
      throw badRequest(`"image" must be a PNG, JPEG or WebP image`);
    const json = {
      ...options(textField(parts, "options")),
      image: image.toString("base64"),
      type: "glb",
    };
    return longReply(call, GLB, async () => {
      call.progress?.(null, "generating");
      const end = busy.begin(call.upstream.url);
      try {
        const { stream: _stream, ...rest } = call;
        const reply = await forwardOpenAI({ ...rest, path: "/generate", headers: {}, json }, LABEL);
        if (reply.status !== 200) {
          const why = reason((await readCapped(reply.body, 64 * 1024))?.toString("utf8") ?? "");
          throw new UpstreamError(
            "upstream_job_failed",
            `Hunyuan3D-2 could not make the mesh (it answered ${reply.status}${why ? `: ${why}` : ""}; see its log)`,
          );
        }
        reply.headers["content-type"] = GLB;
        return reply;
      } finally {
        end();
      }
    });
  }

  return {
    name: "hunyuan3d",
    displayName: "Hunyuan3D-2",
    defaultPorts: [8081],
    async probe(upstream: Upstream, signal: AbortSignal) {
      if (busy.busy(upstream.url))
        return ready("Hunyuan3D-2 is making a mesh for us (it answers nothing until done)");
      const answer = await getJson(upstream, `/status/${PROBE_ID}`, signal);
      if (answer.status === 200 && obj(answer.json).status === "processing")
        return ready(`GET /status/<id>: {"status": "processing"} (Hunyuan3D-2 api_server)`);
      return no(
        `GET /status/<id> answers ${answer.status}, not Hunyuan3D-2's {"status": "processing"}`,
      );
    },
    describe: () => Promise.resolve(INFO),
    ...serving(LABEL.name, { "/v1/3d/generations": generate }),
  };
}
