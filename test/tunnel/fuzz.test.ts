/**
 * Random and truncated frames thrown at both ends of the tunnel for a bounded number of rounds:
 * each bad connection is dropped with a logged reason, and both ends stay up and keep serving.
 */
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { silentLogger } from "../../src/log.ts";
import {
  CONNECT_PATH,
  TUNNEL_SUBPROTOCOL,
  encodeControl,
  type Manifest,
} from "../../src/protocol/index.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay } from "../../src/relay/server.ts";
import { TunnelClient } from "../../src/tunnel/client.ts";

const KEY = "sk-fuzz-test-000000";
const manifest: Manifest = { schema_version: 1, agent: { name: "fuzz" }, hosts: [] };
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** A random frame: garbage, a truncated HTTP/2 preface or frame, or bad control text. */
function junk(round: number): { data: Buffer | string; binary: boolean } {
  switch (round % 6) {
    case 0:
      return { data: randomBytes(1 + (round % 200)), binary: true };
    case 1:
      return { data: PREFACE.subarray(0, round % PREFACE.length), binary: true };
    case 2: // a frame header promising more than follows
      return {
        data: Buffer.concat([PREFACE, Buffer.from([0, 0, 0xff, 0, 0, 0, 0, 0, 1]), randomBytes(7)]),
        binary: true,
      };
    case 3:
      return { data: randomBytes(40).toString("latin1"), binary: false };
    case 4:
      return {
        data: JSON.stringify({ type: "heartbeat", v: 1, seq: "x", services: 3 }),
        binary: false,
      };
    default:
      return {
        data: JSON.stringify({ type: "welcome", v: 9 }).slice(0, round % 20),
        binary: false,
      };
  }
}

describe("fuzzing the relay's end", () => {
  let relay: Relay;
  beforeAll(async () => {
    relay = await createRelay({
      port: 0,
      keys: new KeyRing({ [KEY]: "m" }),
      log: silentLogger,
      heartbeatMs: 1000,
      helloTimeoutMs: 500,
    });
  });
  afterAll(() => relay.close());

  it("drops bad connections and keeps serving", async () => {
    for (let round = 0; round < 60; round++) {
      const ws = new WebSocket(
        `${relay.url.replace("http", "ws")}${CONNECT_PATH}`,
        TUNNEL_SUBPROTOCOL,
        {
          headers: { authorization: `Bearer ${KEY}` },
        },
      );
      ws.on("error", () => undefined);
      await once(ws, "open");
      if (round % 2 === 0)
        ws.send(
          encodeControl({ type: "hello", provider: { name: `f${round}`, version: "0" }, manifest }),
        );
      for (let i = 0; i < 3; i++) {
        const { data, binary } = junk(round + i);
        ws.send(data, { binary });
      }
      ws.terminate();
    }
    const res = await fetch(`${relay.url}/v1/models`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(res.status).toBe(200);
    await expect.poll(() => relay.registry.size, { timeout: 10_000 }).toBe(0);
  });
});

describe("fuzzing the daemon's end", () => {
  it("survives a relay that answers with garbage, and keeps reconnecting", async () => {
    const wss = new WebSocketServer({
      port: 0,
      host: "127.0.0.1",
      handleProtocols: () => TUNNEL_SUBPROTOCOL,
    });
    await once(wss, "listening");
    let rounds = 0;
    wss.on("connection", (ws) => {
      const round = rounds++;
      ws.on("error", () => undefined);
      ws.on("message", () => undefined);
      ws.send(
        encodeControl({
          type: "welcome",
          connection_id: `c${round}`,
          member: "m",
          heartbeat_ms: 1000,
        }),
      );
      for (let i = 0; i < 3; i++) {
        const { data, binary } = junk(round + i);
        ws.send(data, { binary });
      }
      setTimeout(() => ws.terminate(), 20);
    });
    const client = new TunnelClient({
      relayUrl: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
      apiKey: KEY,
      provider: { name: "fuzzed", version: "0" },
      manifest: () => manifest,
      heartbeat: () => ({ in_flight: 0, queued: 0, services: {}, gpus: [] }),
      onRequest: (_req, res) => res.end(),
      backoff: { baseMs: 1, maxMs: 5 },
      log: silentLogger,
    });
    client.start();
    await expect.poll(() => rounds, { timeout: 20_000 }).toBeGreaterThanOrEqual(30);
    expect(client.state).not.toBe("refused");
    client.stop();
    wss.close();
  });
});
