/**
 * Rewriting a multipart/form-data upload on its way to an engine: text fields are read (they
 * are small) and replaced by what the adapter's rules say, named file parts are passed through
 * chunk by chunk, everything else is dropped. The output is a new form with its own boundary,
 * so the engine sees only what the adapter wrote. Memory stays O(chunk) however large the file.
 */
import { randomBytes } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { ClubError } from "../../src/errors.ts";

/** What to do with each part of a form. */
export interface FormRules {
  /** Field names whose parts are files, passed through as they stream in. */
  files: readonly string[];
  /** The fields to write for one text field (`[]` drops it). May throw a {@link FormError}. */
  field(name: string, value: string): readonly (readonly [string, string])[];
  /** Fields to append once the whole form was read. */
  end?(): readonly (readonly [string, string])[];
}

/** A form the rewriter refuses: malformed, or a text field past the size limit. */
export class FormError extends ClubError {}

// RFC 2046 bchars: 1-70 characters, the last one not a space.
const BOUNDARY_RE = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;
const PARAM_RE = /;\s*([\w*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g;
const MIME_RE = /^[\w.+-]+\/[\w.+-]+$/;
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_PREAMBLE_BYTES = 64 * 1024;
const CRLF = "\r\n";

const malformed = (why: string): FormError => new FormError("form_malformed", why);

/** `key=value` parameters of a header value after its first `;`, keys lower-cased. */
function params(value: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of value.matchAll(PARAM_RE)) {
    const key = (m[1] ?? "").toLowerCase();
    if (!out.has(key)) out.set(key, m[2]?.replace(/\\(.)/g, "$1") ?? (m[3] ?? "").trim());
  }
  return out;
}

/**
 * The boundary of a `multipart/form-data` content-type, or undefined when it is another type
 * or the boundary is missing or invalid.
 * @example formBoundary('multipart/form-data; boundary="abc"') // "abc"
 */
export function formBoundary(contentType: string | undefined): string | undefined {
  if (!/^\s*multipart\/form-data\s*;/i.test(contentType ?? "")) return undefined;
  const boundary = params(contentType ?? "").get("boundary");
  return boundary !== undefined && BOUNDARY_RE.test(boundary) ? boundary : undefined;
}

/** A parameter value as browsers write it: `"` `\r` `\n` percent-escaped (WHATWG). */
const quote = (s: string): string =>
  `"${s.replace(/"/g, "%22").replace(/\r/g, "%0D").replace(/\n/g, "%0A")}"`;
const unescape = (s: string): string =>
  s.replace(/%22/g, '"').replace(/%0D/g, "\r").replace(/%0A/g, "\n");

interface Part {
  name: string;
  kind: "file" | "field" | "skip";
  chunks: Buffer[];
  bytes: number;
}

type State = "preamble" | "after-delimiter" | "headers" | "body" | "done";

/**
 * A Transform from the consumer's form to the engine's form. Errors with a {@link FormError}
 * (also kept in `failure`) when the input is malformed, a text field is longer than
 * `maxFieldBytes`, or the rules refuse a value; send the output as `contentType`.
 * @example
 * const form = new FormRewriter(boundary, { files: ["file"], field: (n, v) => [[n, v]] });
 * req.pipe(form); // then send `form` with content-type `form.contentType`
 */
export class FormRewriter extends Transform {
  /** The content-type of the output, with its new boundary. */
  readonly contentType: string;
  /** Why the form was refused, once it was. */
  failure: FormError | undefined;
  readonly #delimiter: Buffer;
  readonly #out: string;
  readonly #rules: FormRules;
  readonly #maxFieldBytes: number;
  #buf: Buffer = Buffer.from(CRLF); // so the first boundary looks like every other delimiter
  #state: State = "preamble";
  #skipped = 0;
  #part: Part | undefined;

  constructor(boundary: string, rules: FormRules, maxFieldBytes = 64 * 1024) {
    super();
    if (!BOUNDARY_RE.test(boundary))
      throw new RangeError(`FormRewriter: invalid boundary ${JSON.stringify(boundary)}`);
    this.#delimiter = Buffer.from(`${CRLF}--${boundary}`, "latin1");
    this.#out = `club-${randomBytes(12).toString("hex")}`;
    this.contentType = `multipart/form-data; boundary=${this.#out}`;
    this.#rules = rules;
    this.#maxFieldBytes = maxFieldBytes;
    // The failure is kept in `failure`; whoever consumes the output also hears it, and an
    // error nobody listens for must not take the daemon down.
    this.on("error", () => undefined);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#run(() => {
      if (this.#state === "done") return;
      this.#buf = Buffer.concat([this.#buf, chunk]);
      while (this.#step());
    }, done);
  }

  override _flush(done: TransformCallback): void {
    this.#run(() => {
      if (this.#state !== "done") throw malformed("the form ended before its closing boundary");
      for (const [name, value] of this.#rules.end?.() ?? []) this.#field(name, value);
      this.push(`--${this.#out}--${CRLF}`);
    }, done);
  }

  #run(work: () => void, done: TransformCallback): void {
    try {
      work();
      done();
    } catch (err) {
      const failure =
        err instanceof FormError
          ? err
          : new FormError("form_rejected", String(err), { cause: err });
      this.failure = failure;
      done(failure);
    }
  }

  /** Parses as far as the buffer allows; false when more input is needed. */
  #step(): boolean {
    const buf = this.#buf;
    if (this.#state === "after-delimiter") {
      if (buf.length < 2) return false;
      if (buf[0] === 0x2d && buf[1] === 0x2d) return this.#advance(buf.length, "done");
      const eol = buf.indexOf(CRLF);
      if (eol < 0 || buf.subarray(0, eol).toString("latin1").trim() !== "") {
        if (eol < 0 && buf.length < 256) return false;
        throw malformed("a boundary is not followed by a line break");
      }
      return this.#advance(eol + 2, "headers");
    }
    if (this.#state === "headers") {
      const end = buf.subarray(0, 2).toString("latin1") === CRLF ? 0 : buf.indexOf(CRLF + CRLF);
      if (end < 0) {
        if (buf.length > MAX_HEADER_BYTES) throw malformed("part headers exceed 16 KiB");
        return false;
      }
      this.#open(buf.subarray(0, end).toString("utf8"));
      return this.#advance(end + (end === 0 ? 2 : 4), "body");
    }
    // preamble or body: look for the next delimiter, keeping a tail that may start one.
    const at = buf.indexOf(this.#delimiter);
    const safe = at >= 0 ? at : Math.max(0, buf.length - this.#delimiter.length + 1);
    if (this.#state === "body") this.#data(buf.subarray(0, safe));
    else if ((this.#skipped += safe) > MAX_PREAMBLE_BYTES)
      throw malformed("no opening boundary in the first 64 KiB");
    if (at < 0) {
      this.#advance(safe, this.#state);
      return false;
    }
    if (this.#state === "body") this.#close();
    return this.#advance(at + this.#delimiter.length, "after-delimiter");
  }

  #advance(bytes: number, state: State): true {
    this.#buf = this.#buf.subarray(bytes);
    this.#state = state;
    return true;
  }

  #open(block: string): void {
    const headers = new Map<string, string>();
    for (const line of block.split(CRLF)) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1));
    }
    const disposition = params(headers.get("content-disposition") ?? "");
    const name = unescape(disposition.get("name") ?? "");
    const filename = disposition.get("filename");
    const isFile = this.#rules.files.includes(name);
    const kind = isFile ? "file" : filename === undefined && name !== "" ? "field" : "skip";
    this.#part = { name, kind, chunks: [], bytes: 0 };
    if (!isFile) return;
    const type = (headers.get("content-type") ?? "").trim();
    const safeName = unescape(filename ?? "").replace(/[\r\n"\\/]/g, "") || "audio";
    this.push(
      `--${this.#out}${CRLF}Content-Disposition: form-data; name=${quote(name)}; ` +
        `filename=${quote(safeName)}${CRLF}` +
        `Content-Type: ${MIME_RE.test(type) ? type : "application/octet-stream"}${CRLF}${CRLF}`,
    );
  }

  #data(data: Buffer): void {
    const part = this.#part;
    if (!part || data.length === 0) return;
    if (part.kind === "file") this.push(Buffer.from(data));
    if (part.kind !== "field") return;
    part.bytes += data.length;
    if (part.bytes > this.#maxFieldBytes)
      throw new FormError(
        "form_field_too_large",
        `form field "${part.name}" is longer than ${this.#maxFieldBytes} bytes`,
      );
    part.chunks.push(Buffer.from(data));
  }

  #close(): void {
    const part = this.#part;
    this.#part = undefined;
    if (part?.kind === "file") this.push(CRLF);
    if (part?.kind !== "field") return;
    const value = Buffer.concat(part.chunks).toString("utf8");
    for (const [name, v] of this.#rules.field(part.name, value)) this.#field(name, v);
  }

  #field(name: string, value: string): void {
    this.push(
      `--${this.#out}${CRLF}Content-Disposition: form-data; name=${quote(name)}${CRLF}${CRLF}` +
        `${value}${CRLF}`,
    );
  }
}
