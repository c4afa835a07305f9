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
  /** Whether the answer's body has begun (past any leading whitespace). */
  #begun = false;

  /**
   * @param limit the most bytes held
   * @param onSpace given the whitespace a provider sends before its JSON to keep a long call
   *   alive (the daemon does for slow generations), for the consumer to get it at once
   */
  constructor(
    readonly limit: number,
    readonly onSpace?: (chunk: Buffer) => void,
  ) {
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
    if (!this.#begun && this.onSpace && this.status === 200) {
      let n = 0;
      while (n < chunk.length && chunk[n] === 0x20) n++;
      if (n > 0) this.onSpace(chunk.subarray(0, n));
      if (n === chunk.length) {
        done();
        return;
      }
      this.#begun = true;
      chunk = chunk.subarray(n);
    }
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
