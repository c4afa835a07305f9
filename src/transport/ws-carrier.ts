/** Tunnel protocol 1 at the relay: HTTP/2 inside a WebSocket (`club-tunnel.1`). */
import http2, { type ClientHttp2Session } from "node:http2";
import type WebSocket from "ws";
import type { CarrierEvents, RelayCarrier } from "./carrier.ts";
import { tunnelSettings } from "./h2-settings.ts";
import { WsDuplex } from "./ws-duplex.ts";

export class WsCarrier implements RelayCarrier {
  readonly protocol = 1;
  readonly session: ClientHttp2Session;
  readonly #ws: WebSocket;
  readonly #duplex: WsDuplex;
  #closing = false;

  constructor(ws: WebSocket) {
    this.#ws = ws;
    this.#duplex = new WsDuplex(ws);
    // A write after our own close (the session's GOAWAY) fails; the close handshake goes on.
    this.#duplex.on("error", () => {
      if (!this.#closing) ws.terminate();
    });
    const duplex = this.#duplex;
    this.session = http2.connect("http://provider.tunnel", {
      createConnection: () => duplex,
      settings: tunnelSettings(),
    });
  }

  start(events: CarrierEvents): void {
    const ws = this.#ws;
    ws.on("message", (data: Buffer, isBinary) => {
      if (isBinary) {
        events.alive();
        this.#duplex.receive(data);
      } else events.control(data);
    });
    ws.on("error", (err) => events.error(err));
    ws.on("pong", () => events.alive());
    ws.on("ping", () => events.alive());
    ws.on("close", (code, reason) => {
      this.#duplex.destroy();
      events.closed(`closed (${code}${reason.length ? ` ${reason.toString()}` : ""})`);
    });
  }

  send(text: string): void {
    this.#ws.send(text);
  }

  ping(): void {
    this.#ws.ping();
  }

  close(code: number, reason: string): void {
    this.#closing = true;
    this.#ws.close(code, reason);
  }

  terminate(): void {
    this.#ws.terminate();
  }
}
