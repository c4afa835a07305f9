/**
 * `images/generations` and `images/edits` on ComfyUI: the model's workflow of the right kind
 * runs with the request's fields (and uploads), and the images it saved come back as
 * `{created, data: [{b64_json}]}`. `response_format: "url"` gets `data:` URLs: a rig has no
 * public address to serve files from, and the hosted club asks its providers for b64_json.
 */
import { UpstreamError } from "../../src/errors.ts";
import { readCapped } from "../../src/http/read-capped.ts";
import { badRequest } from "../../src/http/error.ts";
import type { EngineCall, EngineReply } from "../adapter.ts";
import { jsonReply } from "../kit/reply.ts";
import { longReply } from "../kit/job.ts";
import { fileField, readForm, textField, typeOfFile } from "../kit/media.ts";
import type { ModelWorkflows } from "./library.ts";
import { stripMetadata } from "./metadata.ts";
import { fetchOutput, outputFiles } from "./outputs.ts";
import { prepare, readValues, type Prepared } from "./params.ts";
import { runGraph } from "./run.ts";
import { uploadImage } from "./upload.ts";
import type { Workflow } from "./workflow.ts";

/** An image ComfyUI saves is at most this large; a PNG of 8192² is about 200 MB raw. */
const MAX_IMAGE_BYTES = 256 * 1024 * 1024;
/** Text fields of an edit form that reach the workflow. */
const EDIT_FIELDS = [
  "prompt",
  "negative_prompt",
  "n",
  "size",
  "seed",
  "steps",
  "guidance_scale",
  "denoise",
];

function responseFormat(value: unknown): "b64_json" | "url" {
  if (value === undefined || value === null || value === "b64_json") return "b64_json";
  if (value === "url") return "url";
  throw badRequest(`"response_format" must be b64_json or url`);
}

function pick(wf: Workflow | undefined, models: ModelWorkflows, why: string): Workflow {
  if (!wf) throw badRequest(`model ${models.model} ${why}`);
  return wf;
}

function needPrompt(prompt: unknown): void {
  if (typeof prompt !== "string" || prompt.trim() === "") throw badRequest(`"prompt" is required`);
}

async function render(
  call: EngineCall,
  wf: Workflow,
  run: Prepared,
  format: "b64_json" | "url",
): Promise<EngineReply> {
  const entry = await runGraph(call, wf.source, run);
  const files = outputFiles(entry, wf.outputs).filter((f) =>
    typeOfFile(f.filename)?.startsWith("image/"),
  );
  if (files.length === 0)
    throw new UpstreamError("upstream_bad_answer", `ComfyUI ran ${wf.source} but saved no image`);
  const data: Record<string, string>[] = [];
  for (const file of files) {
    const reply = await fetchOutput(call, file);
    const bytes = await readCapped(reply.body, MAX_IMAGE_BYTES);
    if (!bytes) throw new Error(`${file.filename} is larger than ${MAX_IMAGE_BYTES} bytes`);
    const b64 = stripMetadata(bytes).toString("base64");
    const type = typeOfFile(file.filename) ?? "image/png";
    data.push(format === "url" ? { url: `data:${type};base64,${b64}` } : { b64_json: b64 });
  }
  call.progress?.(1, "done");
  return jsonReply(200, { created: Math.floor(Date.now() / 1000), data });
}

/** `POST /v1/images/generations`: the model's text workflow. */
export function generateImages(call: EngineCall, models: ModelWorkflows): Promise<EngineReply> {
  const json = call.json ?? {};
  const wf = pick(models.text, models, "only edits images: use /v1/images/edits");
  const format = responseFormat(json.response_format);
  needPrompt(json.prompt);
  const run = prepare(wf, readValues(json));
  return longReply(call, "application/json", () => render(call, wf, run, format));
}

/** `POST /v1/images/edits`: `image` (or one `image[]`), optional `mask`, as multipart. */
export async function editImages(call: EngineCall, models: ModelWorkflows): Promise<EngineReply> {
  const parts = await readForm(call);
  const image = await fileField(parts, "image", "image[]");
  const mask = await fileField(parts, "mask");
  const fields: Record<string, string> = {};
  for (const name of EDIT_FIELDS) {
    const value = textField(parts, name);
    if (value !== undefined) fields[name] = value;
  }
  const format = responseFormat(textField(parts, "response_format"));
  if (!image) throw badRequest(`"image" is required`);
  needPrompt(fields.prompt);
  const wf = mask
    ? pick(models.mask, models, "does not take a mask")
    : pick(models.image, models, models.mask ? "needs a mask" : "does not edit images");
  const values = readValues(fields);
  values.image = await uploadImage(call, image, "image");
  if (mask) values.mask = await uploadImage(call, mask, "mask");
  const run = prepare(wf, values);
  return longReply(call, "application/json", () => render(call, wf, run, format));
}
