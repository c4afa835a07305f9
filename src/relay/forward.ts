/**
 * Sending one consumer request through a provider's tunnel and streaming the answer back.
 * Bodies stream both ways under HTTP/2 flow control; a consumer who leaves cancels the stream
 * (RST_STREAM), which the daemon turns into an abort of the local request.
 */
import type { ClientHttp2Stream, IncomingHttpHeaders } from "node:http2";
import { ServerResponse, type IncomingMessage } from "node:http";
import { pipeline, type Readable } from "node:stream";
import type { Logger } from "../log.ts";
import { HttpError } from "../http/error.ts";
import { resetStream } from "../transport/h2-stream.ts";
import { HEADER_MEMBER, HEADER_MODEL, HEADER_REQUEST_ID, envelope } from "../protocol/index.ts";
import { KeepAlive, errorEvent, refusalEvent } from "./keepalive.ts";
import type { ProviderState } from "./provider-state.ts";
import { UsageMeter, type UsageTap } from "./usage-meter.ts";

/**
 * Where a forwarded answer goes: a consumer's `ServerResponse`, or any writable with the few
 * response members `forward` uses (an async job's result sink). Destroying it cancels the stream.
 */
export interface ForwardSink extends NodeJS.WritableStream {
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  readonly writableFinished: boolean;
  writeHead(status: number, headers: Record<string, string | string[]>): unknown;
  flushHeaders(): void;
  destroy(): unknown;
}

export interface ForwardRequest {
  link: ProviderState;
  method: string;
  path: string;
  headers: Record<string, string>;
  /** A buffered body (JSON, already rewritten), a stream (multipart, bytes), or none. */
  body: Buffer | Readable | null;
  model: string;
  requestId: string;
  /** The member whose key made the request; the daemon checks it against its sharing. */
  member: string;
  /** The consumer's request, when there is one (an async job has none). */
  req?: IncomingMessage;
  res: ForwardSink;
  log: Logger;
  /**
   * Statuses for which the caller will try another provider (a full daemon's 429): such an
   * answer is dropped, nothing reaches `res`, and `forward` resolves `"retry"`. Given, it also
   * means a provider that disconnects before answering is retried on another.
   */
  retryOn?: (status: number) => boolean;
  /**
   * The consumer asked for an SSE stream: after this long without an answer, commit 200 and
   * send SSE comments until the answer begins (`keepalive.ts`). A retry is possible only before.
   */
  keepAliveMs?: number;
  /** Meter the answer: what it used is booked once it is over (`usage-meter.ts`). */
  usage?: UsageTap;
}

/** Answers with an envelope, or cuts the answer off once headers are out (as `sendError`). */
function sendEnvelope(
  res: ForwardSink,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

/** A 502 `upstream_error` in the club's envelope. */
function sendUpstreamError(res: ForwardSink, message: string): void {
  sendEnvelope(res, 502, envelope("upstream_error", message));
}

/**
 * The provider's response headers a consumer gets: what describes the body and how to cache or
 * retry it, and the club's own `x-club-*`. Never cookies, CORS or anything else a provider could
 * use to act on the relay's origin (`Set-Cookie; Domain=`, `Access-Control-Allow-Origin: *`).
 */
const FORWARDED_RESPONSE_HEADERS = new Set([
  "content-type",
  "content-length",
  "content-encoding",
  "content-disposition",
  "content-language",
  "cache-control",
  "etag",
  "last-modified",
  "expires",
  "retry-after",
]);

/** The allowed response headers of a provider's answer, with the request id and `nosniff`. */
export function responseHeaders(
  h: IncomingHttpHeaders,
  requestId: string,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(h)) {
    if (value === undefined) continue;
    if (FORWARDED_RESPONSE_HEADERS.has(name) || name.startsWith("x-club-")) out[name] = value;
  }
  out[HEADER_REQUEST_ID] = requestId;
  out["x-content-type-options"] = "nosniff";
  return out;
}

/**
 * An answer of a known length above this is passed on in bursts (below); a shorter one leaves
 * whole anyway, and a stream of unknown length (SSE) chunk by chunk, each as soon as it came.
 */
