/**
 * Where a running job's answer goes: a `ForwardSink` that streams the provider's body into a
 * file (never whole in memory) and stops at a size limit. Destroying it cancels the HTTP/2
 * stream, which makes the daemon abort the engine call.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { Writable } from "node:stream";
import { ClubError } from "../../errors.ts";
import type { ForwardSink } from "../forward.ts";

/** A `ForwardSink` writing the answer's body to `path`, at most `limit` bytes. */
export class ResultSink extends Writable implements ForwardSink {
  status = 0;
  headers: Record<string, string | string[]> = {};
  headersSent = false;
  bytes = 0;
  /** Why the sink was destroyed, when it was: `result_too_large`, `attempt_timeout`, `canceled`… */
  failure: ClubError | undefined;
  readonly #file: WriteStream;
  readonly #limit: number;

  constructor(path: string, limit: number) {
    super();
    this.#limit = limit;
    this.#file = createWriteStream(path, { mode: 0o600 });
    this.#file.on("error", (err) => this.destroy(new ClubError("result_unwritable", err.message)));
    // Failures are read from `failure`; without a listener an error event would throw.
    this.on("error", (err) => {
      this.failure ??= err instanceof ClubError ? err : new ClubError("sink_failed", err.message);
    });
  }

  writeHead(status: number, headers: Record<string, string | string[]>): this {
    if (!this.headersSent && !this.destroyed) {
      this.status = status;
      this.headers = headers;
      this.headersSent = true;
    }
    return this;
  }

  flushHeaders(): void {
    // Nothing to flush: the headers are kept, not sent.
  }

  /** The response's content type without parameters, lower-cased. */
  get contentType(): string {
    const raw = this.headers["content-type"];
    const value = Array.isArray(raw) ? raw[0] : raw;
    return (value ?? "application/octet-stream").split(";")[0]?.trim().toLowerCase() ?? "";
  }

  /** Stops the transfer; `code` says why (the attempt reads it back from `failure`). */
  abort(code: string, message: string): void {
    this.failure ??= new ClubError(code, message);
    this.destroy();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error) => void): void {
    this.bytes += chunk.length;
    if (this.bytes > this.#limit) {
      done(new ClubError("result_too_large", `the result is larger than ${this.#limit} bytes`));
      return;
    }
    if (this.#file.write(chunk)) done();
    else this.#file.once("drain", () => done());
  }

  override _final(done: (err?: Error) => void): void {
    this.#file.end(() => done());
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.#file.destroy();
    done(err);
  }
}

/** Resolves once `sink` has closed, finished or not. */
export function closed(sink: Writable): Promise<void> {
  if (sink.closed) return Promise.resolve();
  return new Promise((resolve) => sink.once("close", () => resolve()));
}
