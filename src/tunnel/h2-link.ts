/**
 * Tunnel protocol 2 at the daemon: an HTTP/1.1 connect request asking `Upgrade: club-tunnel.2`;
 * after `101 Switching Protocols` the socket carries HTTP/2 itself, this side the server.
 * Node's HTTP/2 reads and writes the socket natively: no JavaScript stream, no WebSocket frames.
 *
 * The relay's first stream (`CONTROL_PATH`) carries control messages both ways, one JSON object
 * per line; every other stream is a request. Liveness is HTTP/2 PING. A close code and reason
 * travel in GOAWAY: its error code is the close code, its debug data the reason.
 */
import { EventEmitter } from "node:events";
import http from "node:http";
import http2, {
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from "node:http2";
import https from "node:https";
import type { Socket } from "node:net";
import { CONTROL_PATH, CloseCode, TUNNEL_UPGRADE_2 } from "../protocol/index.ts";
import { CONNECTION_WINDOW, tunnelSettings } from "../transport/h2-settings.ts";
import { LineSplitter } from "../transport/lines.ts";
import type { TunnelLink } from "./link.ts";

/** Largest control message the daemon takes from a relay (as protocol 1's WebSocket message). */
const MAX_CONTROL_BYTES = 16 * 1024 * 1024;

/** `ws://` and `wss://` relay URLs name the HTTP request protocol 2 makes. */
export function httpUrl(url: string): URL {
  const u = new URL(url);
  if (u.protocol === "ws:") u.protocol = "http:";
  else if (u.protocol === "wss:") u.protocol = "https:";
  return u;
}

export class H2Link extends EventEmitter implements TunnelLink {
  readonly protocol = 2;
  readonly #req: http.ClientRequest;
  #socket: Socket | null = null;
  #session: ServerHttp2Session | null = null;
  #control: ServerHttp2Stream | null = null;
  /** Control messages sent before the relay opened the control stream. */
  #pending: string[] = [];
  readonly #lines = new LineSplitter(MAX_CONTROL_BYTES);
  #bytesRead = 0;
  #closed = false;
  #code = 1006;
  #reason = "";

  /**
   * Connects to `url` (the relay's connect URL). `maxConcurrentStreams` bounds the request
   * streams; the control stream is one more. A relay that takes the connection but gives no
   * answer within `handshakeTimeoutMs` counts as one that answered 408: something in the way
   * (a proxy that knows only WebSocket upgrades) holds protocol 2's request.
   */
  constructor(
    url: string,
    apiKey: string,
    maxConcurrentStreams: number,
    handshakeTimeoutMs: number,
  ) {
    super();
    const target = httpUrl(url);
    const request = target.protocol === "https:" ? https.request : http.request;
    const req = (this.#req = request(target, {
      headers: {
        connection: "Upgrade",
        upgrade: TUNNEL_UPGRADE_2,
        authorization: `Bearer ${apiKey}`,
      },
      timeout: handshakeTimeoutMs,
    }));
    req.on("upgrade", (res, socket: Socket, head: Buffer) => {
      if ((res.headers.upgrade ?? "").toLowerCase() !== TUNNEL_UPGRADE_2) {
        socket.destroy();
        this.emit("unexpected", 426);
        this.#finish(1006, `the relay switched to ${res.headers.upgrade ?? "nothing"}`);
        return;
      }
      this.#attach(socket, head, maxConcurrentStreams + 1);
    });
    req.on("response", (res) => {
      res.resume();
      this.emit("unexpected", res.statusCode ?? 0);
      req.destroy();
      this.#finish(1006, `HTTP ${res.statusCode ?? 0}`);
    });
    req.on("timeout", () => {
      if (req.socket && !req.socket.connecting) this.emit("unexpected", 408);
      req.destroy(new Error(`the relay did not answer within ${handshakeTimeoutMs} ms`));
    });
    req.on("error", (err) => {
      this.emit("error", err);
      this.#finish(1006, "");
    });
    req.end();
  }

  get open(): boolean {
    return this.#session !== null && !this.#closed;
  }

  #attach(socket: Socket, head: Buffer, maxStreams: number): void {
    this.#socket = socket;
    // The request's timeout would otherwise cut an idle tunnel.
    socket.setTimeout(0);
    socket.setNoDelay(true);
    if (head.length > 0) socket.unshift(head);
    socket.on("error", (err) => this.emit("error", err));
    // HTTP/2 does not look at the socket's end; a relay that hung up is gone.
    socket.on("end", () => this.#finish(this.#code, this.#reason || "the relay hung up"));
    socket.on("close", () => this.#finish(this.#code, this.#reason || "the socket closed"));
    const session = http2.performServerHandshake(socket, { settings: tunnelSettings(maxStreams) });
    this.#session = session;
    session.setLocalWindowSize(CONNECTION_WINDOW);
    session.on("stream", (stream, headers) => this.#onStream(stream, headers));
    session.on("ping", () => this.emit("alive"));
    session.on("goaway", (code: number, _last: number, data?: Buffer) => {
      this.#code = code === 0 ? CloseCode.normal : code;
      this.#reason = data?.toString() ?? "";
    });
    session.on("error", (err) => this.emit("error", err));
    session.on("close", () =>
      this.#finish(this.#code, this.#reason || "the tunnel's HTTP/2 session ended"),
    );
    this.emit("open");
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    if (this.#control) {
      this.emit("stream", stream, headers);
      return;
    }
    stream.on("error", () => {});
    if (headers[":path"] !== CONTROL_PATH || headers[":method"] !== "POST") {
      stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
      this.close(CloseCode.badMessage, "the relay's first stream was not the control stream");
      return;
    }
    this.#control = stream;
    stream.respond({ ":status": 200, "content-type": "application/x-ndjson" });
    for (const text of this.#pending) stream.write(text + "\n");
    this.#pending = [];
    stream.on("data", (chunk: Buffer) => {
      this.emit("alive");
      const ok = this.#lines.push(chunk, (line) => this.emit("control", line.toString("utf8")));
      if (!ok) this.close(CloseCode.tooBig, "a control message longer than 16 MiB");
    });
    const ended = (): void => {
      if (!this.#closed) this.close(CloseCode.protocolError, "the control stream ended");
    };
    stream.on("end", ended);
    stream.on("close", ended);
  }

  send(text: string): void {
    if (this.#closed) return;
    const control = this.#control;
    if (!control) this.#pending.push(text);
    else if (!control.destroyed && !control.writableEnded) control.write(text + "\n");
  }

  ping(): void {
    const session = this.#session;
    if (!session || session.destroyed || !this.#socket) return;
    // Bytes read since the last ping are a sign of life too: under a bulk transfer they are.
    const read = this.#socket.bytesRead;
    if (read !== this.#bytesRead) this.emit("alive");
    this.#bytesRead = read;
    try {
      session.ping((err) => {
        if (!err) this.emit("alive");
      });
    } catch {
      // Too many pings unanswered: the silence check will end the tunnel.
    }
  }

  close(code: number, reason: string): void {
    const session = this.#session;
    if (session && !session.destroyed) {
      this.#code = code;
      this.#reason = reason;
      session.goaway(code, 0, Buffer.from(reason).subarray(0, 120));
      session.destroy();
    }
    const socket = this.#socket;
    if (socket) setTimeout(() => socket.destroy(), 1000).unref();
    else this.terminate();
  }

  terminate(): void {
    this.#session?.destroy();
    this.#socket?.destroy();
    if (!this.#socket) {
      this.#req.destroy();
      this.#finish(1006, "terminated");
    }
  }

  #finish(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = [];
    this.#socket?.destroy();
    this.emit("close", code, reason);
  }
}
