import { once } from "node:events";
import http2, { type ClientHttp2Session } from "node:http2";
import { afterEach, describe, expect, it } from "vitest";
import type { TunnelClient, TunnelExchange } from "../../src/tunnel/client.ts";
import { HostileRelay, victim, type HostileConnection } from "./hostile-relay.ts";

let relay: HostileRelay;
let client: TunnelClient | undefined;

afterEach(async () => {
  client?.stop();
  client = undefined;
  await relay.close();
});

/** A daemon with `onRequest`, and the relay's HTTP/2 session to it once it is welcomed. */
async function tunnel(
  onRequest: (x: TunnelExchange) => void,
): Promise<{ conn: HostileConnection; session: ClientHttp2Session }> {
  relay = new HostileRelay();
  const url = await relay.start();
  client = victim(url, { onRequest: (req) => onRequest(req) });
  client.start();
  const conn = await relay.connection(0);
  const connected = once(client, "connected");
  conn.welcome();
  await connected;
  const session = conn.h2();
  await once(session, "remoteSettings");
  return { conn, session };
}

/** POSTs `body`; resolves with the answer once the stream has closed. */
function post(session: ClientHttp2Session, body: string) {
  return new Promise<{ headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": "/v1/chat/completions",
      "content-type": "application/json",
      "x-club-model": "m1",
    });
    let headers: http2.IncomingHttpHeaders = {};
    let text = "";
    stream.on("response", (h) => (headers = h));
    stream.on("data", (d: Buffer) => (text += d.toString()));
    stream.on("close", () => resolve({ headers, body: text }));
    stream.on("error", reject);
    stream.end(body);
  });
}

describe("the daemon's end of a tunnel stream", () => {
  it("gives the handler the request's method, path and headers, and sends a whole answer in one WebSocket message", async () => {
    const seen: string[] = [];
    const { conn, session } = await tunnel((x) => {
      const parts: Buffer[] = [];
      x.on("data", (d: Buffer) => parts.push(d));
      x.on("end", () => {
        seen.push(`${x.method} ${x.url} ${String(x.headers["x-club-model"])}`);
        const body = Buffer.concat(parts);
        x.writeHead(200, { "content-type": "application/json", "content-length": body.length });
        x.end(body);
      });
    });
    let binary = 0;
    conn.ws.on("message", (_d, isBinary) => {
      if (isBinary) binary++;
    });
    expect((await post(session, '{"warm":1}')).body).toBe('{"warm":1}');
    for (let i = 0; i < 3; i++) {
      binary = 0;
      const answer = await post(session, `{"n":${i}}`);
      expect(answer.headers[":status"]).toBe(200);
      expect(answer.body).toBe(`{"n":${i}}`);
      // HEADERS, DATA and END_STREAM together: Node's compatibility layer sent END_STREAM in a
      // message of its own, after the body.
      expect(binary).toBe(1);
    }
    expect(seen[1]).toBe("POST /v1/chat/completions m1");
  });

  it("drops the connection-specific headers of an engine's HTTP/1 answer, which HTTP/2 forbids", async () => {
    const { session } = await tunnel((x) => {
      x.resume();
      x.writeHead(200, {
        connection: "keep-alive",
        "Keep-Alive": "timeout=5",
        "transfer-encoding": "chunked",
        "x-engine": "yes",
      });
      x.end("hi");
    });
    const answer = await post(session, "{}");
    expect(answer.headers[":status"]).toBe(200);
    expect(answer.headers["x-engine"]).toBe("yes");
    expect(answer.headers.connection).toBeUndefined();
    expect(answer.headers["keep-alive"]).toBeUndefined();
    expect(answer.body).toBe("hi");
  });

  it("drops an answer to a stream the relay reset, and serves the next one", async () => {
    let late: Promise<boolean> | undefined;
    const { session } = await tunnel((x) => {
      x.resume();
      if (x.headers["x-reset"]) {
        late = new Promise((resolve) =>
          x.once("close", () => {
            x.writeHead(200, { "content-type": "text/plain" });
            x.end("too late");
            resolve(x.headersSent);
          }),
        );
        return;
      }
      x.writeHead(200).end("ok");
    });
    const stream = session.request({ ":method": "POST", ":path": "/v1/x", "x-reset": "1" });
    stream.on("error", () => undefined);
    stream.end("{}");
    await until(() => late !== undefined);
    stream.close(http2.constants.NGHTTP2_CANCEL);
    expect(await late).toBe(false);
    expect((await post(session, "{}")).body).toBe("ok");
  });
});

async function until(ok: () => boolean): Promise<void> {
  while (!ok()) await new Promise((r) => setImmediate(r));
}
