/**
 * Request checks that protect the rig rather than the engine: an engine that fetches a URL from a
 * request (an image, a clip, a mask) must never be steered at the rig's own network, and uploads
 * have a size limit.
 */
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { unsafeFetchUrl, type UrlGuardOptions } from "./url-guard.ts";

export { isPrivateAddress } from "./address.ts";

/**
 * Top-level JSON fields that engines (OpenAI-style image, video and audio servers, LocalAI,
 * vLLM-Omni, ComfyUI front ends) read as a file to fetch when they hold a URL.
 */
export const URL_FIELDS = [
  "image",
  "images",
  "image_url",
  "input_image",
  "init_image",
  "mask",
  "reference_image",
  "reference_images",
  "input_reference",
  "url",
  "video",
  "video_url",
  "audio",
  "audio_url",
  "audio_prompt",
  "reference_audio",
  "speaker_wav",
] as const;

/** Chat content parts whose value names media to fetch; a part of one of these needs a URL. */
const MEDIA_PARTS = ["image_url", "video_url", "audio_url"] as const;

/** Most distinct URLs one request may ask to be fetched (each may cost a DNS lookup). */
export const MAX_FETCHED_URLS = 32;

/**
 * A string that reads as a URL (`data:`, or a scheme followed by a slash), as opposed to base64
 * or text such as "Note: …". Leading space counts: some parsers strip it.
 */
const hasScheme = (v: string): boolean => /^\s*(data:|[a-z][a-z0-9+.-]*:[/\\])/i.test(v);

/** Content parts that hold only text. */
const TEXT_PARTS = new Set(["text", "refusal"]);

/** Every string under `value` (to `depth` levels of objects and arrays) that names a URL. */
function urlsIn(value: unknown, where: string, out: Map<string, string>, depth = 3): void {
  if (typeof value === "string") {
    if (hasScheme(value) && !out.has(value)) out.set(value, where);
  } else if (depth > 0 && Array.isArray(value)) {
    for (const v of value as unknown[]) urlsIn(v, where, out, depth - 1);
  } else if (depth > 0 && value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) urlsIn(v, `${where}.${k}`, out, depth - 1);
  }
}

/**
 * The URLs an engine could fetch for this JSON body, each with the field it came from: chat
 * content parts other than text (`image_url`, `video_url`, `audio_url`, `input_audio`, …) and
 * the top-level `URL_FIELDS`. A media part without a URL is a reason to refuse, returned as such.
 */
export function fetchedUrls(body: Record<string, unknown>): Map<string, string> | string {
  const out = new Map<string, string>();
  const messages = Array.isArray(body.messages) ? (body.messages as unknown[]) : [];
  for (const message of messages) {
    const content = (message as { content?: unknown } | null)?.content;
    if (!Array.isArray(content)) continue;
    for (const part of content as unknown[]) {
      if (part === null || typeof part !== "object") continue;
      const p = part as Record<string, unknown>;
      if (typeof p.type === "string" && TEXT_PARTS.has(p.type)) continue;
      const media = MEDIA_PARTS.find((k) => k === p.type);
      if (media) {
        const value = p[media];
        const raw = typeof value === "string" ? value : (value as { url?: unknown } | null)?.url;
        if (typeof raw !== "string") return `a ${media} part has no url`;
        if (!out.has(raw)) out.set(raw, media);
      }
      for (const [k, v] of Object.entries(p)) if (k !== "type") urlsIn(v, k, out);
    }
  }
  for (const field of URL_FIELDS) urlsIn(body[field], field, out);
  return out;
}

/**
 * The first URL in a JSON request body that an engine must not fetch, as a reason to refuse
 * the request; undefined when every one is safe (or there are none). See `unsafeFetchUrl`.
 */
export async function unsafeRequestUrl(
  body: Record<string, unknown>,
  options: UrlGuardOptions = {},
): Promise<string | undefined> {
  const urls = fetchedUrls(body);
  if (typeof urls === "string") return urls;
  if (urls.size === 0) return undefined;
  if (urls.size > MAX_FETCHED_URLS)
    return `the request names ${urls.size} URLs to fetch; at most ${MAX_FETCHED_URLS} are accepted`;
  const reasons = await Promise.all(
    [...urls].map(async ([url, field]) => {
      const why = await unsafeFetchUrl(url, options);
      return why === undefined ? undefined : `${field}: ${why}`;
    }),
  );
  return reasons.find((r) => r !== undefined);
}

/** Passes a body through, failing it once more than `limit` bytes went by. */
export class SizeLimit extends Transform {
  seen = 0;
  exceeded = false;
  constructor(readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      this.exceeded = true;
      done(new Error(`request body is larger than ${this.limit} bytes`));
    } else done(null, chunk);
  }
}

/** `source` piped through a SizeLimit; the source is destroyed if the limit trips. */
export function limitBody(source: Readable, limit: number): SizeLimit {
  const limited = new SizeLimit(limit);
  source.on("error", (err) => limited.destroy(err));
  limited.on("error", () => source.resume());
  return source.pipe(limited);
}
