/**
 * Reading what consumers send to the media endpoints: multipart forms with images (read whole,
 * up to a limit: an engine wants the file before it starts), base64 or `data:` URL fields, and
 * the types of the files engines answer with.
 */
import { randomUUID } from "node:crypto";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { HttpError, badRequest } from "../../src/http/error.ts";
import type { EngineCall } from "../adapter.ts";
import { boundaryOf } from "../../src/http/multipart-parser.ts";

/** Uploads a media endpoint takes in one form: the club allows 25 MB per image. */
export const MAX_FORM_BYTES = 64 * 1024 * 1024;

class Limit extends Transform {
  #seen = 0;
  constructor(readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.limit) done(badRequest(`the form is larger than ${this.limit} bytes`));
    else done(null, chunk);
  }
}

/** One part of a form: its text, or its file. */
export type FormValue = NonNullable<ReturnType<FormData["get"]>>;

/**
 * The parts of `call`'s multipart body, read whole (at most `limit` bytes). Rejects with
 * a 400 `HttpError` for another content-type, a malformed form, or one too large.
 */
export async function readForm(
  call: EngineCall,
  limit = MAX_FORM_BYTES,
): Promise<Map<string, FormValue[]>> {
  const type = call.headers["content-type"];
  if (!boundaryOf(type) || !call.stream) {
    call.stream?.resume();
    throw badRequest(`${call.endpoint.path} takes multipart/form-data`);
  }
  const limited = call.stream.pipe(new Limit(limit));
  call.stream.on("error", (err) => limited.destroy(err));
  let form;
  try {
    // Node's own Response (loaded on first use), not undici's: importing undici's entry point
    // costs the daemon's idle memory (see openai-style.ts).
    const response = new Response(Readable.toWeb(limited) as ReadableStream, {
      headers: { "content-type": type ?? "" },
    });
    // Deprecated for servers because it reads the body whole; here that is the point (the
    // engine needs the file before it starts), and `limit` bounds it.
    // eslint-disable-next-line @typescript-eslint/no-deprecated
    form = await response.formData();
  } catch (err) {
    if (err instanceof HttpError) throw err;
    const cause = (err as Error).cause;
    if (cause instanceof HttpError) throw cause;
    throw badRequest(`the form could not be read: ${(err as Error).message}`);
  }
  const parts = new Map<string, FormValue[]>();
  for (const [name, value] of form) parts.set(name, [...(parts.get(name) ?? []), value]);
  return parts;
}

/** The only text value of `name`, or undefined; refuses a file or a repeated field. */
export function textField(parts: Map<string, FormValue[]>, name: string): string | undefined {
  const values = parts.get(name) ?? [];
  if (values.length > 1) throw badRequest(`form field "${name}" is sent more than once`);
  const [value] = values;
  if (value !== undefined && typeof value !== "string")
    throw badRequest(`form field "${name}" must be text, not a file`);
  return value;
}

/** The only file of `names` (aliases, such as `image` and `image[]`), or undefined. */
export async function fileField(
  parts: Map<string, FormValue[]>,
  ...names: string[]
): Promise<Buffer | undefined> {
  const values = names.flatMap((n) => parts.get(n) ?? []);
  if (values.length > 1)
    throw badRequest(`send one file as "${names[0] ?? ""}", not ${values.length}`);
  const [value] = values;
  if (value === undefined) return undefined;
  if (typeof value === "string") throw badRequest(`form field "${names[0] ?? ""}" must be a file`);
  return Buffer.from(await value.arrayBuffer());
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * The bytes of a JSON field holding a file: a `data:` URL or bare base64. Rejects anything
 * else, a URL to fetch in particular: the rig fetches nothing a request names.
 * @example decodeInline("data:image/png;base64,iVBORw0KGgo=", "image")
 */
export function decodeInline(value: unknown, field: string, limit = MAX_FORM_BYTES): Buffer {
  if (typeof value !== "string" || value === "")
    throw badRequest(`"${field}" must be a data: URL or base64 text`);
  const comma = value.indexOf(",");
  const isData = value.startsWith("data:");
  if (isData && (comma < 0 || !value.slice(0, comma).endsWith(";base64")))
    throw badRequest(`"${field}": only base64 data: URLs are accepted`);
  const text = (isData ? value.slice(comma + 1) : value).replace(/\s+/g, "");
  if (!BASE64.test(text)) throw badRequest(`"${field}" is neither a data: URL nor base64`);
  if ((text.length * 3) / 4 > limit) throw badRequest(`"${field}" is larger than ${limit} bytes`);
  return Buffer.from(text, text.includes("-") || text.includes("_") ? "base64url" : "base64");
}

const MAGIC: readonly [string, string, (b: Buffer) => boolean][] = [
  ["png", "image/png", (b) => b.readUInt32BE(0) === 0x89504e47],
  ["jpg", "image/jpeg", (b) => b[0] === 0xff && b[1] === 0xd8],
  ["webp", "image/webp", (b) => b.toString("latin1", 8, 12) === "WEBP"],
  ["wav", "audio/wav", (b) => b.toString("latin1", 8, 12) === "WAVE"],
  [
    "mp3",
    "audio/mpeg",
    (b) => b.toString("latin1", 0, 3) === "ID3" || (b[0] === 0xff && ((b[1] ?? 0) & 0xe0) === 0xe0),
  ],
];

/** The file extension and type of an image or audio clip by its first bytes, or undefined. */
export function sniff(bytes: Buffer): { ext: string; type: string } | undefined {
  if (bytes.length < 12) return undefined;
  const found = MAGIC.find(([, , test]) => test(bytes));
  return found ? { ext: found[0], type: found[1] } : undefined;
}

const TYPES: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  webp: "image/webp",
  gif: "image/gif",
  mp4: "video/mp4",
  webm: "video/webm",
  mov: "video/quicktime",
  mkv: "video/x-matroska",
  glb: "model/gltf-binary",
};

/** The content-type of a file an engine wrote, by its extension; undefined when unknown. */
export function typeOfFile(filename: string): string | undefined {
  const ext = /\.([A-Za-z0-9]+)$/.exec(filename)?.[1]?.toLowerCase();
  return ext === undefined ? undefined : TYPES[ext];
}

/** A multipart/form-data body of text fields and one file. */
export function formData(
  fields: readonly (readonly [string, string])[],
  file: { name: string; filename: string; type: string; bytes: Buffer },
): { body: Buffer; contentType: string } {
  const boundary = `club-${randomUUID()}`;
  const parts: Buffer[] = [];
  for (const [name, value] of fields)
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
      ),
    );
  parts.push(
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${file.name}"; ` +
        `filename="${file.filename}"\r\nContent-Type: ${file.type}\r\n\r\n`,
    ),
    file.bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  );
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}
