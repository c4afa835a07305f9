/**
 * The daemon's end of the tunnel against a relay that breaks the protocol: it never welcomes,
 * welcomes twice, sends junk control text or HTTP/2 bytes, or asks for absurd heartbeats. Each
 * time the real TunnelClient closes with the code docs/protocol.md gives and connects again.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CloseCode } from "../../src/protocol/index.ts";
import { HEARTBEAT_RANGE_MS, type TunnelClient } from "../../src/tunnel/client.ts";
import { HostileRelay, get, victim } from "./hostile-relay.ts";

let relay: HostileRelay;
let client: TunnelClient | undefined;

beforeEach(async () => {
  relay = new HostileRelay();
  await relay.start();
});
afterEach(async () => {
  client?.stop();
  client = undefined;
  await relay.close();
});

describe("a relay that breaks the handshake", () => {
  it("closes with 4400 when no welcome comes, and tries again", async () => {
    client = victim(relay.url, { welcomeTimeoutMs: 300 });
    client.start();
    const first = await relay.connection(0);
    expect(client.state).toBe("connecting");
    expect((await first.closed).code).toBe(CloseCode.badMessage);
    expect((await first.closed).reason).toMatch(/no welcome within 300 ms/);
    const second = await relay.connection(1);
    expect(second.control[0]?.type ?? "hello").toBe("hello");
    expect(client.connects).toBe(0);
  });

  it.each([
    ["text that is not JSON", "{not json"],
    ["an unknown message type", JSON.stringify({ type: "teleport", v: 1 })],
    ["a welcome of another version", JSON.stringify({ type: "welcome", v: 9 })],
    ["a welcome without its fields", JSON.stringify({ type: "welcome", v: 1, heartbeat_ms: 5 })],
    ["a message only a provider sends", JSON.stringify({ type: "drain", v: 1 })],
  ])("closes with 4400 on %s before welcome", async (_what, text) => {
    client = victim(relay.url);
    client.start();
    const conn = await relay.connection(0);
    conn.ws.send(text);
    expect((await conn.closed).code).toBe(CloseCode.badMessage);
    await relay.connection(1);
  });

  it("closes with 4400 on a bad control message after welcome", async () => {
    client = victim(relay.url);
    client.start();
    const conn = await relay.connection(0);
    conn.welcome();
    await expect.poll(() => client?.state).toBe("connected");
    conn.ws.send(JSON.stringify({ type: "error", v: 1, code: 7 }));
    expect((await conn.closed).code).toBe(CloseCode.badMessage);
    await relay.connection(1);
  });

  it("accepts one welcome per connection: a second is a protocol error", async () => {
    client = victim(relay.url);
    client.start();
    const conn = await relay.connection(0);
    conn.welcome();
    conn.welcome({ heartbeat_ms: 1000 });
    const closed = await conn.closed;
    expect(closed).toEqual({
      code: CloseCode.badMessage,
      reason: "a second welcome on one connection",
    });
    expect(client.connects).toBe(1);
    await relay.connection(1);
  });
});

describe("a relay that asks for absurd heartbeats", () => {
  it("clamps heartbeat_ms 0 to the floor instead of dropping the tunnel", async () => {
    client = victim(relay.url);
    client.start();
    const conn = await relay.connection(0);
    const session = conn.h2();
    conn.welcome({ heartbeat_ms: 0 });
    await expect.poll(() => client?.state).toBe("connected");
    expect(client.heartbeatMs).toBe(HEARTBEAT_RANGE_MS.min);
    for (let i = 0; i < 3; i++) expect(await get(session)).toEqual({ status: 200, body: "ok" });
    expect(conn.ws.readyState).toBe(conn.ws.OPEN);
    expect(relay.connections).toHaveLength(1);
    session.destroy();
  });

  it("clamps heartbeat_ms 2^31 to the ceiling instead of overflowing into a 1 ms timer", async () => {
    client = victim(relay.url);
    client.start();
    const conn = await relay.connection(0);
    const session = conn.h2();
    conn.welcome({ heartbeat_ms: 2 ** 31 });
    await expect.poll(() => client?.state).toBe("connected");
    expect(client.heartbeatMs).toBe(HEARTBEAT_RANGE_MS.max);
    // Several round trips over the tunnel: an overflowed timer would have sent heartbeats.
    for (let i = 0; i < 5; i++) expect((await get(session)).status).toBe(200);
    expect(conn.control.filter((m) => m.type === "heartbeat")).toEqual([]);
    session.destroy();
  });
});

describe("a relay whose HTTP/2 session dies", () => {
  it("closes the tunnel with 1002 after junk instead of an HTTP/2 preface, and reconnects", async () => {
    client = victim(relay.url);
    client.start();
    const conn = await relay.connection(0);
    conn.welcome();
    await expect.poll(() => client?.state).toBe("connected");
    conn.ws.send(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), { binary: true });
    expect((await conn.closed).code).toBe(CloseCode.protocolError);
    const next = await relay.connection(1);
    next.welcome();
    await expect.poll(() => client?.connects).toBe(2);
  });

  it("closes the tunnel with 1002 when the relay ends the session with GOAWAY", async () => {
    client = victim(relay.url);
    client.start();
    const conn = await relay.connection(0);
    const session = conn.h2();
    conn.welcome();
    expect((await get(session)).status).toBe(200);
    // GOAWAY alone, the socket left open: the daemon's session ends, its WebSocket must follow.
    session.goaway();
    expect((await conn.closed).code).toBe(CloseCode.protocolError);
    await relay.connection(1);
  });
});
