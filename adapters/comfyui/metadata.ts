/**
 * Taking ComfyUI's metadata out of the images it saved before they leave the rig. SaveImage
 * writes the whole graph (checkpoints, LoRAs, paths, the workflow's own prompts) into PNG text
 * chunks (`prompt`, `workflow`); SaveAnimatedWEBP writes it into the WebP's EXIF. Every PNG
 * text chunk (`tEXt`, `iTXt`, `zTXt`) and every WebP `EXIF`/`XMP ` chunk is dropped; nothing
 * else is recomputed (a PNG chunk's CRC covers that chunk alone).
 */
import { UpstreamError } from "../../src/errors.ts";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PNG_TEXT = new Set(["tEXt", "iTXt", "zTXt"]);
const WEBP_META = new Set(["EXIF", "XMP "]);
/** VP8X flag bits that announce EXIF and XMP chunks. */
const VP8X_EXIF = 0x08;
const VP8X_XMP = 0x04;

/** A PNG without its text chunks; undefined when `bytes` is not a well-formed PNG. */
function stripPng(bytes: Buffer): Buffer | undefined {
  const kept: Buffer[] = [PNG_SIGNATURE];
  let at = PNG_SIGNATURE.length;
  while (at < bytes.length) {
    if (at + 12 > bytes.length) return undefined;
    const length = bytes.readUInt32BE(at);
    const end = at + 12 + length;
    if (end > bytes.length) return undefined;
    const type = bytes.toString("latin1", at + 4, at + 8);
    if (!PNG_TEXT.has(type)) kept.push(bytes.subarray(at, end));
    at = end;
    if (type === "IEND") break;
  }
  return Buffer.concat(kept);
}

/** A WebP without its EXIF and XMP chunks; undefined when `bytes` is not a well-formed WebP. */
function stripWebp(bytes: Buffer): Buffer | undefined {
  const kept: Buffer[] = [];
  let at = 12;
  while (at < bytes.length) {
    if (at + 8 > bytes.length) return undefined;
    const size = bytes.readUInt32LE(at + 4);
    const end = at + 8 + size + (size % 2);
    if (end > bytes.length && at + 8 + size !== bytes.length) return undefined;
    const type = bytes.toString("latin1", at, at + 4);
    const chunk = Buffer.from(bytes.subarray(at, Math.min(end, bytes.length)));
    if (type === "VP8X" && chunk.length > 8)
      chunk.writeUInt8(chunk.readUInt8(8) & ~(VP8X_EXIF | VP8X_XMP), 8);
    if (!WEBP_META.has(type)) kept.push(chunk);
    at = end;
  }
  const body = Buffer.concat(kept);
  const head = Buffer.from(bytes.subarray(0, 12));
  head.writeUInt32LE(body.length + 4, 4);
  return Buffer.concat([head, body]);
}

/**
 * `bytes` without ComfyUI's embedded metadata (PNG text chunks, WebP EXIF/XMP), or `bytes` as
 * they are for any other format. A file that claims to be a PNG or WebP but is cut short is
 * refused rather than sent with its metadata.
 * @example stripMetadata(await readFile("ComfyUI_00001_.png"))
 */
export function stripMetadata(bytes: Buffer): Buffer {
  const png = bytes.subarray(0, 8).equals(PNG_SIGNATURE);
  const webp =
    bytes.length >= 12 &&
    bytes.toString("latin1", 0, 4) === "RIFF" &&
    bytes.toString("latin1", 8, 12) === "WEBP";
  if (!png && !webp) return bytes;
  const out = png ? stripPng(bytes) : stripWebp(bytes);
  if (!out)
    throw new UpstreamError(
      "upstream_bad_answer",
      `ComfyUI saved a malformed ${png ? "PNG" : "WebP"}: not sent`,
    );
  return out;
}
