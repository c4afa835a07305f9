/**
 * `forward` against a provider's HTTP/2 end (a plain HTTP/2 server standing in for the daemon
 * behind the tunnel): what happens to a stream the relay gives up on.
 */
import http2 from "node:http2";
import { once } from "node:events";
import net from "node:net";
import { Duplex, PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { forward, type ForwardSink } from "../../src/relay/forward.ts";
import type { ProviderLink } from "../../src/relay/provider-link.ts";

let server: http2.Http2Server;
let port: number;

beforeAll(async () => {
  server = http2.createServer((req, res) => {
    req.resume();
    if (req.url === "/v1/images/generations") {
      // A hostile provider: headers that would act on the relay's origin in a browser.
      res.writeHead(200, {
        "content-type": "image/png",
        "content-disposition": 'attachment; filename="a.png"',
        "cache-control": "no-store",
        "set-cookie": "session=stolen; Domain=relay.example; Path=/",
        "access-control-allow-origin": "*",
        "access-control-allow-credentials": "true",
        "strict-transport-security": "max-age=0",
        "x-club-provider": "rig",
        location: "https://evil.example/",
      });
      res.end("png");
      return;
    }
    // A full provider: its 429 and the envelope in one go, as the daemon's gateway answers.
    const body = JSON.stringify({ error: { message: "full", type: "rate_limit_error" } });
    res.writeHead(429, { "content-type": "application/json", "retry-after": "1" });
    res.end(body);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/**
 * A connection that hands over what arrives in batches, as the tunnel does with each WebSocket
 * message: a response's HEADERS and DATA frames reach the HTTP/2 session together.
 */
function batched(): Duplex {
  const socket = net.connect(port, "127.0.0.1");
  const pending: Buffer[] = [];
  let timer: NodeJS.Timeout | undefined;
  const duplex = new Duplex({
    read: () => undefined,
    write: (chunk: Buffer, _encoding, callback) => socket.write(chunk, callback),
    destroy: (err, callback) => {
      socket.destroy();
      callback(err);
    },
  });
  socket.on("data", (data: Buffer) => {
    pending.push(data);
    timer ??= setTimeout(() => {
      timer = undefined;
      duplex.push(Buffer.concat(pending.splice(0)));
    }, 20);
  });
  socket.on("close", () => duplex.push(null));
  return duplex;
}

/** What `forward` uses of a provider link (its session, name and in-flight count), connected. */
async function provider(): Promise<ProviderLink> {
  const session = http2.connect(`http://127.0.0.1:${port}`, { createConnection: batched });
  await once(session, "connect");
  return {
    name: "rig",
    inFlight: 0,
    session,
    request: (headers: http2.OutgoingHttpHeaders, endStream: boolean) =>
      session.request(headers, { endStream }),
  } as unknown as ProviderLink;
}

/** A consumer response that records its status and takes what it is sent. */
function consumer(): ForwardSink & { status?: number; headers?: Record<string, unknown> } {
  const out = new PassThrough() as unknown as ForwardSink & {
    status?: number;
    headers?: Record<string, unknown>;
  };
  Object.assign(out, {
    headersSent: false,
    writeHead(status: number, headers: Record<string, unknown>) {
      out.status = status;
      out.headers = headers;
      return out;
    },
    flushHeaders: () => undefined,
  });
  (out as unknown as PassThrough).resume();
  return out;
}

/** A chat request through `link`, tried elsewhere on a 429. */
function send(link: ProviderLink, res: ForwardSink): ReturnType<typeof forward> {
  return forward({
    link,
    method: "POST",
    path: "/v1/chat/completions",
    headers: { "content-type": "application/json" },
    body: Buffer.from("{}"),
    model: "m",
    member: "alice",
    requestId: "req_test",
    res,
    log: silentLogger,
    retryOn: (status) => status === 429,
  });
}

describe("forward", () => {
  it("lets go of a refused stream at once, so the next provider can be tried", async () => {
    const link = await provider();
    for (let i = 0; i < 10; i++) {
      const res = consumer();
      expect(await send(link, res)).toBe("retry");
      // Nothing reached the consumer: the next provider answers it.
      expect([res.status, res.writableEnded]).toEqual([undefined, false]);
    }
    expect(link.inFlight).toBe(0);
    // Every stream is closed: the session closes gracefully, which waits for open streams.
    link.session.close();
    await once(link.session, "close");
  });
});

describe("forward's response headers", () => {
  it("pass what describes the body and never cookies, CORS or redirects", async () => {
    const link = await provider();
    const res = consumer();
    await forward({
      link,
      method: "POST",
      path: "/v1/images/generations",
      headers: { "content-type": "application/json" },
      body: Buffer.from("{}"),
      model: "m",
      member: "alice",
      requestId: "req_headers",
      res,
      log: silentLogger,
    });
    expect(res.status).toBe(200);
    expect(res.headers).toEqual({
      "content-type": "image/png",
      "content-disposition": 'attachment; filename="a.png"',
      "cache-control": "no-store",
      "x-club-provider": "rig",
      "x-club-request-id": "req_headers",
      "x-content-type-options": "nosniff",
    });
    link.session.close();
    await once(link.session, "close");
  });
});
