/**
 * Tunnel protocol 2 against a peer that breaks it: a fake relay that answers 101 and then
 * misbehaves at the daemon, and a hand-made provider that misbehaves at a real relay. Every
 * bad connection is closed with the documented code; nothing hangs or crashes.
 */
import { once } from "node:events";
import http, { type IncomingMessage } from "node:http";
import http2, { type ClientHttp2Session, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { Duplex } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import {
  CONNECT_PATH,
  CONTROL_PATH,
  CloseCode,
  TUNNEL_UPGRADE_2,
  encodeControl,
} from "../../src/protocol/index.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay } from "../../src/relay/server.ts";
import { SWITCH_TO_2 } from "../../src/transport/h2-carrier.ts";
import { TunnelClient } from "../../src/tunnel/client.ts";
import { manifest, waitFor } from "./tunnel-fixtures.ts";

const KEY = "sk-hostile-two-000000";
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/**
 * A socket that can go silent: frozen, it drops what arrives and swallows what is written, as
 * a peer that hangs with the connection still open.
 */
class Valve extends Duplex {
  frozen = false;
  readonly #socket: Socket;

  constructor(socket: Socket) {
    super();
    this.#socket = socket;
    socket.on("data", (d: Buffer) => {
      if (!this.frozen) this.push(d);
    });
    socket.on("close", () => this.destroy());
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.frozen) done();
    else this.#socket.write(chunk, done);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.#socket.destroy();
    done(err);
  }
}

/** One connection at the fake relay: its HTTP/2 client session and what the daemon said. */
interface FakeConnection {
  session: ClientHttp2Session;
  valve: Valve;
  /** The GOAWAY the daemon closed with, once it has. */
  goaway: Promise<number>;
  /** Opens the control stream; `welcome` sends a welcome on it. */
  control(): { welcome(heartbeatMs?: number): void };
}

/** A relay that answers 101 and leaves what follows to the test. */
class FakeRelay {
  readonly server = http.createServer((_req, res) => res.writeHead(404).end());
  readonly connections: FakeConnection[] = [];

  constructor() {
    this.server.on("upgrade", (_req: IncomingMessage, socket: Socket) => {
      socket.write(SWITCH_TO_2);
      const valve = new Valve(socket);
      const session = http2.connect("http://fake", { createConnection: () => valve });
      session.on("error", () => undefined);
      const goaway = new Promise<number>((resolve) => session.once("goaway", resolve));
      this.connections.push({
        session,
        valve,
        goaway,
        control: () => {
          const stream = session.request(
            { ":method": "POST", ":path": CONTROL_PATH },
            { endStream: false },
          );
          stream.on("error", () => undefined);
          stream.resume();
          return {
            welcome: (heartbeatMs = 15_000) =>
              stream.write(
                encodeControl({
                  type: "welcome",
                  connection_id: "conn_fake",
                  member: "m",
                  heartbeat_ms: heartbeatMs,
                }) + "\n",
              ),
          };
        },
      });
    });
  }

