/**
 * A Duplex over a WebSocket's binary frames, carrying one HTTP/2 connection.
 *
 * Two things make it better than `ws.createWebSocketStream` for this:
 * - writes made in one tick are gathered into one WebSocket message (HTTP/2 writes many small
 *   frames per tick; one message each costs ~45% of request throughput);
 * - backpressure follows `bufferedAmount`: once the socket holds more than `highWaterMark`
 *   unsent bytes, the write callback waits until it drains, so HTTP/2 stops producing and a
 *   slow network never makes us buffer without bound.
 * Text frames are not ours: the owner handles them as control messages.
 */
import { Duplex } from "node:stream";
import type WebSocket from "ws";

export interface WsDuplexOptions {
  /** Unsent bytes at which writes wait (default 1 MiB). */
  highWaterMark?: number;
  /** A gathered batch is sent at once when it reaches this size (default 256 KiB). */
  maxBatchBytes?: number;
}

export class WsDuplex extends Duplex {
  readonly #ws: WebSocket;
  readonly #highWaterMark: number;
  readonly #maxBatch: number;
  #batch: Buffer[] = [];
  #batchBytes = 0;
  #flushScheduled = false;
  #waiting: ((err?: Error | null) => void) | null = null;
  #paused = false;

  constructor(ws: WebSocket, options: WsDuplexOptions = {}) {
    super({ allowHalfOpen: false });
    this.#ws = ws;
    this.#highWaterMark = options.highWaterMark ?? 1024 * 1024;
    this.#maxBatch = options.maxBatchBytes ?? 256 * 1024;
  }

  /** Feed one binary WebSocket message in; the owner calls this from its `message` handler. */
  receive(data: Buffer): void {
    if (this.destroyed) return;
    if (!this.push(data) && !this.#paused) {
      this.#paused = true;
      this.#ws.pause();
    }
  }

  override _read(): void {
    if (this.#paused) {
      this.#paused = false;
      this.#ws.resume();
    }
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (err?: Error | null) => void,
  ) {
    if (this.#ws.readyState !== this.#ws.OPEN) {
      callback(new Error("tunnel WebSocket is closed"));
      return;
    }
    this.#batch.push(chunk);
    this.#batchBytes += chunk.length;
    if (this.#batchBytes >= this.#maxBatch) this.#flush();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      process.nextTick(this.#flush);
    }
    if (this.#ws.bufferedAmount + this.#batchBytes < this.#highWaterMark) callback();
    else this.#waiting = callback;
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#flush();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#batch = [];
    this.#batchBytes = 0;
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.(err ?? new Error("tunnel closed"));
    callback(err);
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    if (this.#batchBytes === 0) return;
    const [first] = this.#batch;
    const data =
      this.#batch.length === 1 && first ? first : Buffer.concat(this.#batch, this.#batchBytes);
    this.#batch = [];
    this.#batchBytes = 0;
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    this.#ws.send(data, { binary: true }, this.#onSent);
  };

  readonly #onSent = (err?: Error): void => {
    if (!this.#waiting) return;
    if (err) {
      const waiting = this.#waiting;
      this.#waiting = null;
      waiting(err);
    } else if (this.#ws.bufferedAmount + this.#batchBytes < this.#highWaterMark / 2) {
      const waiting = this.#waiting;
      this.#waiting = null;
      waiting();
    }
  };
}
