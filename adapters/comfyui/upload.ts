/**
 * Putting a consumer's image into ComfyUI's input folder (`POST /upload/image`, multipart
 * `image`, `type`, `subfolder`, `overwrite`; answered `{name, subfolder, type}`), under a name
 * of ours: a request never chooses a file name on the rig.
 */
import { randomUUID } from "node:crypto";
import { readCapped } from "../../src/http/read-capped.ts";
import { badRequest } from "../../src/http/error.ts";
import { Readable } from "node:stream";
import { UpstreamError } from "../../src/errors.ts";
import type { EngineCall } from "../adapter.ts";
import { obj, str } from "../kit/fields.ts";
import { formData, sniff } from "../kit/media.ts";
import { forwardOpenAI } from "../kit/openai-style.ts";

const LABEL = { name: "ComfyUI", hint: "is ComfyUI running?" };
/** The subfolder of ComfyUI's input folder that holds what consumers send. */
const SUBFOLDER = "club";

/**
 * Uploads `bytes` (a PNG, JPEG or WebP image, else a 400 `HttpError` naming `field`) and
 * resolves with the value a `LoadImage` node takes for it (`club/<uuid>.png`).
 */
export async function uploadImage(call: EngineCall, bytes: Buffer, field: string): Promise<string> {
  const kind = sniff(bytes);
  if (!kind?.type.startsWith("image/"))
    throw badRequest(`"${field}" must be a PNG, JPEG or WebP image`);
  const { body, contentType } = formData(
    [
      ["type", "input"],
      ["subfolder", SUBFOLDER],
      ["overwrite", "true"],
    ],
    { name: "image", filename: `${randomUUID()}.${kind.ext}`, type: kind.type, bytes },
  );
  const { json: _json, stream: _stream, ...rest } = call;
  const reply = await forwardOpenAI(
    {
      ...rest,
      endpoint: { ...call.endpoint, method: "POST" },
      path: "/upload/image",
      headers: { "content-type": contentType, "content-length": String(body.length) },
      stream: Readable.from([body]),
    },
    LABEL,
  );
  const text = (await readCapped(reply.body, 64 * 1024))?.toString("utf8") ?? "";
  let answer: Record<string, unknown> = {};
  try {
    answer = obj(JSON.parse(text));
  } catch {
    // not JSON: reported below
  }
  const name = str(answer.name);
  if (reply.status !== 200 || !name)
    throw new UpstreamError(
      "upstream_bad_answer",
      `ComfyUI answered ${reply.status} to POST /upload/image: ${text.slice(0, 200) || "(empty)"}`,
    );
  const subfolder = str(answer.subfolder) ?? "";
  return subfolder ? `${subfolder}/${name}` : name;
}
