/**
 * Resetting an HTTP/2 stream so that the peer hears it, whatever else listens to the stream.
 *
 * `stream.close(code)` on a stream whose own body is still being written does two things in
 * Node (22, 24 and 26 alike): it first emits `aborted` and ends the writable side, which sends
 * END_STREAM, and only then submits the RST_STREAM. A `pipeline` (or `finished`) attached to
 * the stream destroys it during that `aborted`, before the RST_STREAM is submitted, and then
 * none is sent at all: the peer waits on a stream that the sender already counts closed, and
 * once the peer opens its window again, the sender's C++ makes frames for it without end, its
 * event loop stopped and its memory growing by hundreds of MB a second. A consumer who left in
 * the middle of an upload held the daemon's engine that way, and a few hundred froze the relay.
 * Without a pipeline the RST_STREAM does leave, but after an END_STREAM that makes the cut body
 * look whole for a moment.
 *
 * Destroying the stream with an error resets it at once, with INTERNAL_ERROR and without
 * END_STREAM, pipeline or not. Once the writable side has ended (a body sent whole, an answer
 * written), `close(code)` sends the code asked for.
 */
import http2, { type Http2Stream } from "node:http2";

/** Why a stream was reset while its body was still being written (the error it is destroyed with). */
export class StreamCut extends Error {
  constructor() {
    super("the stream was reset before its body was all sent");
    this.name = "StreamCut";
  }
}

/**
 * Resets `stream` (CANCEL unless told) and drops what it still holds, so it closes. A client
 * stream whose answer arrived whole but unread (a refusal's body, there in the same read as its
 * headers) says `close` only once that data is read: the rest is read away.
 */
export function resetStream(stream: Http2Stream, code = http2.constants.NGHTTP2_CANCEL): void {
  stream.unpipe();
  stream.resume();
  if (stream.closed || stream.destroyed) return;
  if (stream.writableEnded) stream.close(code);
  else stream.destroy(new StreamCut());
}
