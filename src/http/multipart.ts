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
import {
  BOUNDARY_RE,
  CRLF,
  DASHES,
  EMPTY,
  MultipartError,
  MultipartParser,
  malformed,
  partHeaders,
  type PartSink,
} from "./multipart-parser.ts";

export { MultipartError, boundaryOf, type MultipartErrorCode } from "./multipart-parser.ts";

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
  /**
   * Called with the size of each piece of output held back, before it is kept: a budget the
   * held bytes count against. What it throws refuses the form (the stream errors with it).
   */
  hold?: (bytes: number) => void;
}

interface Part {
  keep: boolean;
  capture: string | undefined;
  chunks: Buffer[];
  bytes: number;
}

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
  readonly #parser: MultipartParser;
  readonly #dash: Buffer;
  readonly #drop: ReadonlySet<string>;
  readonly #capture: ReadonlySet<string>;
  readonly #maxCaptureBytes: number;
  readonly #maxHeldBytes: number;
  readonly #hold: ((bytes: number) => void) | undefined;
  readonly #found = new Map<string, string>();
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
    const sink: PartSink = {
      start: (line, headers) => this.#startPart(line, headers),
      data: (data) => this.#partData(data),
      end: () => this.#endPart(),
      close: () => this.#out(Buffer.concat([this.#emittedAny ? CRLF : EMPTY, this.#dash, DASHES])),
      closeLine: () => this.#out(CRLF),
    };
    this.#parser = new MultipartParser(boundary, sink);
    this.#drop = new Set(options.dropFields);
    this.#capture = new Set(options.captureFields);
    this.#maxCaptureBytes = maxCaptureBytes;
    this.#maxHeldBytes = maxHeldBytes;
    this.#hold = options.hold;
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
    return this.#heldBytes + this.#parser.bufferedBytes + (this.#part?.bytes ?? 0);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#parser.write(chunk);
      callback();
    } catch (err) {
      callback(err instanceof Error ? err : new Error(String(err)));
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.#parser.finish();
    } catch (err) {
      callback(err as Error);
      return;
    }
    this.#settle();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#settle(
      error ?? new MultipartError("multipart_aborted", "body was aborted before its end"),
    );
    this.#held = [];
    this.#heldBytes = 0;
    callback(error);
  }

  #startPart(delimiterLine: Buffer, headers: Buffer): void {
    const { names } = partHeaders(headers);
    const keep = !names.some((name) => this.#drop.has(name));
    const capture = names.find((name) => this.#capture.has(name));
    // The route is chosen on the first value; a second one the backend might read instead is refused.
    if (capture !== undefined && this.#found.has(capture)) {
      throw malformed(`form field "${capture}" is sent more than once`);
    }
    this.#part = { keep, capture, chunks: [], bytes: 0 };
    if (!keep) return;
    this.#out(
      Buffer.concat(this.#emittedAny ? [CRLF, delimiterLine, headers] : [delimiterLine, headers]),
    );
    this.#emittedAny = true;
  }

  #partData(data: Buffer): void {
    const part = this.#part;
    if (part === undefined) return;
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
    this.#hold?.(data.length);
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
