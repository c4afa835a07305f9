/**
 * A streaming multipart/form-data filter for the relay: it drops named form fields, captures a
 * few small ones (such as `model`) so the relay can pick a route, and passes every other byte
 * through unchanged, without ever holding a whole upload in memory.
 *
 * Output is held back until every captured field has been seen (the route is chosen before a
 * byte goes upstream); after that only a lookbehind of `"\r\n--" + boundary` minus one byte is
 * kept, so memory is O(chunk size) however large the file part.
 */
import { Transform, type TransformCallback } from "node:stream";
import { HttpError } from "./error.ts";

/** Options for {@link MultipartFilter}. */
export interface MultipartFilterOptions {
  /** The boundary from the request's content-type; see {@link boundaryOf}. */
  boundary: string;
  /** Form fields removed from the output entirely, e.g. `["visibility", "collection"]`. */
  dropFields: readonly string[];
  /** Small text fields whose values {@link MultipartFilter.captured} resolves with, e.g. `["model"]`. */
  captureFields: readonly string[];
  /** Largest value of one captured field, in bytes (default 4096). */
  maxCaptureBytes?: number;
  /** Most output held back while waiting for captured fields, in bytes (default 32 MiB). */
  maxHeldBytes?: number;
}

/** Stable codes of {@link MultipartError}; `multipart_aborted` means destroyed before the end. */
export type MultipartErrorCode =
  "multipart_malformed" | "multipart_too_large" | "multipart_field_too_large" | "multipart_aborted";

/**
 * A multipart body the filter cannot pass on: malformed (400), or too large or cut off (413),
 * answered `invalid_request_error`.
 */
export class MultipartError extends HttpError {
  declare readonly code: MultipartErrorCode;
  constructor(code: MultipartErrorCode, message: string, options?: { cause?: unknown }) {
    super(code === "multipart_malformed" ? 400 : 413, "invalid_request_error", message, {
      ...options,
      code,
    });
  }
}

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;
const CRLF = Buffer.from("\r\n");
const EMPTY = Buffer.alloc(0);
const DASHES = Buffer.from("--");
const HEADER_END = Buffer.from("\r\n\r\n");
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_PREAMBLE_BYTES = 64 * 1024;
const MAX_PADDING_BYTES = 256;
// RFC 2046 bchars: 1-70 characters, the last one not a space.
const BOUNDARY_RE = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

const malformed = (message: string) => new MultipartError("multipart_malformed", message);

/**
 * The boundary of a `multipart/form-data` content-type (quoted or not), or `undefined` when the
 * type is something else or the boundary is missing, repeated or not valid per RFC 2046.
 *
 * @example
 * boundaryOf('multipart/form-data; boundary="abc"'); // "abc"
 */
export function boundaryOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const semi = contentType.indexOf(";");
  if (semi < 0 || contentType.slice(0, semi).trim().toLowerCase() !== "multipart/form-data") {
    return undefined;
  }
  let params: [string, string][];
  try {
    params = parseParams(contentType.slice(semi + 1));
  } catch {
    return undefined;
  }
  const found = params.filter(([key]) => key === "boundary");
  const boundary = found.length === 1 ? found[0]?.[1] : undefined;
  return boundary !== undefined && BOUNDARY_RE.test(boundary) ? boundary : undefined;
}

/** `; key=value; key="quoted \" value"` into lower-cased keys and unescaped values. */
function parseParams(text: string): [string, string][] {
  const out: [string, string][] = [];
  let i = 0;
  const isSpace = (c: string | undefined) => c === " " || c === "\t";
  while (i < text.length) {
    while (text[i] === ";" || isSpace(text[i])) i++;
    if (i >= text.length) break;
    let j = i;
    while (j < text.length && text[j] !== "=" && text[j] !== ";") j++;
    const key = text.slice(i, j).trim().toLowerCase();
    i = j + 1;
    if (text[j] !== "=") continue; // a parameter without a value: nothing to read
    while (isSpace(text[i])) i++;
    let value = "";
    if (text[i] === '"') {
      for (i++; ; i++) {
        const c = text[i];
        if (c === undefined) throw malformed(`unterminated quoted value for "${key}"`);
        if (c === '"') break;
        if (c === "\\" && i + 1 < text.length) i++;
        value += text[i] ?? "";
      }
      for (i++; isSpace(text[i]); i++);
      if (i < text.length && text[i] !== ";") throw malformed(`junk after quoted "${key}"`);
    } else {
      const end = text.indexOf(";", i);
      value = text.slice(i, end < 0 ? text.length : end).trim();
      i = end < 0 ? text.length : end;
    }
    out.push([key, value]);
  }
  return out;
}

