/**
 * One provider connection at the relay: what carries it (a WebSocket on protocol 1, the socket
 * itself on protocol 2: `transport/carrier.ts`), the HTTP/2 client session over it (the relay
 * is the HTTP/2 client), the provider's manifest and its live load.
 */
import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders } from "node:http2";
import { randomBytes } from "node:crypto";
import type { Logger } from "../log.ts";
import { describeError } from "../errors.ts";
import {
  CloseCode,
  ControlMessageError,
  DEFAULT_CONTROL_LIMITS,
  encodeControl,
  parseControl,
  pauseOf,
  type HeartbeatMessage,
} from "../protocol/index.ts";
import type { RelayCarrier } from "../transport/carrier.ts";
import { CONNECTION_WINDOW } from "../transport/h2-settings.ts";
import { ProviderState } from "./provider-state.ts";
import { RateLimiter } from "./rate-limit.ts";
import type { Registry } from "./registry.ts";

/** What one member's providers may open and send; each has a relay flag. */
export interface ProviderLimits {
  /** Tunnels one member may hold open at once, before and after hello (default 8). */
  maxTunnelsPerMember: number;
  /** Largest control message, so largest manifest, in bytes (default 1 MiB). */
  maxControlBytes: number;
  /** Most models one manifest may advertise (default 1000). */
  maxModels: number;
  /** Control messages per second per tunnel, sustained (default 2; heartbeats come every 15 s). */
  controlPerSecond: number;
  /** Control messages a tunnel may send at once (default 20). */
  controlBurst: number;
}

export const DEFAULT_PROVIDER_LIMITS: ProviderLimits = {
  maxTunnelsPerMember: 8,
  maxControlBytes: DEFAULT_CONTROL_LIMITS.maxBytes,
  maxModels: DEFAULT_CONTROL_LIMITS.maxModels,
  controlPerSecond: 2,
  controlBurst: 20,
};

export interface ProviderLinkOptions {
  member: string;
  registry: Registry;
  heartbeatMs: number;
  /** How long a new connection may take to say hello. */
  helloTimeoutMs?: number;
  limits?: ProviderLimits;
  log: Logger;
}

export class ProviderLink extends ProviderState {
  readonly id = `conn_${randomBytes(6).toString("hex")}`;
  readonly member: string;
  readonly connectedAt = Date.now();
  /** The provider's last heartbeat, whole (loads, GPUs). */
  lastHeartbeat: HeartbeatMessage | null = null;
  readonly session: ClientHttp2Session;
  /** The tunnel protocol this provider speaks (1: WebSocket; 2: HTTP/2 on the socket). */
  readonly protocol: 1 | 2;
  readonly #carrier: RelayCarrier;
  readonly #opts: ProviderLinkOptions;
  readonly #log: Logger;
  #lastSeen = Date.now();
  readonly #limits: ProviderLimits;
  readonly #controlRate: RateLimiter;
  #timer: NodeJS.Timeout;
  #closed = false;