const BURST_BYTES = 64 * 1024;

/**
 * Holds the consumer's writes until the end of this turn of the event loop, from the first
 * chunk of each burst: so what one read of the tunnel brought leaves in one `writev`. On HTTP/2
 * over a native socket (protocol 2), Node hands each DATA chunk to JavaScript in a callback of
 * its own, after which pending ticks run; `node:http`'s own cork (until the next tick) then
 * ends with each chunk, and a 100 MiB answer went out in writes of about 12 KiB, one per chunk.
 * `setImmediate` runs after every callback of this poll, so nothing waits past this turn.
 */
function corkBursts(stream: ClientHttp2Stream, res: ServerResponse): void {
  const socket = res.socket;
  if (!socket) return;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  // Registered before the pipe's own listener, so the cork is on before the chunk is written.
  // The socket's cork, not the response's: `end()` uncorks the socket fully, so an answer that
  // ends in this turn leaves at once, and the uncork below then has nothing left to do.
  stream.on("data", () => {
    if (corked || socket.destroyed) return;
    corked = true;
    socket.cork();
    setImmediate(uncork);
  });
}

/**
 * Forward one request; resolves when the exchange is over, however it ended: `"retry"` for an
 * answer dropped for another provider (`retryOn`), `"left"` when the consumer went away first.
 */
