/**
 * `GET`/`HEAD /v1/media/{token}`: a stored result's bytes, with its type, length and
 * `Content-Disposition`, and single byte ranges (`Range: bytes=a-b`, `a-`, `-n`) for players
 * that seek. PRIVATE results need the owner's key; others only the URL. A SECRET result's one
 * fetch takes it: its bytes are deleted once sent (or the fetch fails).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream";
import type { MediaLibrary } from "./library.ts";
import type { MediaItem } from "./types.ts";
import { HttpError } from "../../http/error.ts";

/** Types served as they are; anything else is served as bytes to save (never rendered here). */
const INLINE = /^(image\/(png|jpeg|webp|gif)|audio\/[\w.+-]+|video\/[\w.+-]+|model\/[\w.+-]+)$/;

const EXTENSIONS: Record<string, string> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
  "image/gif": "gif",
  "audio/wav": "wav",
  "audio/x-wav": "wav",
  "audio/mpeg": "mp3",
  "audio/flac": "flac",
  "audio/ogg": "ogg",
  "video/mp4": "mp4",
  "video/webm": "webm",
  "model/gltf-binary": "glb",
};

/** A `Range` header as one inclusive span of `size` bytes; "bad" when it cannot be met. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | "bad" | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges, or another unit: served whole, as RFC 9110 allows.
  if (!m) return undefined;
  const [, a = "", b = ""] = m;
  if (a === "" && b === "") return "bad";
  if (a === "") {
    const n = Number(b);
    if (n === 0 || size === 0) return "bad";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || end < start) return "bad";
  return { start, end };
}

/** The headers describing an item's bytes. */
function describe(item: MediaItem): Record<string, string> {
  const inline = INLINE.test(item.contentType);
  const ext = EXTENSIONS[item.contentType] ?? "bin";
  return {
    "content-type": inline ? item.contentType : "application/octet-stream",
    "content-disposition": `${inline ? "inline" : "attachment"}; filename="${item.id}.${ext}"`,
    "accept-ranges": "bytes",
    "x-content-type-options": "nosniff",
    "cache-control":
      item.visibility === "PRIVATE" || item.visibility === "SECRET"
        ? "private, no-store"
        : "public, max-age=3600",
  };
}

/**
 * Answers a fetch of `/v1/media/{token}`; `member` is whose key came with it, if any.
 * Throws an `HttpError` (404) for a token that names nothing this caller may fetch.
 */
export async function serveMedia(
  library: MediaLibrary,
  req: IncomingMessage,
  res: ServerResponse,
  token: string,
  member: string | undefined,
): Promise<void> {
  const found = await library.find(token);
  // Not there, or PRIVATE and not the owner's: the same answer, so a URL says nothing.
  if (!found || (found.item.visibility === "PRIVATE" && found.item.member !== member))
    throw new HttpError(404, "not_found_error", "no such media (deleted, expired, or not yours)");
  const { item } = found;
  const headers = describe(item);
  const range = parseRange(req.headers.range, item.bytes);
  if (range === "bad") {
    res.writeHead(416, { "content-range": `bytes */${item.bytes}`, "content-length": "0" });
    res.end();
    return;
  }
  if (req.method === "HEAD") {
    res.writeHead(range ? 206 : 200, {
      ...headers,
      "content-length": String(range ? range.end - range.start + 1 : item.bytes),
      ...(range ? { "content-range": `bytes ${range.start}-${range.end}/${item.bytes}` } : {}),
    });
    res.end();
    return;
  }
  // The one fetch of a SECRET result: taken before reading, so a second fetch finds nothing.
  if (found.secret && !library.takeSecret(token))
    throw new HttpError(404, "not_found_error", "no such media (deleted, expired, or not yours)");
  const stream = await library.read(item, range);
  res.writeHead(range ? 206 : 200, {
    ...headers,
    "content-length": String(range ? range.end - range.start + 1 : item.bytes),
    ...(range ? { "content-range": `bytes ${range.start}-${range.end}/${item.bytes}` } : {}),
  });
  await new Promise<void>((resolve) =>
    pipeline(stream, res, () => {
      resolve();
    }),
  );
  if (found.secret) await library.deleteFile(item.id);
}
