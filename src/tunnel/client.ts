/**
 * The daemon's end of the tunnel: one outbound WebSocket to the relay, reconnected forever on
 * network errors, stopped for good when the relay refuses the key. Over it, this side is the
 * HTTP/2 *server*: each stream the relay opens is one consumer request, handed to `onRequest`.
 */
import { EventEmitter } from "node:events";
import http2, { type Http2Session } from "node:http2";
import WebSocket from "ws";
import type { Logger } from "../log.ts";
import { UserError, describeError } from "../errors.ts";
import {
  CONNECT_PATH,
  CloseCode,
  TUNNEL_SUBPROTOCOL,
  encodeControl,
  parseControl,
  type HeartbeatMessage,
  type HelloMessage,
  type Manifest,
  type Unversioned,
  type WelcomeMessage,
} from "../protocol/index.ts";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import {
  CONNECTION_WINDOW,
  DEFAULT_MAX_STREAMS,
  tunnelSettings,
} from "../transport/h2-settings.ts";
import { WsDuplex } from "../transport/ws-duplex.ts";
import { exchange, type TunnelExchange } from "./exchange.ts";

export type { TunnelExchange } from "./exchange.ts";

/** Takes one stream the relay opened: the same object is its request and its response. */
export type RequestHandler = (req: TunnelExchange, res: TunnelExchange) => void;

/** What the daemon reports in each heartbeat, minus what the tunnel fills in. */
export type HeartbeatBody = Omit<Unversioned<HeartbeatMessage>, "type" | "seq" | "manifest">;

export interface TunnelClientOptions {
  /** Relay base URL, `ws://host:port` or `wss://…`; the connect path is appended. */
  relayUrl: string;
  apiKey: string;
  provider: { name: string; version: string };
  /** The current manifest; sent in `hello` and, when it changed, with the next heartbeat. */
  manifest: () => Manifest;
  heartbeat: () => HeartbeatBody;
  onRequest: RequestHandler;
  /**
   * HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: most requests the relay may have open on this
   * connection at once (default `DEFAULT_MAX_STREAMS`); streams past it are refused by HTTP/2.
   */
  maxConcurrentStreams?: number;
  /** Heartbeat and ping interval until the relay's `welcome` says otherwise. */
  heartbeatMs?: number;
  /**
   * How long the relay may take to answer `hello` with `welcome` once the WebSocket is open
   * (default 10 s); past it the connection is closed with 4400 and tried again with backoff.
   */
  welcomeTimeoutMs?: number;
  backoff?: BackoffOptions;
  log: Logger;
}

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

/** The heartbeat interval a relay may ask for is clamped into this range, in milliseconds. */
export const HEARTBEAT_RANGE_MS = { min: 1000, max: 10 * 60 * 1000 } as const;
const DEFAULT_WELCOME_TIMEOUT_MS = 10_000;

/** A relay's `heartbeat_ms`, clamped: too large overflows timers, zero would drop the tunnel. */
export function clampHeartbeat(ms: number): number {
  return Math.min(HEARTBEAT_RANGE_MS.max, Math.max(HEARTBEAT_RANGE_MS.min, ms));
}

function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

export type TunnelState = "idle" | "connecting" | "connected" | "waiting" | "refused" | "stopped";

/**
 * Events: `connected` (WelcomeMessage), `disconnected` (reason string), `retry` (delay ms, reason),
 * `refused` (UserError: the key or version was rejected; no more retries).
 */
export class TunnelClient extends EventEmitter {
  readonly #opts: TunnelClientOptions;
  readonly #backoff: Backoff;
  readonly #h2: http2.Http2Server;
  #state: TunnelState = "idle";
  #ws: WebSocket | null = null;
  #session: Http2Session | null = null;
  #timer: NodeJS.Timeout | null = null;
  #heartbeatTimer: NodeJS.Timeout | null = null;
  #welcomeTimer: NodeJS.Timeout | null = null;
  /** Whether this connection got its `welcome`: a relay sends one per connection. */
  #welcomed = false;
  #connectedAt = 0;
  #lastSeen = 0;
  #seq = 0;
  #sentManifest = "";
  #heartbeatMs: number;
  /** Number of times a connection was (re)established. */
  connects = 0;
  welcome: WelcomeMessage | null = null;