  constructor(carrier: RelayCarrier, options: ProviderLinkOptions) {
    super();
    this.#carrier = carrier;
    this.protocol = carrier.protocol;
    this.#opts = options;
    this.member = options.member;
    this.#limits = options.limits ?? DEFAULT_PROVIDER_LIMITS;
    this.#controlRate = new RateLimiter({
      perSecond: this.#limits.controlPerSecond,
      burst: this.#limits.controlBurst,
    });
    this.#log = options.log.child({ conn: this.id, member: options.member });
    this.session = carrier.session;
    if (carrier.protocol === 1)
      this.session.on("connect", () => this.session.setLocalWindowSize(CONNECTION_WINDOW));
    this.session.on("error", (err) =>
      this.#log.warn({ err: describeError(err) }, "tunnel HTTP/2 error"),
    );
    this.session.on("close", () => this.close(CloseCode.protocolError, "HTTP/2 session closed"));

    carrier.start({
      control: (data) => {
        this.#lastSeen = Date.now();
        if (this.#controlRate.take("control") > 0)
          this.close(
            CloseCode.tooManyMessages,
            `more than ${this.#limits.controlPerSecond} control messages per second`,
          );
        else this.#guarded(data);
      },
      alive: () => (this.#lastSeen = Date.now()),
      error: (err) => this.#log.debug({ err: describeError(err) }, "provider socket error"),
      closed: (reason) => this.#teardown(reason),
    });

    const helloTimeout = options.helloTimeoutMs ?? 10_000;
    this.#timer = setInterval(
      () => {
        const silent = Date.now() - this.#lastSeen;
        if (!this.manifest && Date.now() - this.connectedAt > helloTimeout) {
          this.close(CloseCode.badMessage, "no hello");
        } else if (silent > 2 * options.heartbeatMs) {
          this.#log.warn("provider %s silent for %d ms; dropping it", this.name, silent);
          carrier.terminate();
        } else carrier.ping();
      },
      Math.min(options.heartbeatMs, helloTimeout),
    );
    this.#timer.unref();
  }

  get routable(): boolean {
    return (
      this.manifest !== null &&
      !this.draining &&
      this.paused === undefined &&
      !this.#closed &&
      !this.session.destroyed
    );
  }

  request(headers: OutgoingHttpHeaders, endStream: boolean): ClientHttp2Stream {
    return this.session.request(headers, { endStream });
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#carrier.close(code, reason);
    this.#teardown(reason);
  }

  /** Cuts the connection now, telling the provider nothing (the relay is stopping). */
  terminate(): void {
    this.#carrier.terminate();
    this.#teardown("terminated");
  }

  #teardown(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#opts.registry.remove(this);
    if (!this.session.destroyed) this.session.destroy();
    if (this.manifest)
      this.#log.info({ provider: this.name }, "provider %s disconnected: %s", this.name, reason);
  }

  /**
   * The last line of defence for this connection: a fault of ours while handling a message
   * closes this tunnel (1011) and is logged; the relay and every other tunnel go on.
   */
  #guarded(data: Buffer): void {
    try {
      this.#onControl(data.toString("utf8"));
    } catch (err) {
      this.#log.error(
        { err: describeError(err), provider: this.name },
        "handling a control message failed; closing this tunnel",
      );
      this.close(CloseCode.internalError, "relay error");
    }
  }

  #onControl(text: string): void {
    let msg;
    try {
      msg = parseControl(text, {
        maxBytes: this.#limits.maxControlBytes,
        maxModels: this.#limits.maxModels,
      });
    } catch (err) {
      const message = err instanceof ControlMessageError ? err.message : describeError(err);
      this.#log.warn({ reason: message }, "bad control message from provider");
      this.#carrier.send(
        encodeControl({ type: "error", code: "bad_message", message, fatal: !this.manifest }),
      );
      if (!this.manifest) this.close(CloseCode.badMessage, message.slice(0, 120));
      return;
    }
    switch (msg.type) {
      case "hello": {
        if (this.manifest) return;
        this.name = msg.provider.name;
        this.version = msg.provider.version;
        this.setManifest(msg.manifest);
        // A rig that starts paused says so here, so it is never routable before its heartbeat.
        this.pause = pauseOf(msg);
        this.#opts.registry.add(this);
        this.#carrier.send(
          encodeControl({
            type: "welcome",
            connection_id: this.id,
            member: this.member,
            heartbeat_ms: this.#opts.heartbeatMs,
          }),
        );
        this.#log.info(
          {
            provider: this.name,
            version: this.version,
            protocol: this.protocol,
            models: this.cards.map((c) => c.id),
            ...(msg.paused === undefined ? {} : { paused: msg.paused }),
          },
          "provider %s connected with %d model(s)",
          this.name,
          this.cards.length,
        );
        return;
      }
      case "heartbeat":
        if (!this.manifest) return; // before hello: nothing to attach it to
        if (msg.paused !== this.pause?.paused)
          this.#log.info(
            { provider: this.name, paused: msg.paused ?? null },
            msg.paused ? "provider %s paused: %s" : "provider %s serves again",
            this.name,
            msg.paused,
          );
        {
          const before = this.pause;
          this.lastHeartbeat = msg;
          this.pause = pauseOf(msg);
          if (msg.manifest) this.setManifest(msg.manifest);
          if (
            msg.manifest ||
            msg.paused !== before?.paused ||
            JSON.stringify(msg.paused_models ?? {}) !== JSON.stringify(before?.paused_models ?? {})
          )
            this.#opts.registry.changed(this);
        }
        return;
      case "drain":
        this.draining = true;
        this.#opts.registry.changed(this);
        this.#log.info({ provider: this.name }, "provider %s is draining", this.name);
        return;
      default:
        this.#log.warn({ type: msg.type }, "ignoring a relay-only control message from a provider");
    }
  }
}
