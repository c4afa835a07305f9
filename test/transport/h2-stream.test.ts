/**
 * `resetStream` on real HTTP/2 over loopback: the peer hears the reset however the stream was
 * being written, and a stream cut mid-body never shows its peer a clean end.
 */
import { once } from "node:events";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { PassThrough, pipeline } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resetStream } from "../../src/transport/h2-stream.ts";

interface Seen {
  stream: http2.ServerHttp2Stream;
  /** Body bytes read, and whether the body ended cleanly (END_STREAM) before the stream closed. */
  bytes: number;
  ended: boolean;
  closed: Promise<void>;
}

let server: http2.Http2Server;
let client: http2.ClientHttp2Session;
const arrivals: ((seen: Seen) => void)[] = [];

beforeAll(async () => {
  server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const closed = new Promise<void>((resolve) => stream.on("close", resolve));
    const seen: Seen = { stream, bytes: 0, ended: false, closed };
    stream.on("error", () => undefined);
    stream.on("data", (chunk: Buffer) => (seen.bytes += chunk.length));
    stream.on("end", () => (seen.ended = stream.rstCode === 0));
    if (headers[":path"] === "/answer") {
      stream.respond({ ":status": 200 });
      stream.end(Buffer.alloc(1000));
    }
    arrivals.shift()?.(seen);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  await once(client, "connect");
});

afterAll(async () => {
  client.close();
  await new Promise((resolve) => server.close(resolve));
});

const arrival = (): Promise<Seen> => new Promise((resolve) => arrivals.push(resolve));

/** Resolves once the server has read `bytes` of the stream's body. */
async function read(seen: Seen, bytes: number): Promise<void> {
  while (seen.bytes < bytes) await new Promise((resolve) => seen.stream.once("data", resolve));
}

describe("resetStream", () => {
  it("reaches the peer while a pipeline still writes the body, and the body never looks whole", async () => {
    const next = arrival();
    const body = new PassThrough();
    const stream = client.request({ ":method": "POST", ":path": "/upload" });
    stream.on("error", () => undefined);
    const piped = new Promise<Error | undefined>((resolve) =>
      pipeline(body, stream, (err) => resolve(err ?? undefined)),
    );
    body.write(Buffer.alloc(50_000));
    const seen = await next;
    await read(seen, 50_000);
    // What `stream.close(NGHTTP2_CANCEL)` did: the pipeline destroyed the stream inside it,
    // and the server waited on it for ever.
    resetStream(stream);
    await seen.closed;
    expect(seen.stream.aborted).toBe(true);
    expect(seen.stream.rstCode).not.toBe(http2.constants.NGHTTP2_NO_ERROR);
    expect(seen.ended).toBe(false);
    expect(await piped).toBeInstanceOf(Error);
  });

  it("reaches the peer while a plain pipe writes the body, without END_STREAM first", async () => {
    const next = arrival();
    const body = new PassThrough();
    const stream = client.request({ ":method": "POST", ":path": "/upload" });
    stream.on("error", () => undefined);
    body.pipe(stream);
    body.write(Buffer.alloc(20_000));
    const seen = await next;
    await read(seen, 20_000);
    resetStream(stream);
    await seen.closed;
    expect(seen.stream.aborted).toBe(true);
    expect(seen.ended).toBe(false);
  });

  it("sends CANCEL once the body was sent whole", async () => {
    const next = arrival();
    const stream = client.request({ ":method": "POST", ":path": "/upload" });
    stream.end(Buffer.alloc(1000));
    const seen = await next;
    await read(seen, 1000);
    resetStream(stream);
    await seen.closed;
    expect(seen.stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
  });

  it("closes a client stream whose answer came whole but was never read", async () => {
    const stream = client.request({ ":method": "GET", ":path": "/answer" }, { endStream: true });
    await once(stream, "response");
    // Paused with the answer in its buffer: without reading it away it would never close.
    stream.pause();
    resetStream(stream);
    await once(stream, "close");
    expect(stream.closed).toBe(true);
  });
});
