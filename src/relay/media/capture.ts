/**
 * A `ForwardSink` that holds a provider's whole answer in memory, up to a limit, for the relay
 * to rewrite before the consumer sees it (an image call's JSON, whose `b64_json` becomes a URL).
 * Past the limit it is destroyed, which cancels the provider's stream.
 */
import { Writable } from "node:stream";
import type { ForwardSink } from "../forward.ts";

export class CaptureSink extends Writable implements ForwardSink {
  status = 0;
  headers: Record<string, string | string[]> = {};
  headersSent = false;
  readonly chunks: Buffer[] = [];
  size = 0;
  /** Set when the answer was larger than the limit. */
  overflow = false;

  constructor(readonly limit: number) {
    super();
    this.on("error", () => undefined);
  }

  writeHead(status: number, headers: Record<string, string | string[]>): this {
    if (!this.headersSent) {
      this.status = status;
      this.headers = headers;
      this.headersSent = true;
    }
    return this;
  }

  flushHeaders(): void {
    // Held, not sent: the consumer gets the rewritten answer at the end.
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error) => void): void {
    this.size += chunk.length;
    if (this.size > this.limit) {
      this.overflow = true;
      done(new Error(`the answer is larger than ${this.limit} bytes`));
      return;
    }
    this.chunks.push(chunk);
    done();
  }

  /** The answer's body, whole. */
  body(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Resolves once `sink` has finished or closed, whichever comes first. */
export function settled(sink: Writable): Promise<"finished" | "closed"> {
  if (sink.writableFinished) return Promise.resolve("finished");
  if (sink.destroyed) return Promise.resolve("closed");
  return new Promise((resolve) => {
    sink.once("finish", () => resolve("finished"));
    sink.once("close", () => resolve(sink.writableFinished ? "finished" : "closed"));
  });
}
