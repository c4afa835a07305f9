/**
 * Request bodies as they arrive: how many one member may be sending at once, how many of their
 * bytes the relay holds in memory, and the cut of an upload that stopped moving. An upload that
 * is slow but moving is fine; one that sends nothing for `idleMs` is answered 408 and closed.
 * `admit` is called once per request after the key is known; `readBody` charges what it buffers
 * to the request's meter (`attachMeter`), so every buffered body counts, whichever route reads
 * it, until the request's response closes.
 * A small body that came whole with its headers is no upload: it is already in memory and read
 * at once, so it is neither counted, charged nor watched (most API calls are such).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { attachMeter, type Meter } from "../http/body.ts";
import { HttpError } from "../http/error.ts";
import { sendError } from "../http/respond.ts";

/**
 * The JSON body limit unless told otherwise: a chat with a few inline images. Media uploads are
 * multipart and streamed to the provider, never buffered.
 */
export const DEFAULT_MAX_JSON_BYTES = 16 * 1024 * 1024;

/** The bounds on request bodies; see the file comment. */
export interface UploadLimits {
  /** Bodies one member may be sending at once (429 beyond). */
  perMember: number;
  /** Bytes of one member's bodies held in memory at once, read or arriving (429 beyond). */
  bufferedPerMember: number;
  /** Bytes of every member's bodies held in memory at once, read or arriving (503 beyond). */
  bufferedTotal: number;
  /** A body that sends nothing for this long is cut with 408. */
  idleMs: number;
}

export const DEFAULT_UPLOAD_LIMITS: UploadLimits = {
  perMember: 16,
  bufferedPerMember: 96 * 1024 * 1024,
  bufferedTotal: 512 * 1024 * 1024,
  idleMs: 30_000,
};

const MiB = (n: number): string => `${Math.round(n / (1024 * 1024))} MiB`;

/** A body this size or less that came with its headers came in the same read of the socket. */
const WHOLE_BODY_BYTES = 64 * 1024;

/**
 * The request's body is all here already: a declared length, small, and every byte of it in
 * the request's buffer. Setting up the accounting (a meter, a stall timer, listeners) cost more
 * than a small request's key check and rate limit together.
 */
function arrivedWhole(req: IncomingMessage): boolean {
  if (req.headers["transfer-encoding"] !== undefined) return false;
  const length = Number(req.headers["content-length"]);
  return length <= WHOLE_BODY_BYTES && req.readableLength >= length;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return (length !== undefined && length !== "0") || req.headers["transfer-encoding"] !== undefined;
}

/** Part of the request's body is still to arrive when its headers are in (an upload). */
export function bodyToCome(req: IncomingMessage): boolean {
  return hasBody(req) && !req.complete && !arrivedWhole(req);
}

/**
 * The relay's accounting of request bodies.
 * @example
 * if (!uploads.admit(req, res, member)) return; // answered 429
 * const body = await readBody(req, maxJson); // charged to the member
 */
export class Uploads {
  readonly limits: UploadLimits;
  readonly #open = new Map<string, number>();
  readonly #held = new Map<string, number>();
  #total = 0;

  constructor(limits: Partial<UploadLimits> = {}) {
    this.limits = { ...DEFAULT_UPLOAD_LIMITS, ...limits };
  }

  /**
   * Counts the request's body against `member`, watches it for a stall, and gives it a meter.
   * False when the member already sends `perMember` bodies: the request is answered 429 then.
   */
  admit(req: IncomingMessage, res: ServerResponse, member: string): boolean {
    if (!hasBody(req) || req.complete) return true;
    const open = this.#open.get(member) ?? 0;
    if (open >= this.limits.perMember) {
      sendError(
        res,
        429,
        "rate_limit_error",
        `${open} of your request bodies are still arriving, the most one member may send at once: wait for them to finish`,
        { connection: "close" },
      );
      res.on("finish", () => req.destroy());
      return false;
    }
    if (arrivedWhole(req)) return true;
    this.#open.set(member, open + 1);
    let held = 0;
    const meter: Meter = {
      hold: (bytes) => {
        const mine = this.#held.get(member) ?? 0;
        if (mine + bytes > this.limits.bufferedPerMember)
          throw new HttpError(
            429,
            "rate_limit_error",
            `your request bodies (arriving, or waiting for their answers) hold ${MiB(mine)} at the relay, and the most one member may hold at once is ${MiB(this.limits.bufferedPerMember)}: send fewer at a time`,
          );
        if (this.#total + bytes > this.limits.bufferedTotal)
          throw new HttpError(
            503,
            "overloaded",
            "the relay holds as many request bodies as it can right now: retry shortly",
          );
        held += bytes;
        this.#total += bytes;
        this.#held.set(member, mine + bytes);
      },
    };
    // What was read stays charged until the response closes, not only while it arrives: the
    // body lives as long (sent on, and kept for a retry on another provider), and a member's
    // requests waiting at a slow rig held their bodies past any bound before.
    const release = (): void => {
      if (held === 0) return;
      this.#total -= held;
      const left = (this.#held.get(member) ?? 0) - held;
      if (left > 0) this.#held.set(member, left);
      else this.#held.delete(member);
      held = 0;
    };
    attachMeter(req, meter);
    const stop = this.#watch(req, res);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      stop();
      const left = (this.#open.get(member) ?? 1) - 1;
      if (left > 0) this.#open.set(member, left);
      else this.#open.delete(member);
    };
    req.once("end", finish);
    // The response closes however the exchange ended: answered, cut, or its consumer gone. An
    // answer sent before the body was all in (405, 413, an error) frees the place at once: Node
    // stops tracking a request once its response is out, so a client that then hangs up closes
    // no request, and its place would wait for the stall timer.
    res.once("close", () => {
      finish();
      release();
    });
    return true;
  }

  /**
   * Cuts the body when the socket brings nothing for `idleMs`. A body the relay itself is not
   * reading (bytes wait in the request's buffer: the provider is slow to take them) is not stalled.
   */
  #watch(req: IncomingMessage, res: ServerResponse): () => void {
    const { idleMs } = this.limits;
    const socket = req.socket;
    let seen = socket.bytesRead;
    let quietSince = Date.now();
    const timer = setInterval(
      () => {
        if (socket.bytesRead !== seen || req.readableLength > 0) {
          seen = socket.bytesRead;
          quietSince = Date.now();
          return;
        }
        if (Date.now() - quietSince < idleMs) return;
        clearInterval(timer);
        if (res.headersSent) {
          req.destroy();
          return;
        }
        sendError(
          res,
          408,
          "invalid_request_error",
          `the request body stopped arriving: nothing came for ${Math.round(idleMs / 1000)} s`,
          { connection: "close" },
        );
        res.on("finish", () => req.destroy());
      },
      Math.max(10, Math.min(1000, idleMs / 4)),
    );
    timer.unref();
    return () => clearInterval(timer);
  }
}
