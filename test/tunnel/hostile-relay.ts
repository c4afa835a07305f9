/**
 * A relay that misbehaves on purpose: a `ws` WebSocketServer on loopback that speaks as much of
 * `club-tunnel.1` as a test tells it to. Each connection is handed to the test, which decides
 * what to send (no welcome, two welcomes, junk, an HTTP/2 client of its own).
 */
import { once } from "node:events";
import http2, { type ClientHttp2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";
import {
  TUNNEL_SUBPROTOCOL,
  encodeControl,
  type Manifest,
  type WelcomeMessage,
} from "../../src/protocol/index.ts";
import { TunnelClient, type TunnelClientOptions } from "../../src/tunnel/client.ts";
import { CONNECTION_WINDOW, tunnelSettings } from "../../src/transport/h2-settings.ts";
import { WsDuplex } from "../../src/transport/ws-duplex.ts";
import { silentLogger } from "../../src/log.ts";

/** One daemon connection as the hostile relay sees it. */
export interface HostileConnection {
  ws: WebSocket;
  /** Text frames the daemon sent, parsed. */
  control: { type: string; [k: string]: unknown }[];
  /** Resolves with the close code and reason the daemon (or the socket) ended with. */
  closed: Promise<{ code: number; reason: string }>;
  welcome(fields?: Partial<WelcomeMessage>): void;
  /** Become the HTTP/2 client over this connection, as a real relay does. */
  h2(): ClientHttp2Session;
}

export class HostileRelay {
  readonly wss: WebSocketServer;
  readonly connections: HostileConnection[] = [];
  /** Each returns true once it is satisfied. */
  #waiters: (() => boolean)[] = [];

  constructor() {
    this.wss = new WebSocketServer({
      host: "127.0.0.1",
      port: 0,
      perMessageDeflate: false,
      handleProtocols: () => TUNNEL_SUBPROTOCOL,
    });
    this.wss.on("connection", (ws) => this.#accept(ws));
  }

  async start(): Promise<string> {
    await once(this.wss, "listening");
    return this.url;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}`;
  }

  /** The n-th connection (0-based), once it has arrived. */
  connection(n: number): Promise<HostileConnection> {
    return new Promise((resolve) => {
      const check = (): boolean => {
        const c = this.connections[n];
        if (c) resolve(c);
        return c !== undefined;
      };
      if (!check()) this.#waiters.push(check);
    });
  }

  #accept(ws: WebSocket): void {
    let duplex: WsDuplex | null = null;
    const control: HostileConnection["control"] = [];
    ws.on("error", () => undefined);
    ws.on("message", (data: Buffer, isBinary) => {
      if (isBinary) duplex?.receive(data);
      else control.push(JSON.parse(data.toString("utf8")) as HostileConnection["control"][0]);
    });
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once("close", (code, reason) => {
        duplex?.destroy();
        resolve({ code, reason: reason.toString() });
      }),
    );
    const conn: HostileConnection = {
      ws,
      control,
      closed,
      welcome: (fields = {}) =>
        ws.send(
          encodeControl({
            type: "welcome",
            connection_id: `conn_${this.connections.indexOf(conn)}`,
            member: "mallory",
            heartbeat_ms: 15_000,
            ...fields,
          }),
        ),
      h2: () => {
        duplex = new WsDuplex(ws);
        duplex.on("error", () => ws.terminate());
        const session = http2.connect("http://provider.tunnel", {
          createConnection: () => duplex!,
          settings: tunnelSettings(),
        });
        session.on("connect", () => session.setLocalWindowSize(CONNECTION_WINDOW));
        session.on("error", () => undefined);
        return session;
      },
    };
    this.connections.push(conn);
    this.#waiters = this.#waiters.filter((check) => !check());
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

const manifest: Manifest = { schema_version: 1, agent: { name: "victim" }, hosts: [] };

/** A real tunnel client aimed at `url`, with fast retries; options override the defaults. */
export function victim(url: string, options: Partial<TunnelClientOptions> = {}): TunnelClient {
  return new TunnelClient({
    relayUrl: url,
    apiKey: "sk-hostile-relay-test",
    provider: { name: "victim", version: "0" },
    manifest: () => manifest,
    heartbeat: () => ({ in_flight: 0, queued: 0, services: {}, gpus: [] }),
    onRequest: (_req, res) => res.end("ok"),
    backoff: { baseMs: 1, maxMs: 20, fastMaxMs: 20 },
    log: silentLogger,
    ...options,
  });
}

/** One GET over a relay-side session; resolves with status and body. */
export function get(
  session: ClientHttp2Session,
  path = "/v1/models",
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "GET", ":path": path });
    let status = 0;
    let body = "";
    stream.on("response", (h) => (status = Number(h[":status"])));
    stream.on("data", (d: Buffer) => (body += d.toString()));
    stream.on("end", () => resolve({ status, body }));
    stream.on("error", reject);
  });
}
