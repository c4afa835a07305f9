/**
 * A `ForwardSink` that streams a provider's byte answer to the consumer and, at once, into a
 * part file of the media library: the consumer's pace sets the pace (HTTP/2 flow control does
 * the rest), nothing is held whole in memory. Only a 2xx answer that is not JSON or SSE is kept;
 * a consumer who leaves destroys the sink, which cancels the provider's stream.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import type { ServerResponse } from "node:http";
import { Writable } from "node:stream";
import type { ForwardSink } from "../forward.ts";

/** Whether an answer with these status and type is a result to keep. */
export function isByteResult(status: number, contentType: string): boolean {
  const type = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  return (
    status >= 200 &&
    status < 300 &&
    type !== "application/json" &&
    type !== "text/event-stream" &&
    type !== ""
  );
}

export class TeeSink extends Writable implements ForwardSink {
  status = 0;
  contentType = "";
  bytes = 0;
  #file: WriteStream | undefined;
  /** The write waiting for the file's drain, released if the file fails. */
  #fileWaiting: (() => void) | undefined;

  /**
   * @param res the consumer's response
   * @param part where to write the bytes kept
   * @param extraHeaders headers added to a kept answer (its id and URL)
   */
  constructor(
    readonly res: ServerResponse,
    readonly part: string,
    readonly extraHeaders: Record<string, string>,
  ) {
    super();
    this.on("error", () => undefined);
    // A consumer who left before the whole answer was sent; after it, the file may still be
    // finishing, and that is not a reason to drop it.
    res.on("close", () => {
      if (!res.writableFinished) this.destroy();
    });
  }

  get headersSent(): boolean {
    return this.res.headersSent;
  }

  /** Whether the answer is being kept. */
  get keeping(): boolean {
    return this.#file !== undefined;
  }

  writeHead(status: number, headers: Record<string, string | string[]>): this {
    if (this.res.headersSent) return this;
    this.status = status;
    const raw = headers["content-type"];
    this.contentType = (Array.isArray(raw) ? raw[0] : raw) ?? "";
    if (isByteResult(status, this.contentType)) {
      this.#file = createWriteStream(this.part, { mode: 0o600 });
      this.#file.on("error", () => {
        // A full disk costs the library this result, never the consumer's answer.
        this.#file?.destroy();
        this.#file = undefined;
        const waiting = this.#fileWaiting;
        this.#fileWaiting = undefined;
        waiting?.();
      });
      this.res.writeHead(status, { ...headers, ...this.extraHeaders });
    } else this.res.writeHead(status, headers);
    return this;
  }

  flushHeaders(): void {
    this.res.flushHeaders();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error) => void): void {
    this.bytes += chunk.length;
    let waiting = 1;
    const step = (): void => {
      if (--waiting === 0) done();
    };
    if (this.#file) {
      waiting++;
      if (this.#file.write(chunk)) step();
      else {
        this.#fileWaiting = step;
        this.#file.once("drain", () => {
          this.#fileWaiting = undefined;
          step();
        });
      }
    }
    if (this.res.write(chunk)) step();
    else this.res.once("drain", step);
  }

  override _final(done: (err?: Error) => void): void {
    this.res.end();
    const file = this.#file;
    if (!file) done();
    else {
      file.once("error", () => done());
      file.end(() => done());
    }
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.#file?.destroy();
    if (!this.res.writableEnded) this.res.destroy();
    done(err);
  }
}
