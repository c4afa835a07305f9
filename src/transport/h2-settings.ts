/**
 * HTTP/2 tuning shared by both ends of the tunnel. Node's defaults (64 KiB windows, 16 KiB
 * frames) cut bulk throughput about tenfold over a WebSocket; larger windows let a 100 MB body
 * flow, and moderate frames keep a small SSE stream from waiting behind a bulk one.
 */
import type { Settings } from "node:http2";

/** Per-stream receive window. A slow consumer can make the sender hold at most this per stream. */
export const STREAM_WINDOW = 4 * 1024 * 1024;
/** Connection receive window, shared by all streams of one tunnel. */
export const CONNECTION_WINDOW = 32 * 1024 * 1024;
/** Largest DATA frame; also bounds how long one frame blocks others on the WebSocket. */
export const MAX_FRAME = 64 * 1024;

/**
 * Streams a relay may open at once on one tunnel unless the operator says otherwise. Each
 * service's own limit and queue (gateway/capacity.ts) still apply; this bounds the streams, and
 * the memory they hold, that a relay can pile on before any of them reaches a service.
 */
export const DEFAULT_MAX_STREAMS = 64;

export function tunnelSettings(maxConcurrentStreams?: number): Settings {
  return {
    initialWindowSize: STREAM_WINDOW,
    maxFrameSize: MAX_FRAME,
    enablePush: false,
    ...(maxConcurrentStreams === undefined ? {} : { maxConcurrentStreams }),
  };
}
