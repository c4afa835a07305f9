/**
 * The tunnel under each protocol, end to end in one process: a real relay (`createRelay`), a
 * real `TunnelClient`, a consumer over HTTP. Protocol 1 is HTTP/2 inside a WebSocket, protocol 2
 * HTTP/2 on the upgraded socket; both must behave alike.
 */
import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { CloseCode } from "../../src/protocol/index.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay } from "../../src/relay/server.ts";
import { TunnelClient, type TunnelExchange } from "../../src/tunnel/client.ts";
import { manifest, waitFor } from "./tunnel-fixtures.ts";

const KEY = "sk-protocols-test-0000";
const MiB = 1024 * 1024;

type Handler = (x: TunnelExchange) => void;
/** Node's one path for a socket's writes and writevs (internal, but stable since Node 12). */
type WriteGeneric = { _writeGeneric(...args: unknown[]): unknown };

/** A relay and a daemon's tunnel speaking `protocol`; requests go to `handle`. */
async function club(protocol: 1 | 2): Promise<{
  relay: Relay;
  client: TunnelClient;
  handle: { current: Handler };
  stop(): Promise<void>;
}> {
  const relay = await createRelay({
    port: 0,
    keys: new KeyRing({ [KEY]: "alice" }),
    log: silentLogger,
    heartbeatMs: 1000,
    rateLimit: 0,
  });
  const handle: { current: Handler } = { current: (x) => x.writeHead(500).end() };
  const client = new TunnelClient({
    relayUrl: relay.url.replace("http", "ws"),
    apiKey: KEY,
    provider: { name: "rig", version: "0" },
    manifest: () => manifest("m", "small"),
    heartbeat: () => ({ in_flight: 0, queued: 0, services: {}, gpus: [] }),
    onRequest: (x) => {
      x.resume();
      handle.current(x);
    },
    tunnelProtocol: protocol,
    log: silentLogger,
  });
  client.start();
  await once(client, "connected");
  return {
    relay,
    client,
    handle,
    async stop() {
      client.stop();
      await relay.close();
    },
  };
}

function chat(relay: Relay, signal?: AbortSignal, model = "m"): Promise<Response> {
  return fetch(`${relay.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
    ...(signal ? { signal } : {}),
  });
}

describe.each([1, 2] as const)("tunnel protocol %d", (protocol) => {
  let c: Awaited<ReturnType<typeof club>>;
  beforeAll(async () => {
    c = await club(protocol);
  });
  afterAll(() => c.stop());

  it("connects with that protocol at both ends", () => {
    expect(c.client.protocol).toBe(protocol);
    expect(c.relay.registry.all().map((l) => l.protocol)).toEqual([protocol]);
  });

  it("answers a request, and streams an answer chunk by chunk", async () => {
    c.handle.current = (x) => {
      x.writeHead(200, { "content-type": "application/json" });
      x.end(JSON.stringify({ path: x.url, model: x.headers["x-club-model"] }));
    };
    const res = await chat(c.relay);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ path: "/v1/chat/completions", model: "m" });

    let next: () => void = () => undefined;
    c.handle.current = (x) => {
      x.writeHead(200, { "content-type": "text/event-stream" });
      let n = 0;
      next = () => {
        if (++n <= 3) x.write(`data: ${n}\n\n`);
        else x.end("data: [DONE]\n\n");
      };
      next();
    };
    const stream = await chat(c.relay);
    const reader = stream.body!.getReader();
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
      // The next chunk is written only once this one arrived: nothing is held back in between.
      next();
    }
    expect(text).toBe("data: 1\n\ndata: 2\n\ndata: 3\n\ndata: [DONE]\n\n");
  });

  it("resets the provider's stream when the consumer leaves", async () => {
    let closed: Promise<number | undefined> = Promise.resolve(-1);
    c.handle.current = (x) => {
      x.writeHead(200, { "content-type": "text/event-stream" });
      x.write("data: first\n\n");
      closed = once(x, "close").then(() => x.rstCode);
    };
    const abort = new AbortController();
    const res = await chat(c.relay, abort.signal);
    await res.body!.getReader().read();
    abort.abort();
    expect(await closed).toBe(http2.constants.NGHTTP2_CANCEL);
  });

  it("lets a small answer pass a bulk one its consumer is not reading", async () => {
    let written = 0;
    let bulkDone = false;
    c.handle.current = (x) => {
      if (x.headers["x-club-model"] === "small") return void x.writeHead(200).end("small");
      x.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(MiB);
      const pump = (): void => {
        while (written < 64 * MiB) {
          written += chunk.length;
          if (!x.write(chunk)) return void x.once("drain", pump);
        }
        x.end(() => (bulkDone = true));
      };
      pump();
    };
    const bulk = await chat(c.relay);
    const reader = bulk.body!.getReader();
    await reader.read();
    // The bulk consumer reads no more; its stream stalls on flow control, the tunnel does not.
    const small = await chat(c.relay, undefined, "small");
    expect(small.status).toBe(200);
    expect(await small.text()).toBe("small");
    expect(bulkDone).toBe(false);
    expect(written).toBeLessThan(64 * MiB);
    await reader.cancel();
  });

  it("passes a large answer on in writes of what each read brought, not chunk by chunk", async () => {
    // The rig writes 16 KiB at a time; the relay should gather what arrives together.
    const size = 8 * MiB;
    c.handle.current = (x) => {
      x.writeHead(200, { "content-type": "application/octet-stream", "content-length": size });
      const chunk = Buffer.alloc(16 * 1024, 1);
      let sent = 0;
      const pump = (): void => {
        while (sent < size) {
          sent += chunk.length;
          if (!x.write(chunk)) return void x.once("drain", pump);
        }
        x.end();
      };
      pump();
    };
    // Writes to consumers: the relay's sockets whose local port is the relay's.
    const write = vi.spyOn(net.Socket.prototype as unknown as WriteGeneric, "_writeGeneric");
    try {
      const res = await chat(c.relay);
      expect((await res.arrayBuffer()).byteLength).toBe(size);
      const toConsumer = write.mock.contexts.filter(
        (s) => (s as net.Socket).localPort === c.relay.port,
      ).length;
      // 512 chunks of 16 KiB. Measured: protocol 1 about 260 writes; protocol 2 about 130, and
      // 640 (a write per piece of each chunk) before the relay gathered them.
      expect(toConsumer).toBeLessThan((size / (16 * 1024)) * 0.6);
    } finally {
      write.mockRestore();
    }
  });

  it("stops for good when the relay closes the tunnel with 4401", async () => {
    const refused = once(c.client, "refused");
    const [link] = c.relay.registry.all();
    link!.close(CloseCode.unauthorized, "the key was revoked");
    const [err] = (await refused) as [Error];
    expect(err.message).toContain("the key was revoked");
    await waitFor(() => c.client.state === "refused");
  });
});
