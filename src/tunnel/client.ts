/**
 * The daemon's end of the tunnel: one outbound connection to the relay, reconnected forever on
 * network errors, stopped for good when the relay refuses the key. Over it, this side is the
 * HTTP/2 *server*: each stream the relay opens is one consumer request, handed to `onRequest`.
 *
 * Protocol 2 (`h2-link.ts`, HTTP/2 on the upgraded socket) is tried first; a relay that answers
 * it with a 4xx other than 401/403/429 speaks only protocol 1 (`ws-link.ts`, HTTP/2 inside a
 * WebSocket: `refusal.ts`), and is remembered as such for the life of the process.
 */
import { EventEmitter } from "node:events";
import http2, {
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { TunnelProtocolSetting } from "../config.ts";
import type { Logger } from "../log.ts";
import { UserError, describeError } from "../errors.ts";
import {
  CONNECT_PATH,
  CloseCode,
  TUNNEL_SUBPROTOCOL,
  TUNNEL_UPGRADE_2,
  encodeControl,
  parseControl,
  pauseOf,
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
import { exchange, type TunnelExchange } from "./exchange.ts";
import { H2Link } from "./h2-link.ts";
import { classifyRefusal } from "./refusal.ts";
import type { TunnelLink } from "./link.ts";
import { WsLink } from "./ws-link.ts";

export { unmaskedIsSafe } from "./ws-link.ts";

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
  /** How long the relay may take to answer the connect request (default 10 s). */
  handshakeTimeoutMs?: number;
  backoff?: BackoffOptions;
  /**
   * Which tunnel protocol to speak: 2 (HTTP/2 on the socket), 1 (HTTP/2 in a WebSocket), or
   * `"auto"` (the default): 2, falling back to 1 for a relay that does not speak it.
   */
  tunnelProtocol?: TunnelProtocolSetting;
  log: Logger;
}

/** Relay URLs that answered a protocol 2 request as a relay that speaks only protocol 1. */
const speaksOnly1 = new Set<string>();

/** The heartbeat interval a relay may ask for is clamped into this range, in milliseconds. */
export const HEARTBEAT_RANGE_MS = { min: 1000, max: 10 * 60 * 1000 } as const;
const DEFAULT_WELCOME_TIMEOUT_MS = 10_000;

/** A relay's `heartbeat_ms`, clamped: too large overflows timers, zero would drop the tunnel. */
export function clampHeartbeat(ms: number): number {
  return Math.min(HEARTBEAT_RANGE_MS.max, Math.max(HEARTBEAT_RANGE_MS.min, ms));
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
  readonly #maxStreams: number;
  #state: TunnelState = "idle";
  #link: TunnelLink | null = null;
  #session: Http2Session | null = null;
  #timer: NodeJS.Timeout | null = null;
  #heartbeatTimer: NodeJS.Timeout | null = null;
  #welcomeTimer: NodeJS.Timeout | null = null;
  /** Whether this connection got its `welcome`: a relay sends one per connection. */
  #welcomed = false;
  /** The next attempt is protocol 1 after protocol 2 was refused: it goes at once. */
  #fallingBack = false;
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
    this.#maxStreams = options.maxConcurrentStreams ?? DEFAULT_MAX_STREAMS;
    // Protocol 1's HTTP/2 connections (inside a WebSocket); protocol 2 makes its own sessions.
    this.#h2 = http2.createServer({ settings: tunnelSettings(this.#maxStreams) });
    this.#h2.on("stream", this.#onStream);
    this.#h2.on("session", (session: Http2Session) => {
      this.#session = session;
      session.setLocalWindowSize(CONNECTION_WINDOW);
      // The session is created while its WebSocket is the current one.
      const link = this.#link;
      // A session that ended (a bad preface, flood protection, a GOAWAY) serves nothing more:
      // an open WebSocket without it would be a tunnel that says ready and answers nothing.
      const dead = (why: string): void => {
        if (!link || link !== this.#link || !link.open) return;
        this.#opts.log.warn("the tunnel's HTTP/2 session %s; reconnecting", why);
        link.close(CloseCode.protocolError, `HTTP/2 session ${why}`);
      };
      session.on("close", () => dead("ended"));
      // A session told GOAWAY stays open until its socket ends, which over a WebSocket is never.
      session.on("goaway", () => dead("got GOAWAY"));
    });
    this.#h2.on("sessionError", (err) => {
      this.#opts.log.warn({ err: describeError(err) }, "tunnel HTTP/2 session error");
    });
  }

  /** The raw stream, not the compatibility layer's `request` event (`exchange.ts` says why). */
  readonly #onStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void => {
    // A reset from the relay or a write after it errors the stream: nothing for us to do.
    stream.on("error", (err) =>
      this.#opts.log.debug({ err: describeError(err) }, "tunnel stream error"),
    );
    const x = exchange(stream, headers);
    this.#opts.onRequest(x, x);
  };

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

  /** The tunnel protocol of the current (or last) connection; null before the first. */
  get protocol(): 1 | 2 | null {
    return this.#link?.protocol ?? this.#lastProtocol;
  }

  #lastProtocol: 1 | 2 | null = null;

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
    this.#link?.close(CloseCode.goingAway, "provider stopping");
  }

  /** The protocol to ask for next: the setting, or 2 unless this relay proved to speak only 1. */
  #nextProtocol(): 1 | 2 {
    const setting = this.#opts.tunnelProtocol ?? "auto";
    if (setting !== "auto") return setting;
    return speaksOnly1.has(this.#opts.relayUrl) ? 1 : 2;
  }

  #connect(): void {
    this.#state = "connecting";
    this.#welcomed = false;
    this.#fallingBack = false;
    const url = this.#opts.relayUrl.replace(/\/+$/, "") + CONNECT_PATH;
    const protocol = this.#nextProtocol();
    const handshakeMs = this.#opts.handshakeTimeoutMs ?? 10_000;
    const link: TunnelLink =
      protocol === 2
        ? new H2Link(url, this.#opts.apiKey, this.#maxStreams, handshakeMs)
        : new WsLink(url, this.#opts.apiKey, this.#h2, handshakeMs);
    this.#link = link;
    this.#lastProtocol = protocol;

    link.on("unexpected", (status: number) => this.#onRefusal(status, protocol));
    link.on("open", () => {
      this.#connectedAt = Date.now();
      this.#lastSeen = Date.now();
      this.#sentManifest = JSON.stringify(this.#opts.manifest());
      const hello: Unversioned<HelloMessage> = {
        type: "hello",
        provider: this.#opts.provider,
        manifest: JSON.parse(this.#sentManifest) as Manifest,
        ...pauseOf(this.#opts.heartbeat()),
      };
      this.#send(hello);
      const waitMs = this.#opts.welcomeTimeoutMs ?? DEFAULT_WELCOME_TIMEOUT_MS;
      this.#welcomeTimer = setTimeout(
        () => this.#protocolError(link, `no welcome within ${waitMs} ms`),
        waitMs,
      );
      this.#welcomeTimer.unref();
    });
    link.on("stream", this.#onStream);
    link.on("control", (text: string) => {
      this.#lastSeen = Date.now();
      this.#onControl(text, link);
    });
    link.on("alive", () => {
      this.#lastSeen = Date.now();
    });
    link.on("error", (err: unknown) => {
      this.#opts.log.debug({ err: describeError(err) }, "tunnel socket error");
      this.#lastError = describeError(err);
    });
    link.on("close", (code: number, closeReason: string) => {
      const reason = closeReason || this.#lastError || `close code ${code}`;
      this.#lastError = "";
      this.#session?.destroy();
      this.#session = null;
      this.#link = null;
      this.#clearTimers();
      const wasConnected = this.#state === "connected";
      if (wasConnected) this.emit("disconnected", reason);
      if (this.#state === "stopped" || this.#state === "refused") return;
      if (code === CloseCode.unauthorized || code === CloseCode.unsupportedVersion) {
        this.#refuse(new UserError("tunnel_refused", `the relay closed the tunnel: ${reason}`));
        return;
      }
      if (wasConnected) this.#backoff.connectionEnded(Date.now() - this.#connectedAt);
      if (this.#fallingBack) {
        this.#state = "waiting";
        this.#timer = setTimeout(() => this.#connect(), 0);
        return;
      }
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

  /** The relay answered the connect request with `status` instead of switching protocols. */
  #onRefusal(status: number, protocol: 1 | 2): void {
    const relay = this.#opts.relayUrl;
    switch (classifyRefusal(status, protocol, this.#opts.tunnelProtocol ?? "auto")) {
      case "key":
        return this.#refuse(
          new UserError(
            "key_refused",
            `the relay at ${relay} refused the API key (HTTP ${status}). ` +
              "Check the key (CLUB_API_KEY, --api-key-file or `club-provider config set apiKey`).",
          ),
        );
      case "fallback":
        speaksOnly1.add(relay);
        this.#fallingBack = true;
        this.#opts.log.info(
          { status },
          "the relay at %s does not speak %s (HTTP %d); using %s",
          relay,
          TUNNEL_UPGRADE_2,
          status,
          TUNNEL_SUBPROTOCOL,
        );
        return;
      case "version": {
        const name = protocol === 2 ? TUNNEL_UPGRADE_2 : TUNNEL_SUBPROTOCOL;
        return this.#refuse(
          new UserError(
            "version_refused",
            `the relay at ${relay} does not speak ${name}: update club-provider or the relay so both speak the same version` +
              (protocol === 2 ? ", or set tunnelProtocol to auto or 1" : ""),
          ),
        );
      }
      case "retry":
        this.#opts.log.warn(
          { status, url: relay },
          "relay answered the tunnel request with HTTP %d",
          status,
        );
    }
  }

  #lastError = "";

  #onControl(text: string, link: TunnelLink): void {
    let msg;
    try {
      msg = parseControl(text);
    } catch (err) {
      this.#protocolError(link, `bad control message: ${describeError(err)}`);
      return;
    }
    if (msg.type === "welcome") {
      if (this.#welcomed) return this.#protocolError(link, "a second welcome on one connection");
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
      this.#startHeartbeats(link);
      this.emit("connected", msg);
    } else if (msg.type === "error") {
      this.#opts.log.warn({ code: msg.code }, "relay: %s", msg.message);
    } else {
      this.#protocolError(link, `a ${msg.type} message, which only a provider sends`);
    }
  }

  /** The relay broke the protocol: close with 4400 (docs/protocol.md §7) and reconnect. */
  #protocolError(link: TunnelLink, reason: string): void {
    this.#opts.log.warn({ reason }, "closing the tunnel: %s", reason);
    this.#lastError = reason;
    link.close(CloseCode.badMessage, reason);
  }

  #startHeartbeats(link: TunnelLink): void {
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = setInterval(() => {
      if (Date.now() - this.#lastSeen > 2 * this.#heartbeatMs) {
        this.#opts.log.warn("the relay has been silent for two heartbeat intervals; reconnecting");
        link.terminate();
        return;
      }
      link.ping();
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
    const link = this.#link;
    if (link?.open) link.send(encodeControl(msg));
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