/**
 * Every name a part's header block claims: `name` (with the WHATWG `%22`/`%0D`/`%0A` escapes
 * that browsers and undici write undone) and, if present, RFC 5987 `name*`; a backend may
 * honour either, so a part is dropped when any of them is dropped.
 */
function partNames(block: Buffer): string[] {
  let disposition: string | undefined;
  const lines = block
    .toString("utf8")
    .replace(/\r\n[ \t]+/g, " ")
    .split("\r\n");
  for (const line of lines) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) throw malformed(`part header line without a colon: ${JSON.stringify(line)}`);
    if (line.slice(0, colon).trim().toLowerCase() !== "content-disposition") continue;
    if (disposition !== undefined) throw malformed("part has two Content-Disposition headers");
    disposition = line.slice(colon + 1);
  }
  if (disposition === undefined) return [];
  const semi = disposition.indexOf(";");
  const params = semi < 0 ? [] : parseParams(disposition.slice(semi + 1));
  const names: string[] = [];
  const seen = new Set<string>();
  for (const [key, value] of params) {
    if (key !== "name" && key !== "name*") continue;
    if (seen.has(key)) throw malformed(`part has a repeated ${key} parameter`);
    seen.add(key);
    if (key === "name") {
      names.push(value.replace(/%0A/g, "\n").replace(/%0D/g, "\r").replace(/%22/g, '"'));
    } else {
      const match = /^[^']*'[^']*'(.*)$/.exec(value);
      try {
        names.push(decodeURIComponent(match?.[1] ?? value));
      } catch {
        throw malformed(`part has an undecodable name*: ${JSON.stringify(value)}`);
      }
    }
  }
  return names;
}

interface Part {
  keep: boolean;
  capture: string | undefined;
  chunks: Buffer[];
  bytes: number;
}

type State = "preamble" | "boundary" | "headers" | "body" | "epilogue" | "done";

/**
 * A Transform from a multipart/form-data body to the same body (same boundary) without the
 * `dropFields` parts, byte for byte otherwise; the preamble and any epilogue after the closing
 * `--boundary--\r\n` are dropped. The stream errors with a {@link MultipartError}, and
 * `captured` rejects with it, on malformed input or past a size limit; the filter listens for
 * its own `error`, so an error while the caller awaits `captured` cannot crash the process.
 * The output's length differs from the input's: send it without the original content-length.
 *
 * @example
 * const filter = new MultipartFilter({ boundary, dropFields: ["visibility"], captureFields: ["model"] });
 * req.pipe(filter);
 * const { model } = await filter.captured; // pick a route, then pipe `filter` upstream
 */
export class MultipartFilter extends Transform {
  /** Resolves once every capture field was read in full, or at the end with those found. */
  readonly captured: Promise<Record<string, string>>;
  readonly #dash: Buffer;
  readonly #delimiter: Buffer;
  readonly #drop: ReadonlySet<string>;
  readonly #capture: ReadonlySet<string>;
  readonly #maxCaptureBytes: number;
  readonly #maxHeldBytes: number;
  readonly #found = new Map<string, string>();
  #state: State = "preamble";
  #buf: Buffer = EMPTY;
  #atStart = true;
  #preambleBytes = 0;
  #delimiterLine: Buffer = EMPTY;
  #part: Part | undefined;
  #emittedAny = false;
  #holding: boolean;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #settled = false;
  #resolve: (fields: Record<string, string>) => void = () => undefined;
  #reject: (err: Error) => void = () => undefined;

  constructor(options: MultipartFilterOptions) {
    super();
    const { boundary, maxCaptureBytes = 4096, maxHeldBytes = 32 * 1024 * 1024 } = options;
    if (!BOUNDARY_RE.test(boundary)) {
      throw new RangeError(
        `MultipartFilter: options.boundary is not an RFC 2046 boundary: ${JSON.stringify(boundary)}`,
      );
    }
    for (const [name, value] of [
      ["maxCaptureBytes", maxCaptureBytes],
      ["maxHeldBytes", maxHeldBytes],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new RangeError(
          `MultipartFilter: options.${name} must be a non-negative integer, got ${value}`,
        );
      }
    }
    this.#dash = Buffer.from(`--${boundary}`, "latin1");
    this.#delimiter = Buffer.from(`\r\n--${boundary}`, "latin1");
    this.#drop = new Set(options.dropFields);
    this.#capture = new Set(options.captureFields);
    this.#maxCaptureBytes = maxCaptureBytes;
    this.#maxHeldBytes = maxHeldBytes;
    this.captured = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Errors are reported twice, through `captured` and by destroying the stream; a caller
    // awaiting one of them must not crash on the other going unobserved.
    this.captured.catch(() => undefined);
    this.on("error", () => undefined);
    this.#holding = this.#capture.size > 0;
    if (!this.#holding) this.#settle();
  }

  /** Output bytes held back while waiting for the capture fields. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** Every byte the filter itself holds: held output, the unparsed tail, a partial capture. */
  get bufferedBytes(): number {
    return this.#heldBytes + this.#buf.length + (this.#part?.bytes ?? 0);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      if (this.#state !== "done") {
        this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
        while (this.#step());
      }
      callback();
    } catch (err) {
      callback(err instanceof Error ? err : new Error(String(err)));
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.#state === "epilogue") this.#state = "done";
    if (this.#state === "preamble") {
      callback(malformed(`body has no opening boundary ${this.#dash.toString("latin1")}`));
    } else if (this.#state !== "done") {
      callback(malformed("body ended before the closing boundary (truncated upload?)"));
    } else {
      this.#settle();
      callback();
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#settle(
      error ?? new MultipartError("multipart_aborted", "body was aborted before its end"),
    );
    this.#held = [];
    this.#heldBytes = 0;
    callback(error);
  }

  /** Parses as far as the buffer allows; false when more input is needed. */
  #step(): boolean {
    const buf = this.#buf;
    switch (this.#state) {
      case "preamble": {
        const dash = this.#dash;
        if (this.#atStart) {
          const n = Math.min(buf.length, dash.length);
          if (buf.compare(dash, 0, n, 0, n) === 0) {
            if (buf.length < dash.length) return false;
            return this.#advance(dash.length, "boundary");
          }
          this.#atStart = false;
        }
        const at = buf.indexOf(this.#delimiter);
        const skip = at < 0 ? this.#safeLength(buf) : at;
        this.#preambleBytes += skip;
        if (this.#preambleBytes > MAX_PREAMBLE_BYTES) {
          throw malformed(`no opening boundary ${dash.toString("latin1")} in the first 64 KiB`);
        }
        if (at >= 0) return this.#advance(at + this.#delimiter.length, "boundary");
        this.#advance(skip, "preamble");
        return false;
      }
      case "boundary": {
        if (buf.length < 2) return false;
        if (buf[0] === DASH && buf[1] === DASH) {
          this.#out(Buffer.concat([this.#emittedAny ? CRLF : EMPTY, this.#dash, DASHES]));
          return this.#advance(2, "epilogue");
        }
        let i = 0;
        while (buf[i] === 0x20 || buf[i] === 0x09) i++;
        if (i > MAX_PADDING_BYTES) throw malformed("too much padding after a boundary");
        if (i + 2 > buf.length) return false;
        if (buf[i] !== CR || buf[i + 1] !== LF) throw malformed("boundary is not followed by CRLF");
        this.#delimiterLine = Buffer.concat([this.#dash, buf.subarray(0, i + 2)]);
        return this.#advance(i + 2, "headers");
      }
      case "headers": {
        // A part without headers starts with the blank line itself.
        const at = buf[0] === CR && buf[1] === LF ? -2 : buf.indexOf(HEADER_END);
        const end = at === -1 ? buf.length : at + 4;
        if (end > MAX_HEADER_BYTES) throw malformed("part headers exceed 16 KiB");
        if (at === -1) return false;
        this.#startPart(buf.subarray(0, end));
        return this.#advance(end, "body");
      }
      case "body": {
        const at = buf.indexOf(this.#delimiter);
        const data = at < 0 ? this.#safeLength(buf) : at;
        this.#partData(buf.subarray(0, data));
        if (at < 0) {
          this.#advance(data, "body");
          return false;
        }
        this.#endPart();
        return this.#advance(at + this.#delimiter.length, "boundary");
      }
      case "epilogue":
        if (buf.length < 2) return false;
        if (buf[0] === CR && buf[1] === LF) this.#out(CRLF);
        this.#advance(buf.length, "done");
        return false;
      case "done":
        return false;
    }
  }

  #advance(bytes: number, state: State): true {
    this.#buf = this.#buf.subarray(bytes);
    this.#state = state;
    return true;
  }

  /** How much of `buf` cannot begin a delimiter: all but a tail that is a delimiter prefix. */
  #safeLength(buf: Buffer): number {
    const d = this.#delimiter;
    for (
      let i = buf.indexOf(CR, Math.max(0, buf.length - d.length + 1));
      i >= 0;
      i = buf.indexOf(CR, i + 1)
    ) {
      if (buf.compare(d, 0, buf.length - i, i) === 0) return i;
    }
    return buf.length;
  }

  #startPart(headers: Buffer): void {
    const names = partNames(headers);
    const keep = !names.some((name) => this.#drop.has(name));
    const capture = names.find((name) => this.#capture.has(name));
    // The route is chosen on the first value; a second one the backend might read instead is refused.
    if (capture !== undefined && this.#found.has(capture)) {
      throw malformed(`form field "${capture}" is sent more than once`);
    }
    this.#part = { keep, capture, chunks: [], bytes: 0 };
    if (!keep) return;
    this.#out(
      Buffer.concat(
        this.#emittedAny ? [CRLF, this.#delimiterLine, headers] : [this.#delimiterLine, headers],
      ),
    );
    this.#emittedAny = true;
  }

  #partData(data: Buffer): void {
    const part = this.#part;
    if (part === undefined || data.length === 0) return;
    if (part.capture !== undefined) {
      part.bytes += data.length;
      if (part.bytes > this.#maxCaptureBytes) {
        throw new MultipartError(
          "multipart_field_too_large",
          `form field "${part.capture}" is longer than ${this.#maxCaptureBytes} bytes`,
        );
      }
      part.chunks.push(Buffer.from(data));
    }
    if (part.keep) this.#out(data);
  }

  #endPart(): void {
    const part = this.#part;
    this.#part = undefined;
    if (part?.capture === undefined) return;
    this.#found.set(part.capture, Buffer.concat(part.chunks).toString("utf8"));
    if (this.#found.size === this.#capture.size) this.#settle();
  }

  #out(data: Buffer): void {
    if (!this.#holding) {
      this.push(data);
      return;
    }
    this.#held.push(data);
    this.#heldBytes += data.length;
    if (this.#heldBytes > this.#maxHeldBytes) {
      const missing = [...this.#capture].filter((name) => !this.#found.has(name));
      throw new MultipartError(
        "multipart_too_large",
        `held back more than ${this.#maxHeldBytes} bytes waiting for form fields ${missing.join(", ")}: send them before the file`,
      );
    }
  }

  /** Settles `captured` once: resolved (and held output released) or rejected with `error`. */
  #settle(error?: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    if (error !== undefined) {
      this.#reject(error);
      return;
    }
    this.#resolve(Object.fromEntries(this.#found));
    this.#holding = false;
    for (const data of this.#held) this.push(data);
    this.#held = [];
    this.#heldBytes = 0;
  }
}
