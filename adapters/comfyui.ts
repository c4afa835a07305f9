/**
 * ComfyUI (engines.md §6): images and video from workflows the operator installs
 * (docs/comfyui-workflows.md). Recognised by `GET /system_stats` carrying
 * `system.comfyui_version` and `devices[]`. Its models are workflows, not checkpoints: each
 * workflow file (the operator's directory, then the shipped templates) names the model id it
 * serves, and a model is advertised only while every node class and every file its workflows
 * fix (checkpoint, LoRA, VAE…) is installed, as `/object_info/{class}` lists them. Workflows
 * that cannot run are named, with why, in the service's notes (its reason when none can).
 *
 * Serves `images/generations` and `images/edits` (`{created, data: [{b64_json}]}`) and
 * `videos/generations` (the video file, streamed). Progress comes from ComfyUI's WebSocket;
 * an aborted call deletes the prompt from ComfyUI's queue or interrupts it. ComfyUI runs one
 * prompt at a time, so `maxConcurrent` is 1.
 */
import { UpstreamError } from "../src/errors.ts";
import { badRequest } from "../src/http/error.ts";
import type {
  Adapter,
  DiscoveredModel,
  EngineCall,
  EngineReply,
  ServiceInfo,
  Upstream,
} from "./adapter.ts";
import { serving } from "./kit/reply.ts";
import { editImages, generateImages } from "./comfyui/images.ts";
import { missingParts, type NodeInfoCache } from "./comfyui/installed.ts";
import { loadLibrary, type ModelWorkflows } from "./comfyui/library.ts";
import { generateVideo } from "./comfyui/video.ts";
import { jsonAt, no, ready } from "./kit/engine.ts";
import { obj, str } from "./kit/fields.ts";
import { getJson } from "./kit/openai-style.ts";

const KINDS = ["text", "image", "mask"] as const;

function card(m: ModelWorkflows): DiscoveredModel {
  const takesImage = m.image !== undefined || m.mask !== undefined;
  return {
    id: m.model,
    servedId: m.model,
    type: m.type,
    inputModalities: takesImage ? ["text", "image"] : ["text"],
    outputModalities: [m.type],
    features: [],
    contextLength: null,
  };
}

/** The ComfyUI adapter; it remembers, per upstream, the workflows its last `describe` kept. */
export default function comfyui(): Adapter {
  const served = new Map<string, Map<string, ModelWorkflows>>();

  async function describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo> {
    const stats = await jsonAt(upstream, "/system_stats", signal);
    const version = str(obj(stats?.system).comfyui_version) ?? "(version unknown)";
    const library = await loadLibrary(upstream);
    const cache: NodeInfoCache = new Map();
    const skipped = [...library.problems];
    const usable = new Map<string, ModelWorkflows>();
    for (const m of library.models.values()) {
      const kept: ModelWorkflows = { model: m.model, type: m.type };
      for (const kind of KINDS) {
        const wf = m[kind];
        if (!wf) continue;
        const missing = await missingParts(upstream, wf, signal, cache);
        if (missing.length === 0) kept[kind] = wf;
        else skipped.push(`${wf.source}: ${missing.join("; ")}`);
      }
      if (KINDS.some((k) => kept[k])) usable.set(m.model, kept);
    }
    served.set(upstream.url, usable);
    if (usable.size === 0)
      throw new UpstreamError(
        "upstream_no_models",
        `ComfyUI ${version} can run none of the workflows: ${skipped.join("; ") || "none is installed"} (see docs/comfyui-workflows.md)`,
      );
    const info: ServiceInfo = {
      engine: "other",
      label: `ComfyUI ${version}`,
      maxConcurrent: 1,
      models: [...usable.values()].map(card),
    };
    if (skipped.length) info.notes = skipped.map((why) => `skipped ${why}`);
    return info;
  }

  /** A handler given the workflows of the call's model. */
  const withWorkflows =
    (run: (call: EngineCall, models: ModelWorkflows) => Promise<EngineReply>) =>
    async (call: EngineCall): Promise<EngineReply> => {
      const id = call.model.servedId;
      let models = served.get(call.upstream.url)?.get(id);
      // Not described by this instance (a call built by hand): trust the files as they are.
      models ??= (await loadLibrary(call.upstream)).models.get(id);
      if (!models) throw badRequest(`no ComfyUI workflow serves model ${id}`);
      return run(call, models);
    };

  return {
    name: "comfyui",
    displayName: "ComfyUI",
    defaultPorts: [8188],
    async probe(upstream, signal) {
      const stats = await getJson(upstream, "/system_stats", signal);
      const body = obj(stats.json);
      const version = str(obj(body.system).comfyui_version);
      if (stats.status !== 200 || version === undefined || !Array.isArray(body.devices))
        return no(`GET /system_stats answers ${stats.status} without system.comfyui_version`);
      return ready(`GET /system_stats: ComfyUI ${version}`);
    },
    describe,
    ...serving("ComfyUI", {
      "/v1/images/generations": withWorkflows(generateImages),
      "/v1/images/edits": withWorkflows(editImages),
      "/v1/videos/generations": withWorkflows(generateVideo),
    }),
  };
}
