/**
 * Daemons and relays of different releases still talk: a new daemon falls back to protocol 1
 * at a relay that answers protocol 2 as the last release does (426), once per relay URL, and a
 * daemon forced to either protocol gets it or says why not.
 */
import { once } from "node:events";
import http, { type IncomingMessage } from "node:http";
import net, { type AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkKey } from "../../src/cli/doctor-checks.ts";
import { silentLogger } from "../../src/log.ts";
import { TUNNEL_UPGRADE_2 } from "../../src/protocol/index.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay } from "../../src/relay/server.ts";
import { TunnelClient, type TunnelClientOptions } from "../../src/tunnel/client.ts";
import { manifest } from "./tunnel-fixtures.ts";

const KEY = "sk-fallback-test-0000";

/**
 * A relay of the last release, as far as the connect request goes: protocol 2 gets the 426 it
 * answered (no WebSocket subprotocol offered); WebSocket upgrades reach a current relay.
 */
class OldRelay {
  readonly server = http.createServer((_req, res) => res.writeHead(404).end());
  asked2 = 0;

  constructor(target: number) {
    this.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if ((req.headers.upgrade ?? "").toLowerCase() === TUNNEL_UPGRADE_2) {
        this.asked2++;
        const body = JSON.stringify({
          error: {
            message: "unsupported tunnel protocol; this relay speaks club-tunnel.1",
            type: "invalid_request_error",
          },
        });
        socket.end(
          `HTTP/1.1 426 Upgrade Required\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        );
        return;
      }
      const up = net.connect(target, "127.0.0.1");
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(lines.join("\r\n") + "\r\n\r\n");
      up.write(head);
      socket.pipe(up).pipe(socket);
      const cut = (): void => {
        up.destroy();
        socket.destroy();
      };
      up.on("error", cut).on("close", cut);
      socket.on("error", cut).on("close", cut);
    });
  }

  async start(): Promise<string> {
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
}

function tunnel(relayUrl: string, options: Partial<TunnelClientOptions> = {}): TunnelClient {
  const client = new TunnelClient({
    relayUrl,
    apiKey: KEY,
    provider: { name: "rig", version: "0" },
    manifest: () => manifest("m"),
    heartbeat: () => ({ in_flight: 0, queued: 0, services: {}, gpus: [] }),
    onRequest: (x) => x.writeHead(200).end("ok"),
    backoff: { baseMs: 10, maxMs: 50 },
    log: silentLogger,
    ...options,
  });
  cleanup.push(() => client.stop());
  client.start();
  return client;
}

const cleanup: (() => void)[] = [];
let relay: Relay;
let old: OldRelay;
let oldUrl: string;

beforeAll(async () => {
  relay = await createRelay({
    port: 0,
    keys: new KeyRing({ [KEY]: "alice" }),
    log: silentLogger,
    heartbeatMs: 1000,
  });
  old = new OldRelay(relay.port);
  oldUrl = await old.start();
});

afterAll(async () => {
  for (const stop of cleanup) stop();
  old.server.closeAllConnections();
  old.server.close();
  await relay.close();
});

describe("a new daemon at a relay that speaks only protocol 1", () => {
  it("falls back to protocol 1 once, and remembers it for that relay URL", async () => {
    const first = tunnel(oldUrl);
    await once(first, "connected");
    expect(first.protocol).toBe(1);
    expect(old.asked2).toBe(1);
    // A second tunnel of this process (`--connections 2`, a reconnect) asks for 1 at once.
    const second = tunnel(oldUrl);
    await once(second, "connected");
    expect(second.protocol).toBe(1);
    expect(old.asked2).toBe(1);
    const res = await fetch(`${relay.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [] }),
    });
    expect(await res.text()).toBe("ok");
  });

  it("stops and says why when forced to protocol 2", async () => {
    const forced = tunnel(oldUrl, { tunnelProtocol: 2 });
    const [err] = (await once(forced, "refused")) as [Error];
    expect(err.message).toContain("does not speak club-tunnel.2");
    expect(err.message).toContain("tunnelProtocol");
  });
});

