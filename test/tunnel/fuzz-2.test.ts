/**
 * Random and truncated bytes thrown at both ends of protocol 2 after the 101, for a bounded
 * number of rounds: each bad connection is dropped, and both ends stay up and keep serving.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import http, { type IncomingMessage } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { CONNECT_PATH, TUNNEL_UPGRADE_2, encodeControl } from "../../src/protocol/index.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay } from "../../src/relay/server.ts";
import { SWITCH_TO_2 } from "../../src/transport/h2-carrier.ts";
import { TunnelClient } from "../../src/tunnel/client.ts";
import { manifest } from "./tunnel-fixtures.ts";

const KEY = "sk-fuzz-two-00000000";
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** An empty SETTINGS frame, then the frame header of a HEADERS frame promising more than comes. */
const SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

/** Bytes a broken peer might send: garbage, a cut preface, a frame that lies about its length. */
function junk(round: number, preface: boolean): Buffer {
  const start = preface ? PREFACE : Buffer.alloc(0);
  switch (round % 4) {
    case 0:
      return Buffer.concat([start, randomBytes(1 + (round % 300))]);
    case 1:
      return PREFACE.subarray(0, round % PREFACE.length);
    case 2:
      return Buffer.concat([start, SETTINGS, Buffer.from([0, 0, 0xff, 1, 4, 0, 0, 0, 1])]);
    default:
      return Buffer.from(
        encodeControl({ type: "welcome", connection_id: "x", member: "m", heartbeat_ms: 1 }) + "\n",
      );
  }
}

describe("fuzzing the relay's end of protocol 2", () => {
  let relay: Relay;
  beforeAll(async () => {
    relay = await createRelay({
      port: 0,
      keys: new KeyRing({ [KEY]: "m" }),
      log: silentLogger,
      heartbeatMs: 1000,
      helloTimeoutMs: 100,
    });
  });
  afterAll(() => relay.close());

  it("drops bad connections and keeps serving", async () => {
    for (let round = 0; round < 24; round++) {
      const req = http.request(`${relay.url}${CONNECT_PATH}`, {
        headers: {
          connection: "Upgrade",
          upgrade: TUNNEL_UPGRADE_2,
          authorization: `Bearer ${KEY}`,
        },
      });
      req.end();
      const [, socket] = (await once(req, "upgrade")) as [unknown, Socket];
      socket.on("error", () => undefined);
      socket.resume();
      // The daemon's side is the HTTP/2 server: junk in place of its SETTINGS and answers.
      socket.write(junk(round, false));
      const closed = once(socket, "close");
      socket.end();
      await closed;
    }
    const res = await fetch(`${relay.url}/v1/models`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(res.status).toBe(200);
    await expect.poll(() => relay.registry.size, { timeout: 10_000 }).toBe(0);
  });
});

describe("fuzzing the daemon's end of protocol 2", () => {
  it("survives a relay that answers 101 and then garbage, and keeps reconnecting", async () => {
    let rounds = 0;
    const server = http.createServer((_req, res) => res.writeHead(404).end());
    server.on("upgrade", (_req: IncomingMessage, socket: Socket) => {
      const round = rounds++;
      socket.on("error", () => undefined);
      socket.write(SWITCH_TO_2);
      socket.write(junk(round, true));
      socket.resume();
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const client = new TunnelClient({
      relayUrl: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
      apiKey: KEY,
      provider: { name: "fuzzed", version: "0" },
      manifest: () => manifest("m"),
      heartbeat: () => ({ in_flight: 0, queued: 0, services: {}, gpus: [] }),
      onRequest: (x) => x.end(),
      tunnelProtocol: 2,
      welcomeTimeoutMs: 200,
      backoff: { baseMs: 1, maxMs: 5 },
      log: silentLogger,
    });
    client.start();
    await expect.poll(() => rounds, { timeout: 20_000 }).toBeGreaterThanOrEqual(30);
    expect(client.state).not.toBe("refused");
    client.stop();
    server.closeAllConnections();
    server.close();
  });
});
