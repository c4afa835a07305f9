/**
 * Request checks that protect the rig rather than the engine: an engine that fetches image URLs
 * must never be steered at the rig's own network, and uploads have a size limit.
 */
import { isIP } from "node:net";
import { Transform, type Readable, type TransformCallback } from "node:stream";

/** True for addresses that belong to this machine or its private network. */
export function isPrivateAddress(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (
    h === "localhost" ||
    h.endsWith(".localhost") ||
    h.endsWith(".local") ||
    h.endsWith(".internal")
  )
    return true;
  const kind = isIP(h);
  if (kind === 4) {
    const [a = 0, b = 0] = h.split(".").map(Number);
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 100 && b >= 64 && b <= 127) ||
      a >= 224
    );
  }
  if (kind === 6) {
    if (h === "::" || h === "::1") return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h)?.[1];
    if (mapped) return isPrivateAddress(mapped);
    return /^(fc|fd|fe[89ab])/.test(h);
  }
  return false;
}

/**
 * The first image URL in a chat request that points at this machine or a private network, or
 * at a scheme other than http(s) and data:, as a reason to refuse it; undefined when all are fine.
 * (Names that resolve to private addresses are the engine's to refuse: resolving here would not
 * bind the engine's own lookup.)
 */
export function unsafeImageUrl(body: Record<string, unknown>): string | undefined {
  const messages = Array.isArray(body.messages) ? (body.messages as unknown[]) : [];
  for (const message of messages) {
    const content = (message as { content?: unknown } | null)?.content;
    if (!Array.isArray(content)) continue;
    for (const part of content as unknown[]) {
      const p = part as { type?: unknown; image_url?: unknown } | null;
      if (p?.type !== "image_url") continue;
      const raw =
        typeof p.image_url === "string"
          ? p.image_url
          : (p.image_url as { url?: unknown } | null)?.url;
      if (typeof raw !== "string") return "an image_url part has no url";
      if (raw.startsWith("data:")) continue;
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        return `image URL ${JSON.stringify(raw.slice(0, 80))} is not a URL`;
      }
      if (url.protocol !== "http:" && url.protocol !== "https:")
        return `image URLs must be http(s) or data: URIs, not ${url.protocol}`;
      if (isPrivateAddress(url.hostname))
        return `image URL host ${url.hostname} is a local or private address; send the image as a data: URI`;
    }
  }
  return undefined;
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
