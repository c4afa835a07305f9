/**
 * The daemon's end of the tunnel: one outbound WebSocket to the relay, reconnected forever on
 * network errors, stopped for good when the relay refuses the key. Over it, this side is the
 * HTTP/2 *server*: each stream the relay opens is one consumer request, handed to `onRequest`.
 */
import { EventEmitter } from "node:events";
import http2, {
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from "node:http2";
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
import { CONNECTION_WINDOW, tunnelSettings } from "./h2-settings.ts";
import { WsDuplex } from "./ws-duplex.ts";

export type RequestHandler = (req: Http2ServerRequest, res: Http2ServerResponse) => void;

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
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: the daemon's capacity. */
  maxConcurrentStreams?: number;
  /** Heartbeat and ping interval until the relay's `welcome` says otherwise. */
  heartbeatMs?: number;
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
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
    this.#h2 = http2.createServer({ settings: tunnelSettings(options.maxConcurrentStreams) });
    this.#h2.on("request", options.onRequest);
    this.#h2.on("session", (session: Http2Session) => {
      this.#session = session;
      session.setLocalWindowSize(CONNECTION_WINDOW);
    });
    this.#h2.on("sessionError", (err) => {
      this.#opts.log.warn({ err: describeError(err) }, "tunnel HTTP/2 session error");
    });
  }

  get state(): TunnelState {
    return this.#state;
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
      this.#opts.log.warn(
        { err: describeError(err) },
        "ignoring a bad control message from the relay",
      );
      return;
    }
    if (msg.type === "welcome") {
      this.welcome = msg;
      this.#state = "connected";
      this.connects++;
      this.#heartbeatMs = msg.heartbeat_ms;
      this.#startHeartbeats(ws);
      this.emit("connected", msg);
    } else if (msg.type === "error") {
      this.#opts.log.warn({ code: msg.code }, "relay: %s", msg.message);
    } else {
      this.#opts.log.warn({ type: msg.type }, "ignoring a control message meant for a relay");
    }
  }

  #startHeartbeats(ws: WebSocket): void {
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
    this.#timer = null;
    this.#heartbeatTimer = null;
  }
}
