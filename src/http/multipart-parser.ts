/**
 * The one multipart/form-data parser: a push parser that finds the parts of a body as it
 * arrives and hands each one's delimiter line, header block and data to a {@link PartSink},
 * keeping only a lookbehind of a delimiter's length. The relay's `MultipartFilter` and the
 * adapters' `FormRewriter` are both sinks of it.
 */
import { HttpError } from "./error.ts";

/** Stable codes of {@link MultipartError}; `multipart_aborted` means destroyed before the end. */
export type MultipartErrorCode =
  "multipart_malformed" | "multipart_too_large" | "multipart_field_too_large" | "multipart_aborted";

/**
 * A multipart body that cannot be passed on: malformed (400), or too large or cut off (413),
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
export const CRLF = Buffer.from("\r\n");
export const EMPTY = Buffer.alloc(0);
export const DASHES = Buffer.from("--");
const HEADER_END = Buffer.from("\r\n\r\n");
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_PREAMBLE_BYTES = 64 * 1024;
const MAX_PADDING_BYTES = 256;
// RFC 2046 bchars: 1-70 characters, the last one not a space.
export const BOUNDARY_RE = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

export const malformed = (message: string): MultipartError =>
  new MultipartError("multipart_malformed", message);

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

/** What a part's header block says, as {@link MultipartParser} reports it. */
export interface PartHeaders {
  /**
   * Every name the part claims: `name` (with the WHATWG `%22`/`%0D`/`%0A` escapes that browsers
   * and undici write undone) and, if present, RFC 5987 `name*`; a backend may honour either.
   */
  names: string[];
  /** The `filename` parameter, unescaped like `name`; undefined for a text field. */
  filename: string | undefined;
  /** The part's Content-Type, trimmed; undefined when it has none. */
  contentType: string | undefined;
}

const unescapeName = (value: string): string =>
  value.replace(/%0A/g, "\n").replace(/%0D/g, "\r").replace(/%22/g, '"');

/** Reads a part's header block (its lines up to and including the blank one). */
export function partHeaders(block: Buffer): PartHeaders {
  let disposition: string | undefined;
  let contentType: string | undefined;
  const lines = block
    .toString("utf8")
    .replace(/\r\n[ \t]+/g, " ")
    .split("\r\n");
  for (const line of lines) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) throw malformed(`part header line without a colon: ${JSON.stringify(line)}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === "content-type") contentType = line.slice(colon + 1).trim();
    if (name !== "content-disposition") continue;
    if (disposition !== undefined) throw malformed("part has two Content-Disposition headers");
    disposition = line.slice(colon + 1);
  }
  const names: string[] = [];
  let filename: string | undefined;
  if (disposition === undefined) return { names, filename, contentType };
  const semi = disposition.indexOf(";");
  const params = semi < 0 ? [] : parseParams(disposition.slice(semi + 1));
  const seen = new Set<string>();
  for (const [key, value] of params) {
    if (key === "filename") filename ??= unescapeName(value);
    if (key !== "name" && key !== "name*") continue;
    if (seen.has(key)) throw malformed(`part has a repeated ${key} parameter`);
    seen.add(key);
    if (key === "name") {
      names.push(unescapeName(value));
    } else {
      const match = /^[^']*'[^']*'(.*)$/.exec(value);
      try {
        names.push(decodeURIComponent(match?.[1] ?? value));
      } catch {
        throw malformed(`part has an undecodable name*: ${JSON.stringify(value)}`);
      }
    }
  }
  return { names, filename, contentType };
}

/** What {@link MultipartParser} reports, in order, for each part and at the end. */
export interface PartSink {
  /**
   * A part begins: its delimiter line as sent (`--boundary`, any padding, CRLF) and its header
   * block as sent (up to and including the blank line).
   */
  start(delimiterLine: Buffer, headers: Buffer): void;
  /** Some of the current part's data (never a byte of the next delimiter). */
  data(data: Buffer): void;
  /** The current part ended. */
  end(): void;
  /** The closing `--boundary--` was read. */
  close(): void;
  /** A line break followed the closing boundary (the rest, the epilogue, is ignored). */
  closeLine?(): void;
}

type State = "preamble" | "boundary" | "headers" | "body" | "epilogue" | "done";

/**
 * Parses a multipart/form-data body pushed to it chunk by chunk. `write` and `finish` throw a
 * {@link MultipartError} (`multipart_malformed`) on malformed input; the sink may throw too.
 * @example
 * const parser = new MultipartParser(boundary, sink);
 * for await (const chunk of req) parser.write(chunk);
 * parser.finish();
 */
export class MultipartParser {
  readonly #dash: Buffer;
  readonly #delimiter: Buffer;
  readonly #sink: PartSink;
  #state: State = "preamble";
  #buf: Buffer = EMPTY;
  #atStart = true;
  #preambleBytes = 0;
  /** The delimiter line of the part being read, as sent. */
  #line: Buffer = EMPTY;

  constructor(boundary: string, sink: PartSink) {
    this.#dash = Buffer.from(`--${boundary}`, "latin1");
    this.#delimiter = Buffer.from(`\r\n--${boundary}`, "latin1");
    this.#sink = sink;
  }

  /** The unparsed tail held between chunks (at most a delimiter's length, or a header block). */
  get bufferedBytes(): number {
    return this.#buf.length;
  }

  /** True once the closing boundary was read; later input is ignored. */
  get closed(): boolean {
    return this.#state === "epilogue" || this.#state === "done";
  }

  /** Parses `chunk` as far as it goes. */
  write(chunk: Buffer): void {
    if (this.#state === "done") return;
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    while (this.#step());
  }

  /** The body ended: throws unless it was complete. */
  finish(): void {
    if (this.#state === "epilogue") this.#state = "done";
    if (this.#state === "preamble")
      throw malformed(`body has no opening boundary ${this.#dash.toString("latin1")}`);
    if (this.#state !== "done")
      throw malformed("body ended before the closing boundary (truncated upload?)");
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
          this.#sink.close();
          return this.#advance(2, "epilogue");
        }
        let i = 0;
        while (buf[i] === 0x20 || buf[i] === 0x09) i++;
        if (i > MAX_PADDING_BYTES) throw malformed("too much padding after a boundary");
        if (i + 2 > buf.length) return false;
        if (buf[i] !== CR || buf[i + 1] !== LF) throw malformed("boundary is not followed by CRLF");
        this.#line = Buffer.concat([this.#dash, buf.subarray(0, i + 2)]);
        return this.#advance(i + 2, "headers");
      }
      case "headers": {
        // A part without headers starts with the blank line itself.
        const at = buf[0] === CR && buf[1] === LF ? -2 : buf.indexOf(HEADER_END);
        const end = at === -1 ? buf.length : at + 4;
        if (end > MAX_HEADER_BYTES) throw malformed("part headers exceed 16 KiB");
        if (at === -1) return false;
        this.#sink.start(this.#line, buf.subarray(0, end));
        return this.#advance(end, "body");
      }
      case "body": {
        const at = buf.indexOf(this.#delimiter);
        const data = at < 0 ? this.#safeLength(buf) : at;
        if (data > 0) this.#sink.data(buf.subarray(0, data));
        if (at < 0) {
          this.#advance(data, "body");
          return false;
        }
        this.#sink.end();
        return this.#advance(at + this.#delimiter.length, "boundary");
      }
      case "epilogue":
        if (buf.length < 2) return false;
        if (buf[0] === CR && buf[1] === LF) this.#sink.closeLine?.();
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
}
