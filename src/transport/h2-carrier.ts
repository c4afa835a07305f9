/**
 * Tunnel protocol 2 at the relay: after `101 Switching Protocols` the upgraded socket carries
 * HTTP/2 itself (`club-tunnel.2`). Node's HTTP/2 then reads and writes the socket in C++, with
 * no JavaScript stream, WebSocket framing or masking between nghttp2 and the kernel.
 *
 * The relay stays the HTTP/2 client. It opens the control stream first (`CONTROL_PATH`); both
 * bodies of that stream carry control messages, one JSON object per line. Liveness is HTTP/2
 * PING; a close code and reason travel in GOAWAY (its error code and debug data).
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { CONTROL_PATH } from "../protocol/index.ts";
import type { CarrierEvents, RelayCarrier } from "./carrier.ts";
import { CONNECTION_WINDOW, tunnelSettings } from "./h2-settings.ts";
import { LineSplitter } from "./lines.ts";

/** The answer that switches a connect request to protocol 2. */
export const SWITCH_TO_2 =
  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: club-tunnel.2\r\nConnection: Upgrade\r\n\r\n";

/** GOAWAY debug data is the close reason, cut to this many bytes (as a WebSocket close's). */
const MAX_REASON_BYTES = 120;

export interface H2CarrierOptions {
  /** Longest control line the provider may send, in bytes. */
  maxControlBytes: number;
}

export class H2Carrier implements RelayCarrier {
  readonly protocol = 2;
  readonly session: ClientHttp2Session;
  /** A `net.Socket` from the HTTP server's `upgrade` event, typed there as a Duplex. */
  readonly #socket: Duplex & Partial<Pick<Socket, "bytesRead">>;
  readonly #control: ClientHttp2Stream;
  readonly #lines: LineSplitter;
  #events: CarrierEvents | null = null;
  #bytesRead = 0;
  #closed = false;
  /** Why the peer said it closed (its GOAWAY), for the `closed` reason. */
  #peerReason = "";

  /** Takes the socket of a connect request the caller answered with `SWITCH_TO_2`. */
  constructor(socket: Duplex, head: Buffer, options: H2CarrierOptions) {
    this.#socket = socket;
    if (head.length > 0) socket.unshift(head);
    this.#lines = new LineSplitter(options.maxControlBytes);
    this.session = http2.connect("http://provider.tunnel", {
      createConnection: () => socket,
      settings: tunnelSettings(),
    });
    this.session.on("connect", () => this.session.setLocalWindowSize(CONNECTION_WINDOW));
    this.#control = this.session.request(
      { ":method": "POST", ":path": CONTROL_PATH, "content-type": "application/x-ndjson" },
      { endStream: false },
    );
  }

  start(events: CarrierEvents): void {
    this.#events = events;
    const session = this.session;
    session.on("ping", () => events.alive());
    session.on("goaway", (code: number, _last: number, data?: Buffer) => {
      this.#peerReason = `closed (${code}${data?.length ? ` ${data.toString()}` : ""})`;
    });
    session.on("close", () => this.#finish(this.#peerReason || "closed (HTTP/2 session ended)"));
    this.#socket.on("error", (err) => events.error(err));
    // The HTTP server's sockets allow half-open connections, and HTTP/2 does not look at the
    // socket's end: without this a provider that went away would hold its slot until the
    // silence check.
    this.#socket.on("end", () => this.#finish(this.#peerReason || "closed (the provider hung up)"));
    this.#socket.on("close", () => this.#finish(this.#peerReason || "closed (socket closed)"));
    const control = this.#control;
    control.on("error", (err) => events.error(err));
    control.on("data", (chunk: Buffer) => {
      events.alive();
      const ok = this.#lines.push(chunk, (line) => events.control(line));
      if (!ok) this.close(1009, "a control message longer than the limit");
    });
    // The control stream lives as long as the tunnel: its end is the provider leaving.
    const ended = (): void => {
      if (!this.#closed) this.close(1002, "the control stream ended");
    };
    control.on("end", ended);
    control.on("close", ended);
  }

  send(text: string): void {
    if (!this.#control.destroyed && !this.#control.writableEnded) this.#control.write(text + "\n");
  }

  ping(): void {
    // Bytes read since the last ping are a sign of life too: under a bulk transfer they are.
    const read = this.#socket.bytesRead ?? 0;
    if (read !== this.#bytesRead) this.#events?.alive();
    this.#bytesRead = read;
    if (this.session.destroyed) return;
    try {
      this.session.ping((err) => {
        if (!err) this.#events?.alive();
      });
    } catch {
      // Too many pings unanswered: the silence check will end the tunnel.
    }
  }

  close(code: number, reason: string): void {
    if (!this.session.destroyed) {
      const data = Buffer.from(reason).subarray(0, MAX_REASON_BYTES);
      this.session.goaway(code, 0, data);
      this.session.destroy();
    }
    setTimeout(() => this.#socket.destroy(), 1000).unref();
  }

  terminate(): void {
    this.session.destroy();
    this.#socket.destroy();
  }

  #finish(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
    this.#events?.closed(reason);
  }
}