  constructor(options: TunnelClientOptions) {
    super();
    this.#opts = options;
    this.#backoff = new Backoff(options.backoff);
    this.#heartbeatMs = clampHeartbeat(options.heartbeatMs ?? 15_000);
    this.#h2 = http2.createServer({
      settings: tunnelSettings(options.maxConcurrentStreams ?? DEFAULT_MAX_STREAMS),
    });
    // The raw stream, not the compatibility layer's `request` event (`exchange.ts` says why).
    this.#h2.on("stream", (stream, headers) => {
      // A reset from the relay or a write after it errors the stream: nothing for us to do.
      stream.on("error", (err) =>
        this.#opts.log.debug({ err: describeError(err) }, "tunnel stream error"),
      );
      const x = exchange(stream, headers);
      options.onRequest(x, x);
    });
    this.#h2.on("session", (session: Http2Session) => {
      this.#session = session;
      session.setLocalWindowSize(CONNECTION_WINDOW);
      // The session is created while its WebSocket is the current one.
      const ws = this.#ws;
      // A session that ended (a bad preface, flood protection, a GOAWAY) serves nothing more:
      // an open WebSocket without it would be a tunnel that says ready and answers nothing.
      const dead = (why: string): void => {
        if (!ws || ws !== this.#ws || ws.readyState !== WebSocket.OPEN) return;
        this.#opts.log.warn("the tunnel's HTTP/2 session %s; reconnecting", why);
        this.#closeWith(ws, CloseCode.protocolError, `HTTP/2 session ${why}`);
      };
      session.on("close", () => dead("ended"));
      // A session told GOAWAY stays open until its socket ends, which over a WebSocket is never.
      session.on("goaway", () => dead("got GOAWAY"));
    });
    this.#h2.on("sessionError", (err) => {
      this.#opts.log.warn({ err: describeError(err) }, "tunnel HTTP/2 session error");
    });
  }

  get state(): TunnelState {
    return this.#state;
  }

  /** Unix milliseconds the current connection came up; null while not connected. */
  get connectedSince(): number | null {
    return this.#state === "connected" ? this.#connectedAt : null;
  }

  /** The heartbeat and ping interval in use: the relay's `heartbeat_ms`, clamped. */
  get heartbeatMs(): number {
    return this.#heartbeatMs;
  }

  /** Connect, and keep connecting until stopped or refused. */
  start(): void {
    if (this.#state !== "idle") return;
    this.#connect();
  }

  /** Tell the relay to send no new work over this connection. */
  drain(): void {
    this.#send({ type: "drain" });
  }

  /** Close the connection and stop reconnecting. In-flight streams are cut. */
  stop(): void {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    this.#clearTimers();
    this.#session?.destroy();
    this.#ws?.close(CloseCode.goingAway, "provider stopping");
    const ws = this.#ws;
    if (ws) setTimeout(() => ws.terminate(), 1000).unref();
  }

  #connect(): void {
    this.#state = "connecting";
    this.#welcomed = false;
    const url = this.#opts.relayUrl.replace(/\/+$/, "") + CONNECT_PATH;
    const ws = new WebSocket(url, TUNNEL_SUBPROTOCOL, {
      headers: { authorization: `Bearer ${this.#opts.apiKey}` },
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
      maxPayload: 16 * 1024 * 1024,
      ...(unmaskedIsSafe(url) ? { generateMask: zeroMask } : {}),
    });
    this.#ws = ws;
    let duplex: WsDuplex | null = null;

    ws.on("unexpected-response", (_req, res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      if (status === 401 || status === 403) {
        this.#refuse(
          new UserError(
            "key_refused",
            `the relay at ${this.#opts.relayUrl} refused the API key (HTTP ${status}). ` +
              "Check the key (CLUB_API_KEY, --api-key-file or `club-provider config set apiKey`).",
          ),
        );
      } else if (status === 426) {
        this.#refuse(
          new UserError(
            "version_refused",
            `the relay at ${this.#opts.relayUrl} does not speak ${TUNNEL_SUBPROTOCOL}: update club-provider or the relay so both speak the same version`,
          ),
        );
      } else {
        this.#opts.log.warn(
          { status, url },
          "relay answered the tunnel request with HTTP %d",
          status,
        );
      }
      ws.terminate();
    });

    ws.on("open", () => {
      this.#connectedAt = Date.now();
      this.#lastSeen = Date.now();
      this.#sentManifest = JSON.stringify(this.#opts.manifest());
      const hello: Unversioned<HelloMessage> = {
        type: "hello",
        provider: this.#opts.provider,
        manifest: JSON.parse(this.#sentManifest) as Manifest,
      };
      this.#send(hello);
      const waitMs = this.#opts.welcomeTimeoutMs ?? DEFAULT_WELCOME_TIMEOUT_MS;
      this.#welcomeTimer = setTimeout(
        () => this.#protocolError(ws, `no welcome within ${waitMs} ms`),
        waitMs,
      );
      this.#welcomeTimer.unref();
      duplex = new WsDuplex(ws);
      duplex.on("error", () => ws.terminate());
      this.#h2.emit("connection", duplex);
    });

    ws.on("message", (data: Buffer, isBinary) => {
      this.#lastSeen = Date.now();
      if (isBinary) duplex?.receive(data);
      else this.#onControl(data.toString("utf8"), ws);
    });
    ws.on("pong", () => {
      this.#lastSeen = Date.now();
    });
    ws.on("ping", () => {
      this.#lastSeen = Date.now();
    });
    ws.on("error", (err) => {
      this.#opts.log.debug({ err: describeError(err) }, "tunnel socket error");
      this.#lastError = describeError(err);
    });
    ws.on("close", (code, reasonBuf) => {
      const reason = reasonBuf.toString() || this.#lastError || `close code ${code}`;
      this.#lastError = "";
      duplex?.destroy();
      this.#session?.destroy();
      this.#session = null;
      this.#ws = null;
      this.#clearTimers();
      const wasConnected = this.#state === "connected";
      if (wasConnected) this.emit("disconnected", reason);
      if (this.#state === "stopped" || this.#state === "refused") return;
      if (code === CloseCode.unauthorized || code === CloseCode.unsupportedVersion) {
        this.#refuse(new UserError("tunnel_refused", `the relay closed the tunnel: ${reason}`));
        return;
      }
      if (wasConnected) this.#backoff.connectionEnded(Date.now() - this.#connectedAt);
      const delay = this.#backoff.next();
      this.#state = "waiting";
      this.#opts.log.info(
        { reason, retryInMs: delay },
        wasConnected ? "tunnel lost: %s; reconnecting" : "cannot reach the relay: %s; retrying",
        reason,
      );
      this.emit("retry", delay, reason);
      this.#timer = setTimeout(() => this.#connect(), delay);
    });
  }

  #lastError = "";

  #onControl(text: string, ws: WebSocket): void {
    let msg;
    try {
      msg = parseControl(text);
    } catch (err) {
      this.#protocolError(ws, `bad control message: ${describeError(err)}`);
      return;
    }
    if (msg.type === "welcome") {
      if (this.#welcomed) return this.#protocolError(ws, "a second welcome on one connection");
      this.#welcomed = true;
      if (this.#welcomeTimer) clearTimeout(this.#welcomeTimer);
      this.#welcomeTimer = null;
      this.welcome = msg;
      this.#state = "connected";
      this.connects++;
      const asked = msg.heartbeat_ms;
      this.#heartbeatMs = clampHeartbeat(asked);
      if (this.#heartbeatMs !== asked)
        this.#opts.log.warn(
          "the relay asked for heartbeats every %d ms; using %d ms",
          asked,
          this.#heartbeatMs,
        );
      this.#startHeartbeats(ws);
      this.emit("connected", msg);
    } else if (msg.type === "error") {
      this.#opts.log.warn({ code: msg.code }, "relay: %s", msg.message);
    } else {
      this.#protocolError(ws, `a ${msg.type} message, which only a provider sends`);
    }
  }

  /** The relay broke the protocol: close with 4400 (docs/protocol.md §7) and reconnect. */
  #protocolError(ws: WebSocket, reason: string): void {
    this.#opts.log.warn({ reason }, "closing the tunnel: %s", reason);
    this.#lastError = reason;
    this.#closeWith(ws, CloseCode.badMessage, reason);
  }

  /** Starts a close handshake, and cuts the socket if the relay does not finish it within 1 s. */
  #closeWith(ws: WebSocket, code: number, reason: string): void {
    if (ws.readyState === WebSocket.OPEN)
      ws.close(code, Buffer.from(reason).subarray(0, 120).toString());
    setTimeout(() => ws.terminate(), 1000).unref();
  }

  #startHeartbeats(ws: WebSocket): void {
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = setInterval(() => {
      if (Date.now() - this.#lastSeen > 2 * this.#heartbeatMs) {
        this.#opts.log.warn("the relay has been silent for two heartbeat intervals; reconnecting");
        ws.terminate();
        return;
      }
      ws.ping();
      this.sendHeartbeat();
    }, this.#heartbeatMs);
    this.#heartbeatTimer.unref();
  }

  /** Send a heartbeat now (the daemon calls this when its manifest changed). */
  sendHeartbeat(): void {
    if (this.#state !== "connected") return;
    const manifest = JSON.stringify(this.#opts.manifest());
    const changed = manifest !== this.#sentManifest;
    this.#sentManifest = manifest;
    const beat: Unversioned<HeartbeatMessage> = {
      type: "heartbeat",
      seq: ++this.#seq,
      ...this.#opts.heartbeat(),
      ...(changed ? { manifest: JSON.parse(manifest) as Manifest } : {}),
    };
    this.#send(beat);
  }

  #send(msg: Parameters<typeof encodeControl>[0]): void {
    const ws = this.#ws;
    if (ws?.readyState === WebSocket.OPEN) ws.send(encodeControl(msg));
  }

  #refuse(err: UserError): void {
    if (this.#state === "refused" || this.#state === "stopped") return;
    this.#state = "refused";
    this.#clearTimers();
    this.#opts.log.error(err.message);
    this.emit("refused", err);
  }

  #clearTimers(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    if (this.#welcomeTimer) clearTimeout(this.#welcomeTimer);
    this.#timer = null;
    this.#heartbeatTimer = null;
    this.#welcomeTimer = null;
  }
}
