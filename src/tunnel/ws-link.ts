/** Tunnel protocol 1 at the daemon: HTTP/2 inside a WebSocket (`club-tunnel.1`). */
import { EventEmitter } from "node:events";
import type http2 from "node:http2";
import type WebSocket from "ws";
import { TUNNEL_SUBPROTOCOL } from "../protocol/index.ts";
import { WsDuplex } from "../transport/ws-duplex.ts";
import type { TunnelLink } from "./link.ts";

/**
 * A client must mask every frame it sends, so that script in a browser cannot make a plain-HTTP
 * intermediary see bytes of its choosing (RFC 6455 §10.3). Masking costs a pass over every byte
 * in JavaScript on both ends (ws skips it for an all-zero key), about half the daemon's CPU on
 * bulk transfers. No intermediary can read a TLS connection, and none sits on loopback, so
 * there the key is zero; a plain `ws://` to another host keeps random keys.
 */
export function unmaskedIsSafe(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  return protocol === "wss:" || isLoopback(hostname);
}

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname);
}

function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

/** ws, loaded when a daemon first speaks protocol 1: a daemon on protocol 2 never holds its code. */
let wsModule: Promise<typeof WebSocket> | undefined;
function loadWs(): Promise<typeof WebSocket> {
  return (wsModule ??= import("ws").then((m) => m.default));
}

export class WsLink extends EventEmitter implements TunnelLink {
  readonly protocol = 1;
  #ws: WebSocket | undefined;
  #ended = false;

  /** Connects to `url`; once open, the HTTP/2 connection inside is handed to `server`. */
  constructor(url: string, apiKey: string, server: http2.Http2Server, handshakeTimeoutMs: number) {
    super();
    loadWs().then(
      (ws) => {
        if (this.#ended) this.emit("close", 1006, "");
        else this.#connect(ws, url, apiKey, server, handshakeTimeoutMs);
      },
      (err: unknown) => {
        this.emit("error", err);
        this.emit("close", 1006, "");
      },
    );
  }

  #connect(
    WebSocketClass: typeof WebSocket,
    url: string,
    apiKey: string,
    server: http2.Http2Server,
    handshakeTimeoutMs: number,
  ): void {
    const ws = new WebSocketClass(url, TUNNEL_SUBPROTOCOL, {
      headers: { authorization: `Bearer ${apiKey}` },
      perMessageDeflate: false,
      handshakeTimeout: handshakeTimeoutMs,
      maxPayload: 16 * 1024 * 1024,
      ...(unmaskedIsSafe(url) ? { generateMask: zeroMask } : {}),
    });
    this.#ws = ws;
    let duplex: WsDuplex | null = null;
    ws.on("unexpected-response", (_req, res) => {
      res.resume();
      this.emit("unexpected", res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on("open", () => {
      this.emit("open");
      duplex = new WsDuplex(ws);
      duplex.on("error", () => ws.terminate());
      server.emit("connection", duplex);
    });
    ws.on("message", (data: Buffer, isBinary) => {
      this.emit("alive");
      if (isBinary) duplex?.receive(data);
      else this.emit("control", data.toString("utf8"));
    });
    ws.on("pong", () => this.emit("alive"));
    ws.on("ping", () => this.emit("alive"));
    ws.on("error", (err) => this.emit("error", err));
    ws.on("close", (code, reason) => {
      duplex?.destroy();
      this.emit("close", code, reason.toString());
    });
  }

  get open(): boolean {
    return this.#ws !== undefined && this.#ws.readyState === this.#ws.OPEN;
  }

  send(text: string): void {
    if (this.open) this.#ws?.send(text);
  }

  ping(): void {
    if (this.open) this.#ws?.ping();
  }

  close(code: number, reason: string): void {
    this.#ended = true;
    const ws = this.#ws;
    if (!ws) return;
    if (this.open) ws.close(code, Buffer.from(reason).subarray(0, 120).toString());
    setTimeout(() => ws.terminate(), 1000).unref();
  }

  terminate(): void {
    this.#ended = true;
    this.#ws?.terminate();
  }
}