export function forward(f: ForwardRequest): Promise<"done" | "retry" | "left"> {
  const { link, res } = f;
  return new Promise((resolve) => {
    const buffered = Buffer.isBuffer(f.body);
    const stream = link.request(
      {
        ":method": f.method,
        ":path": f.path,
        ...f.headers,
        ...(buffered ? { "content-length": String((f.body as Buffer).length) } : {}),
        [HEADER_MODEL]: f.model,
        [HEADER_MEMBER]: f.member,
        [HEADER_REQUEST_ID]: f.requestId,
      },
      f.body === null,
    );
    link.inFlight++;
    let responded = false;
    let sse = false;
    let done = false;
    let retry = false;
    const keepAlive = f.keepAliveMs ? new KeepAlive(res, f.requestId, f.keepAliveMs) : undefined;
    /** The body of a refusal that came after the commit, to end the stream with. */
    let refusal: { status: number; chunks: Buffer[]; size: number } | undefined;
    const meter = f.usage ? new UsageMeter(f.usage) : undefined;
    let status = 502;
    /** The meter's pass-through, and whether the provider's answer ended cleanly. */
    let through: NodeJS.ReadWriteStream | undefined;
    let ending = false;
    /** The consumer's body was refused on the way (a form without its closing boundary). */
    let bodyError: HttpError | undefined;
    const book = (): void =>
      meter?.record(
        { member: f.member, model: f.model, provider: link.name, owner: link.member },
        status,
      );
    const pipeOn = (type: string, length: string | undefined): void => {
      if (res instanceof ServerResponse && Number(length ?? 0) > BURST_BYTES)
        corkBursts(stream, res as ServerResponse);
      through = meter?.through(type);
      if (through) stream.pipe(through).pipe(res, { end: false });
      else {
        if (meter) stream.on("data", (chunk: Buffer) => meter.seen(chunk));
        stream.pipe(res, { end: false });
      }
    };
    /** The consumer went away before the answer ended (not the relay cutting it off). */
    let left = false;
    const finish = (): void => {
      if (!retry && !ending) book();
      if (done) return;
      done = true;
      keepAlive?.stop();
      link.inFlight--;
      resolve(retry ? "retry" : left ? "left" : "done");
    };

    if (buffered) stream.end(f.body);
    else if (f.body) {
      // The consumer's fault, not the provider's (a form without its closing boundary): seen
      // here, before the pipeline resets the stream, and answered as such once it closes.
      const body = f.body as Readable;
      // It may have been refused already, while the request was being routed.
      if (body.errored instanceof HttpError) bodyError = body.errored;
      else
        body.once("error", (err) => {
          if (err instanceof HttpError) bodyError = err;
        });
      pipeline(body, stream, (err) => {
        if (err) resetStream(stream);
      });
    }

    stream.on("response", (headers) => {
      responded = true;
      keepAlive?.stop();
      status = Number(headers[":status"]);
      const type = headers["content-type"] ?? "";
      sse = type.startsWith("text/event-stream");
      if (keepAlive?.committed) {
        // The consumer already has a 200: a stream goes on after the comments; anything else
        // (the provider's refusal) becomes the stream's final error event.
        if (status >= 300 || !sse) {
          const r = (refusal = { status, chunks: [] as Buffer[], size: 0 });
          stream.on("data", (chunk: Buffer) => {
            if (r.size < 64 * 1024) r.chunks.push(chunk);
            r.size += chunk.length;
          });
        } else pipeOn(type, headers["content-length"]);
        sse = true;
        return;
      }
      if (f.retryOn?.(status)) {
        retry = true;
        resetStream(stream);
        return;
      }
      res.writeHead(status, responseHeaders(headers, f.requestId));
      // A body of unknown length may be slow to start (a stream): the consumer gets the headers
      // now. One of known length is sent with its headers, in one write.
      if (headers["content-length"] === undefined) res.flushHeaders();
      pipeOn(type, headers["content-length"]);
    });
    // A session that dies also ends its streams' readable side: only an end while the session
    // is alive and the stream was not reset is the provider's END_STREAM. A refusal dropped for
    // a retry ends too (`cancel` reads it away): the answer is the next provider's to give.
    stream.on("end", () => {
      if (retry || !responded || link.session.destroyed || stream.rstCode) return;
      if (refusal) res.end(refusalEvent(link.name, refusal.status, Buffer.concat(refusal.chunks)));
      else if (through) {
        // The rest of the answer is still passing through the meter: end after it.
        ending = true;
        through.once("end", () => {
          book();
          res.end();
        });
      } else res.end();
    });
    stream.on("error", (err: Error) =>
      f.log.debug({ err: err.message, requestId: f.requestId }, "tunnel stream error"),
    );
    stream.on("close", () => {
      // The provider, or the instance holding its tunnel, went away before answering: a request
      // that may go to another provider goes there, as after a refusal.
      if (!responded && !retry && f.retryOn && link.session.destroyed && !keepAlive?.committed)
        retry = !res.headersSent && !res.writableEnded;
      finish();
      if (retry || ending || res.writableEnded) return;
      // What the meter still holds is dropped: the answer ends here.
      if (through) stream.unpipe(through);
      through?.unpipe(res);
      if (!responded && bodyError) {
        status = bodyError.status;
        if (keepAlive?.committed) res.end(errorEvent(bodyError.envelope));
        else
          sendEnvelope(res, bodyError.status, bodyError.envelope, {
            [HEADER_REQUEST_ID]: f.requestId,
          });
      } else if (!responded && keepAlive?.committed) {
        const why = link.session.destroyed ? "disconnected" : "failed";
        res.end(
          errorEvent(envelope("upstream_error", `provider ${link.name} ${why} before answering`)),
        );
      } else if (!responded) {
        sendUpstreamError(
          res,
          link.session.destroyed
            ? `provider ${link.name} disconnected before answering`
            : `provider ${link.name} failed before answering (stream reset ${String(stream.rstCode)})`,
        );
      } else if (sse) {
        // An SSE consumer gets a final error event it can read, then the end of the stream.
        const why = link.session.destroyed ? "disconnected" : "failed";
        res.end(errorEvent(envelope("upstream_error", `provider ${link.name} ${why} mid-stream`)));
      } else res.destroy();
    });

    res.on("close", () => {
      if (retry) return;
      // Closed before the provider's stream was over and before the answer was all written:
      // the consumer hung up (the relay cuts an answer off only once the stream is over).
      left = !done && !res.writableFinished;
      // A consumer who left before the answer is not the provider's error.
      if (!responded) status = 0;
      book();
      resetStream(stream);
      finish();
    });
    f.req?.on("error", () => {
      resetStream(stream);
    });
  });
}
