/**
 * `videos/generations` on ComfyUI: the model's video workflow (its image kind when the request
 * sends an `image`) runs, and the video file it saved streams from `/view` to the consumer as
 * it is read, its movie metadata (the graph) blanked: a 200 MB MP4 is never held whole.
 */
import { pipeline } from "node:stream";
import { badRequest } from "../../src/http/error.ts";
import { UpstreamError } from "../../src/errors.ts";
import type { EngineCall, EngineReply } from "../adapter.ts";
import { longReply } from "../kit/job.ts";
import { decodeInline, typeOfFile } from "../kit/media.ts";
import type { ModelWorkflows } from "./library.ts";
import { mp4MetadataStripper } from "./mp4-metadata.ts";
import { fetchOutput, outputFiles } from "./outputs.ts";
import { prepare, readValues } from "./params.ts";
import { runGraph } from "./run.ts";
import { uploadImage } from "./upload.ts";
import type { Workflow } from "./workflow.ts";

const MAX_IMAGE_BYTES = 32 * 1024 * 1024;

/** The frame rate a workflow uses unless told: its `fps` input's value, else 24. */
function workflowFps(wf: Workflow): number {
  const t = wf.targets.fps?.[0];
  const value = t ? wf.graph[t.node]?.inputs[t.input] : undefined;
  return typeof value === "number" && value > 0 ? value : 24;
}

/** The request's fields, with `duration` (seconds) turned into `num_frames` at the frame rate. */
function fields(json: Record<string, unknown>, wf: Workflow): Record<string, unknown> {
  const { image: _image, duration, ...rest } = json;
  if (duration === undefined || duration === null || rest.num_frames !== undefined) return rest;
  if (typeof duration !== "number" || !(duration > 0) || duration > 3600)
    throw badRequest(`"duration" must be a number of seconds`);
  const fps = typeof rest.fps === "number" ? rest.fps : workflowFps(wf);
  return { ...rest, num_frames: Math.round(duration * fps) + 1 };
}

/** `POST /v1/videos/generations`. */
export async function generateVideo(
  call: EngineCall,
  models: ModelWorkflows,
): Promise<EngineReply> {
  const json = call.json ?? {};
  const hasImage = json.image !== undefined && json.image !== null && json.image !== "";
  const wf = hasImage ? models.image : models.text;
  if (!wf)
    throw badRequest(
      `model ${models.model} ${hasImage ? "does not start from an image" : "needs an image"}`,
    );
  if (typeof json.prompt !== "string" || json.prompt.trim() === "")
    throw badRequest(`"prompt" is required`);
  const values = readValues(fields(json, wf));
  if (hasImage)
    values.image = await uploadImage(
      call,
      decodeInline(json.image, "image", MAX_IMAGE_BYTES),
      "image",
    );
  const run = prepare(wf, values);
  const contentType = wf.contentType ?? "video/mp4";
  return longReply(call, contentType, async () => {
    const entry = await runGraph(call, wf.source, run);
    const files = outputFiles(entry, wf.outputs);
    const file = files.find((f) => typeOfFile(f.filename)?.startsWith("video/")) ?? files[0];
    if (!file)
      throw new UpstreamError("upstream_bad_answer", `ComfyUI ran ${wf.source} but saved no file`);
    const reply = await fetchOutput(call, file);
    call.progress?.(1, "sending the video");
    const headers: Record<string, string> = {
      "content-type": typeOfFile(file.filename) ?? contentType,
    };
    const length = reply.headers["content-length"];
    if (length !== undefined) headers["content-length"] = length;
    if (!/^video\/(mp4|quicktime)$/.test(headers["content-type"] ?? ""))
      return { status: 200, headers, body: reply.body };
    // The graph ComfyUI wrote into the movie's metadata stays on the rig; sizes do not change.
    const body = mp4MetadataStripper();
    pipeline(reply.body, body, () => undefined);
    return { status: 200, headers, body };
  });
}