describe("a new daemon behind something that holds protocol 2's request unanswered", () => {
  it("falls back to protocol 1 after the handshake timeout", async () => {
    // Takes WebSocket upgrades to the real relay; swallows `Upgrade: club-tunnel.2`.
    const holder = new OldRelay(relay.port);
    holder.server.removeAllListeners("upgrade");
    const held: Duplex[] = [];
    holder.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if ((req.headers.upgrade ?? "").toLowerCase() === TUNNEL_UPGRADE_2) {
        socket.on("error", () => undefined);
        held.push(socket);
        return;
      }
      old.server.emit("upgrade", req, socket, head);
    });
    const url = await holder.start();
    cleanup.push(() => {
      for (const s of held) s.destroy();
      holder.server.closeAllConnections();
      holder.server.close();
    });
    const client = tunnel(url, { handshakeTimeoutMs: 200 });
    await once(client, "connected");
    expect(client.protocol).toBe(1);
    expect(held.length).toBe(1);
  });
});

describe("a current relay", () => {
  it("serves a daemon forced to protocol 1 (one of the last release) and one on protocol 2", async () => {
    const url = relay.url.replace("http", "ws");
    const v1 = tunnel(url, { tunnelProtocol: 1, provider: { name: "old", version: "0" } });
    const v2 = tunnel(url, { provider: { name: "new", version: "0" } });
    await Promise.all([once(v1, "connected"), once(v2, "connected")]);
    expect([v1.protocol, v2.protocol]).toEqual([1, 2]);
    const at = (name: string) => relay.registry.all().find((l) => l.name === name)?.protocol;
    expect([at("old"), at("new")]).toEqual([1, 2]);
  });

  it("refuses a key on protocol 2 as on protocol 1, without falling back", async () => {
    const url = relay.url.replace("http", "ws");
    const bad = tunnel(url, { apiKey: "sk-wrong-key-000000" });
    const [err] = (await once(bad, "refused")) as [Error];
    expect(err.message).toContain("refused the API key (HTTP 401)");
    expect(bad.protocol).toBe(2);
  });
});

describe("doctor's key check", () => {
  // The same connect request the daemon makes, so doctor says what the daemon will speak.
  it("speaks protocol 2 to a current relay, and nothing stays registered", async () => {
    const url = relay.url.replace("http", "ws");
    const before = relay.registry.all().length;
    const r = await checkKey(url, KEY, 3000);
    expect(r).toEqual({
      name: "API key accepted",
      status: "ok",
      detail: "the relay accepted the key (club-tunnel.2 handshake)",
    });
    expect((await checkKey(url, KEY, 3000, 1)).detail).toContain("club-tunnel.1 handshake");
    expect(relay.registry.all().length).toBe(before);
  });

  it("warns that a relay of the last release gets protocol 1, and why", async () => {
    const asked = old.asked2;
    const r = await checkKey(oldUrl, KEY, 3000);
    expect(r.status).toBe("warn");
    expect(r.detail).toBe(
      "the relay accepted the key (club-tunnel.1 handshake); the relay, or a proxy before it, " +
        "answered club-tunnel.2 with HTTP 426, so the daemon falls back to club-tunnel.1",
    );
    expect(old.asked2).toBe(asked + 1);
  });

  it("fails where the daemon would stop: forced to protocol 2 there, or a wrong key", async () => {
    const forced = await checkKey(oldUrl, KEY, 3000, 2);
    expect([forced.status, forced.detail]).toEqual([
      "fail",
      "the relay does not speak club-tunnel.2",
    ]);
    const wrong = await checkKey(oldUrl, "sk-wrong-key-000000", 3000);
    expect([wrong.status, wrong.detail]).toEqual([
      "fail",
      "the relay refused the API key (HTTP 401) (the relay, or a proxy before it, answered club-tunnel.2 with HTTP 426)",
    ]);
    const current = await checkKey(relay.url.replace("http", "ws"), "sk-wrong-key-000000", 3000);
    expect([current.status, current.detail]).toEqual([
      "fail",
      "the relay refused the API key (HTTP 401)",
    ]);
  });
});
