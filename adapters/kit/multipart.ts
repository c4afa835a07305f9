/**
 * Rewriting a multipart/form-data upload on its way to an engine: text fields are read (they
 * are small) and replaced by what the adapter's rules say, named file parts are passed through
 * chunk by chunk, everything else is dropped. The output is a new form with its own boundary,
 * so the engine sees only what the adapter wrote. Memory stays O(chunk) however large the file.
 * Parsed by the relay's parser (`src/http/multipart-parser.ts`).
 */
import { randomBytes } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { ClubError } from "../../src/errors.ts";
import {
  BOUNDARY_RE,
  MultipartError,
  MultipartParser,
  partHeaders,
} from "../../src/http/multipart-parser.ts";

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

const MIME_RE = /^[\w.+-]+\/[\w.+-]+$/;
const CRLF = "\r\n";

const malformed = (why: string): FormError => new FormError("form_malformed", why);

/** A parameter value as browsers write it: `"` `\r` `\n` percent-escaped (WHATWG). */
const quote = (s: string): string =>
  `"${s.replace(/"/g, "%22").replace(/\r/g, "%0D").replace(/\n/g, "%0A")}"`;

interface Part {
  name: string;
  kind: "file" | "field" | "skip";
  chunks: Buffer[];
  bytes: number;
}

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
  readonly #parser: MultipartParser;
  readonly #out: string;
  readonly #rules: FormRules;
  readonly #maxFieldBytes: number;
  #closed = false;
  #part: Part | undefined;

  constructor(boundary: string, rules: FormRules, maxFieldBytes = 64 * 1024) {
    super();
    if (!BOUNDARY_RE.test(boundary))
      throw new RangeError(`FormRewriter: invalid boundary ${JSON.stringify(boundary)}`);
    this.#parser = new MultipartParser(boundary, {
      start: (_line, headers) => this.#open(headers),
      data: (data) => this.#data(data),
      end: () => this.#close(),
      close: () => (this.#closed = true),
    });
    this.#out = `club-${randomBytes(12).toString("hex")}`;
    this.contentType = `multipart/form-data; boundary=${this.#out}`;
    this.#rules = rules;
    this.#maxFieldBytes = maxFieldBytes;
    // The failure is kept in `failure`; whoever consumes the output also hears it, and an
    // error nobody listens for must not take the daemon down.
    this.on("error", () => undefined);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#run(() => this.#parser.write(chunk), done);
  }

  override _flush(done: TransformCallback): void {
    this.#run(() => {
      if (!this.#closed) throw malformed("the form ended before its closing boundary");
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
          : err instanceof MultipartError
            ? malformed(err.message)
            : new FormError("form_rejected", String(err), { cause: err });
      this.failure = failure;
      done(failure);
    }
  }

  #open(block: Buffer): void {
    const headers = partHeaders(block);
    const name = headers.names[0] ?? "";
    const { filename } = headers;
    const isFile = this.#rules.files.includes(name);
    const kind = isFile ? "file" : filename === undefined && name !== "" ? "field" : "skip";
    this.#part = { name, kind, chunks: [], bytes: 0 };
    if (!isFile) return;
    const type = headers.contentType ?? "";
    const safeName = (filename ?? "").replace(/[\r\n"\\/]/g, "") || "audio";
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