  async start(): Promise<string> {
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    cleanup.push(() => {
      this.server.closeAllConnections();
      for (const c of this.connections) c.session.destroy();
      this.server.close();
    });
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async connection(n: number): Promise<FakeConnection> {
    await waitFor(() => this.connections.length > n);
    return this.connections[n]!;
  }
}

function daemon(relayUrl: string, welcomeTimeoutMs = 10_000): TunnelClient {
  const client = new TunnelClient({
    relayUrl,
    apiKey: KEY,
    provider: { name: "rig", version: "0" },
    manifest: () => manifest("m"),
    heartbeat: () => ({ in_flight: 0, queued: 0, services: {}, gpus: [] }),
    onRequest: (x) => x.writeHead(200).end(),
    tunnelProtocol: 2,
    welcomeTimeoutMs,
    backoff: { baseMs: 10, maxMs: 20 },
    log: silentLogger,
  });
  cleanup.push(() => client.stop());
  client.start();
  return client;
}

describe("the daemon, at a relay that breaks protocol 2", () => {
  it("closes with 4400 when the relay's first stream is not the control stream, and retries", async () => {
    const relay = new FakeRelay();
    daemon(await relay.start());
    const first = await relay.connection(0);
    const stream = first.session.request({ ":method": "POST", ":path": "/v1/chat/completions" });
    stream.on("error", () => undefined);
    expect(await first.goaway).toBe(CloseCode.badMessage);
    await relay.connection(1);
  });

  it("closes with 4400 when no control stream and no welcome come, and retries", async () => {
    const relay = new FakeRelay();
    daemon(await relay.start(), 200);
    expect(await (await relay.connection(0)).goaway).toBe(CloseCode.badMessage);
    await relay.connection(1);
  });

  it("reconnects when the relay goes silent for two heartbeat intervals", async () => {
    const relay = new FakeRelay();
    const client = daemon(await relay.start());
    const first = await relay.connection(0);
    first.control().welcome(1000);
    await once(client, "connected");
    first.valve.frozen = true;
    await once(client, "disconnected");
    await relay.connection(1);
  });

  it("stops for good on a GOAWAY carrying 4426", async () => {
    const relay = new FakeRelay();
    const client = daemon(await relay.start());
    const first = await relay.connection(0);
    first.control().welcome();
    await once(client, "connected");
    const refused = once(client, "refused");
    first.session.goaway(CloseCode.unsupportedVersion, 0, Buffer.from("too old"));
    const [err] = (await refused) as [Error];
    expect(err.message).toContain("too old");
  });
});

/** A provider made by hand: the upgrade, then HTTP/2 server over `valve`; hello on request. */
async function provider(relay: Relay): Promise<{
  valve: Valve;
  control: ServerHttp2Stream;
  goaway: Promise<number>;
}> {
  const req = http.request(`${relay.url}${CONNECT_PATH}`, {
    headers: { connection: "Upgrade", upgrade: TUNNEL_UPGRADE_2, authorization: `Bearer ${KEY}` },
  });
  req.end();
  const [, socket, head] = (await once(req, "upgrade")) as [unknown, Socket, Buffer];
  if (head.length) socket.unshift(head);
  const valve = new Valve(socket);
  const session = http2.performServerHandshake(valve);
  session.on("error", () => undefined);
  cleanup.push(() => session.destroy());
  const goaway = new Promise<number>((resolve) => session.once("goaway", resolve));
  const [control] = (await once(session, "stream")) as [ServerHttp2Stream];
  control.on("error", () => undefined);
  control.respond({ ":status": 200 });
  return { valve, control, goaway };
}

const hello = (): string =>
  encodeControl({
    type: "hello",
    provider: { name: "hand", version: "0" },
    manifest: manifest("m"),
  }) + "\n";

describe("the relay, with a provider that breaks protocol 2", () => {
  let relay: Relay;
  beforeAll(async () => {
    relay = await createRelay({
      port: 0,
      keys: new KeyRing({ [KEY]: "alice" }),
      log: silentLogger,
      heartbeatMs: 200,
      providerLimits: { maxControlBytes: 4096 },
    });
  });
  afterAll(() => relay.close());

  it("counts protocol 2 tunnels against the member's limit, and frees a slot on close", async () => {
    const small = await createRelay({
      port: 0,
      keys: new KeyRing({ [KEY]: "alice" }),
      log: silentLogger,
      providerLimits: { maxTunnelsPerMember: 2 },
    });
    cleanup.push(() => small.close());
    const upgrade = async (): Promise<Socket | number> => {
      const req = http.request(`${small.url}${CONNECT_PATH}`, {
        headers: {
          connection: "Upgrade",
          upgrade: TUNNEL_UPGRADE_2,
          authorization: `Bearer ${KEY}`,
        },
      });
      req.end();
      const got = await Promise.race([
        once(req, "upgrade").then(([, socket]) => socket as Socket),
        once(req, "response").then(([res]) => (res as IncomingMessage).statusCode ?? 0),
      ]);
      if (typeof got !== "number") got.on("error", () => undefined).resume();
      return got;
    };
    const first = await upgrade();
    const second = await upgrade();
    expect(typeof first).not.toBe("number");
    expect(typeof second).not.toBe("number");
    expect(await upgrade()).toBe(429);
    (first as Socket).destroy();
    await expect
      .poll(async () => {
        const next = await upgrade();
        if (typeof next !== "number") next.destroy();
        return typeof next;
      })
      .toBe("object");
    (second as Socket).destroy();
  });

  it("closes with 1009 on a control line longer than its limit", async () => {
    const p = await provider(relay);
    p.control.write("x".repeat(5000));
    expect(await p.goaway).toBe(1009);
  });

  it("drops a provider that goes silent for two heartbeat intervals", async () => {
    const p = await provider(relay);
    p.control.write(hello());
    await waitFor(() => relay.registry.all().some((l) => l.name === "hand"));
    p.valve.frozen = true;
    await waitFor(() => !relay.registry.all().some((l) => l.name === "hand"));
  });

  it("closes the tunnel when the provider ends its control stream, and keeps serving", async () => {
    const p = await provider(relay);
    p.control.write(hello());
    await waitFor(() => relay.registry.all().some((l) => l.name === "hand"));
    p.control.end();
    await waitFor(() => !relay.registry.all().some((l) => l.name === "hand"));
    const again = await provider(relay);
    again.control.write(hello());
    await waitFor(() => relay.registry.all().some((l) => l.name === "hand"));
  });
});
