/**
 * Frame masking: the daemon leaves its frames unmasked (an all-zero key) only where no
 * intermediary can see them, TLS or loopback, and masks them with random keys elsewhere.
 */
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { silentLogger } from "../../src/log.ts";
import { TUNNEL_SUBPROTOCOL, type Manifest } from "../../src/protocol/index.ts";
import { TunnelClient, unmaskedIsSafe } from "../../src/tunnel/client.ts";

describe("frame masking", () => {
  it("is skipped only over TLS or on loopback", () => {
    expect(unmaskedIsSafe("wss://relay.example.org")).toBe(true);
    expect(unmaskedIsSafe("wss://203.0.113.7:8443")).toBe(true);
    expect(unmaskedIsSafe("ws://127.0.0.1:8787")).toBe(true);
    expect(unmaskedIsSafe("ws://127.8.9.10")).toBe(true);
    expect(unmaskedIsSafe("ws://localhost:8787")).toBe(true);
    expect(unmaskedIsSafe("ws://[::1]:8787")).toBe(true);
    expect(unmaskedIsSafe("ws://relay.example.org")).toBe(false);
    expect(unmaskedIsSafe("ws://192.168.1.20:8787")).toBe(false);
    expect(unmaskedIsSafe("ws://[::ffff:7f00:1]:8787")).toBe(false);
    expect(unmaskedIsSafe("ws://localhost.example.org")).toBe(false);
  });

  it("sends the hello in plain bytes to a relay on loopback", async () => {
    const wss = new WebSocketServer({
      host: "127.0.0.1",
      port: 0,
      handleProtocols: () => TUNNEL_SUBPROTOCOL,
    });
    await once(wss, "listening");
    const raw: Buffer[] = [];
    // Ahead of ws's own listener, and copied: ws unmasks the received buffer in place.
    wss.on("connection", (_ws, req) =>
      req.socket.prependListener("data", (b: Buffer) => raw.push(Buffer.from(b))),
    );
    const manifest: Manifest = { schema_version: 1, agent: { name: "mask" }, hosts: [] };
    const client = new TunnelClient({
      relayUrl: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
      apiKey: "sk-mask-test",
      provider: { name: "mask", version: "0" },
      manifest: () => manifest,
      heartbeat: () => ({ in_flight: 0, queued: 0, services: {}, gpus: [] }),
      onRequest: (_req, res) => res.end(),
      log: silentLogger,
    });
    client.start();
    await expect.poll(() => Buffer.concat(raw).length).toBeGreaterThan(10);
    const first = Buffer.concat(raw);
    client.stop();
    wss.close();
    // A client frame always has the mask bit; the key that follows (after a 16-bit length for
    // a hello this size) is zero, so the JSON of the hello is readable as sent.
    expect(first[1]! & 0x80).toBe(0x80);
    expect(first[1]! & 0x7f).toBe(126);
    expect([...first.subarray(4, 8)]).toEqual([0, 0, 0, 0]);
    expect(first.toString("latin1")).toContain('"type":"hello"');
  });
});
