/**
 * The relay as a stranger, a member and a member's provider attack it: a real relay process
 * (`club-provider relay`), raw sockets and raw WebSockets. Each case checks the answer and that
 * the process is still serving afterwards.
 */
import { once } from "node:events";
import { connect as tcpConnect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { CONNECT_PATH, TUNNEL_SUBPROTOCOL } from "../../src/protocol/index.ts";
import { runCli, scratchDir, writeSecret, type CliProcess } from "../e2e/harness.ts";
import { freePort } from "../fakes/util.ts";

const KEY = "sk-hostile-test-0123456789";
let relay: CliProcess;
let base: string;

beforeAll(async () => {
  const home = scratchDir();
  writeSecret(home, "keys.json", JSON.stringify({ [KEY]: "mallory" }));
  const port = await freePort();
  relay = runCli(
    [
      "relay",
      "--port",
      String(port),
      "--keys",
      `${home}/keys.json`,
      "--data-dir",
      `${home}/data`,
      "--max-tunnels",
      "3",
      "--max-models",
      "5",
      "--control-rate",
      "1",
      "--auth-failures",
      "30",
      "--max-uploads",
      "2",
      "--upload-buffer",
      "1",
      "--upload-idle",
      "1",
      "--headers-timeout",
      "1",
      "--open-rate",
      "1",
    ],
    { home },
  );
  await relay.waitFor(/relay ready/);
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await relay.stop();
});

/** The relay still answers, and logged no fault of its own. */
async function stillServing(): Promise<void> {
  const res = await fetch(`${base}/healthz`);
  expect(res.status).toBe(200);
  expect(relay.child.exitCode).toBeNull();
  expect(relay.output()).not.toMatch(/"level":(50|60)/);
}

/** Sends raw bytes and returns the whole answer. */
async function raw(text: string): Promise<string> {
  const socket = tcpConnect(Number(new URL(base).port), "127.0.0.1");
  await once(socket, "connect");
  socket.end(text);
  let out = "";
  socket.on("data", (d: Buffer) => (out += d.toString("latin1")));
  await once(socket, "close");
  return out;
}

const card = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  input_modalities: ["text"],
  output_modalities: ["text"],
  features: [],
  context_length: 1024,
  ...extra,
});
const manifest = (models: unknown[], name = "rig") => ({
  schema_version: 1,
  agent: { name },
  hosts: [
    {
      id: "h",
      gpus: [],
      services: [
        { name: "s", engine: "llamacpp", type: "llm", features: [], max_concurrent: 1, models },
      ],
    },
  ],
});

function tunnel(key = KEY): WebSocket {
  const ws = new WebSocket(`${base.replace("http", "ws")}${CONNECT_PATH}`, TUNNEL_SUBPROTOCOL, {
    headers: { authorization: `Bearer ${key}` },
    perMessageDeflate: false,
  });
  ws.on("error", () => undefined);
  return ws;
}

function nextText(ws: WebSocket): Promise<Record<string, unknown>> {
  return new Promise((resolve) =>
    ws.on("message", (data: Buffer, isBinary) => {
      if (!isBinary) resolve(JSON.parse(data.toString()) as Record<string, unknown>);
    }),
  );
}

async function closeCode(ws: WebSocket): Promise<number> {
  if (ws.readyState === WebSocket.CLOSED) throw new Error("already closed");
  const [code] = (await once(ws, "close")) as [number];
  return code;
}

const hello = (m: unknown, name = "rig") =>
  JSON.stringify({ type: "hello", v: 1, provider: { name, version: "1" }, manifest: m });

describe("a member's provider", () => {
  it("is refused (4400) for a model card without features, and the relay goes on", async () => {
    const ws = tunnel();
    await once(ws, "open");
    const reply = nextText(ws);
    const { features: _, ...noFeatures } = card("m");
    ws.send(hello(manifest([noFeatures])));
    expect(await reply).toMatchObject({
      type: "error",
      fatal: true,
      message: expect.stringMatching(/models\[0\]\.features must be a list/),
    });
    expect(await closeCode(ws)).toBe(4400);
    await stillServing();
  });

  it("cannot crash it with a heartbeat whose services or gpus are the wrong type", async () => {
    const ws = tunnel();
    await once(ws, "open");
    const welcome = nextText(ws);
    ws.send(hello(manifest([card("ok")])));
    expect(await welcome).toMatchObject({ type: "welcome" });
    const reply = nextText(ws);
    ws.send(
      JSON.stringify({ type: "heartbeat", v: 1, seq: 1, in_flight: 0, queued: 0, services: {} }),
    );
    expect(await reply).toMatchObject({ type: "error", message: expect.stringMatching(/gpus/) });
    ws.close();
    await stillServing();
  });

  it("may not advertise more models than --max-models, nor a name of half a megabyte", async () => {
    const many = tunnel();
    await once(many, "open");
    const reply = nextText(many);
    many.send(hello(manifest([1, 2, 3, 4, 5, 6].map((i) => card(`m${i}`)))));
    expect(await reply).toMatchObject({
      message: expect.stringMatching(/advertises 6 models; this relay takes at most 5/),
    });
    expect(await closeCode(many)).toBe(4400);

    const named = tunnel();
    await once(named, "open");
    const refused = nextText(named);
    named.send(hello(manifest([card("m")]), "x".repeat(1 << 19)));
    expect(await refused).toMatchObject({ message: expect.stringMatching(/128 characters/) });
    expect(await closeCode(named)).toBe(4400);
    expect(relay.output()).not.toContain("x".repeat(200));
    await stillServing();
  });

  it("is closed (4429) when it floods control messages", async () => {
    const ws = tunnel();
    await once(ws, "open");
    const welcome = nextText(ws);
    ws.send(hello(manifest([card("flood")])));
    await welcome;
    const beat = JSON.stringify({
      type: "heartbeat",
      v: 1,
      seq: 1,
      in_flight: 0,
      queued: 0,
      services: {},
      gpus: [],
    });
    const closed = closeCode(ws);
    for (let i = 0; i < 100 && ws.readyState === WebSocket.OPEN; i++) ws.send(beat);
    expect(await closed).toBe(4429);
    await stillServing();
  });

  it("may hold at most --max-tunnels tunnels per member; a closed one frees its place", async () => {
    const open = [tunnel(), tunnel(), tunnel()];
    await Promise.all(open.map((ws) => once(ws, "open")));
    const fourth = tunnel();
    const [, res] = (await once(fourth, "unexpected-response")) as [
      unknown,
      { statusCode: number; headers: Record<string, string>; resume(): void },
    ];
    res.resume();
    expect(res.statusCode).toBe(429);
    expect(res.headers["retry-after"]).toBeDefined();
    open[0]?.close();
    await once(open[0] as WebSocket, "close");
    // The relay sees the close a moment after the client does.
    let again: WebSocket | undefined;
    for (let i = 0; i < 50 && !again; i++) {
      const ws = tunnel();
      const ok = await Promise.race([
        once(ws, "open").then(() => true),
        once(ws, "unexpected-response").then(([, r]: unknown[]) => {
          (r as { resume(): void }).resume();
          return false;
        }),
      ]);
      if (ok) again = ws;
      else await new Promise((r) => setTimeout(r, 20));
    }
    expect(again).toBeDefined();
    for (const ws of [...open, again]) ws?.terminate();
    await stillServing();
  });
});

/** Opens a request whose body stops after `sent` of its `length` bytes; resolves with its answer. */
async function stalled(length: number, sent: string, path = "/v1/chat/completions") {
  const socket = tcpConnect(Number(new URL(base).port), "127.0.0.1");
  await once(socket, "connect");
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer ${KEY}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n${sent}`,
  );
  let out = "";
  socket.on("data", (d: Buffer) => (out += d.toString("latin1")));
  const closed = once(socket, "close").then(() => out);
  return { socket, closed };
}

const post = (body: string) =>
  fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body,
  });

describe("a member's uploads", () => {
  it("are cut with 408 when they stop arriving (--upload-idle)", async () => {
    const { closed } = await stalled(1000, '{"model":');
    const answer = await closed;
    expect(answer).toMatch(/^HTTP\/1.1 408/);
    expect(answer).toContain("the request body stopped arriving");
    await stillServing();
  });

  it("may be slow, if they keep moving", async () => {
    const body = `{"model":"nobody-serves-this","messages":[]}${" ".repeat(40)}`;
    const { socket, closed } = await stalled(body.length, "");
    // Four bytes every 300 ms: four seconds in all, four times the idle cut.
    for (let i = 0; i < body.length; i += 4) {
      socket.write(body.slice(i, i + 4));
      await new Promise((r) => setTimeout(r, 300));
    }
    socket.end();
    const answer = await closed;
    expect(answer).toMatch(/^HTTP\/1.1 404/);
    expect(answer).toContain("no_provider");
  });

  it("are at most --max-uploads at once per member; the next gets 429", async () => {
    const first = await stalled(1000, "{");
    const second = await stalled(1000, "{");
    await new Promise((r) => setTimeout(r, 100));
    const res = await post('{"model":"m","messages":[]}');
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
      "the most one member may send at once",
    );
    first.socket.destroy();
    second.socket.destroy();
    await Promise.all([first.closed, second.closed]);
    await expect.poll(async () => (await post('{"model":"m","messages":[]}')).status).toBe(404);
  });

  it("free their place as soon as they are answered, though the body never came whole", async () => {
    // Answered at once (no route takes POST /v1/files), each body 1 of its 1000 bytes in.
    for (let i = 0; i < 3; i++) {
      const { socket, closed } = await stalled(1000, "{", "/v1/files");
      await expect.poll(() => socket.bytesRead).toBeGreaterThan(0);
      socket.destroy();
      await closed;
    }
    // At once, well inside the stall timer's second: the places are free.
    const res = await post('{"model":"m","messages":[]}');
    expect(res.status).toBe(404);
    await stillServing();
  });

  it("hold at most --upload-buffer MiB per member in memory", async () => {
    const res = await post(`{"model":"m","pad":"${"x".repeat(1_500_000)}"}`);
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
      "the most one member may hold at once is 1 MiB",
    );
    await stillServing();
  });

  it("count a form's file held back until its model is named against --upload-buffer", async () => {
    const form = new FormData();
    form.set("file", new Blob([Buffer.alloc(1_500_000, 1)], { type: "audio/wav" }), "a.wav");
    form.set("model", "m");
    const res = await fetch(`${base}/v1/audio/transcriptions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}` },
      body: form,
    });
    // Before, up to 32 MiB of each of a member's 16 uploads were held uncounted.
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
      "the most one member may hold at once is 1 MiB",
    );
    await stillServing();
  });

  it("must send their headers within --headers-timeout", async () => {
    const socket = tcpConnect(Number(new URL(base).port), "127.0.0.1");
    await once(socket, "connect");
    socket.write("POST /v1/chat/completions HTTP/1.1\r\nHost: relay\r\n");
    let out = "";
    socket.on("data", (d: Buffer) => (out += d.toString("latin1")));
    await once(socket, "close");
    expect(out).toMatch(/^HTTP\/1.1 408/);
    await stillServing();
  });
});

/** Sends `text` and keeps this end open after the answer; resolves with the answer and when the relay cut it. */
async function heldOpen(text: string): Promise<{ answer: string; cutAfterMs: number }> {
  const socket = tcpConnect({
    port: Number(new URL(base).port),
    host: "127.0.0.1",
    allowHalfOpen: true,
  });
  socket.on("error", () => undefined);
  await once(socket, "connect");
  socket.write(text);
  let answer = "";
  socket.on("data", (d: Buffer) => (answer += d.toString("latin1")));
  await once(socket, "end");
  const since = Date.now();
  // A byte now and then: once the relay has closed its side, one of them is refused (RST).
  const poke = setInterval(() => socket.write("x"), 100);
  // Not `once`: that rejects on the refused write's EPIPE, which is the point.
  await new Promise((resolve) => socket.once("close", resolve));
  clearInterval(poke);
  return { answer, cutAfterMs: Date.now() - since };
}

describe("a stranger", () => {
  it("gets the club's envelope for a request Node's parser refuses, and the connection closed", async () => {
    const cases: [string, RegExp, string][] = [
      [
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        /^HTTP\/1\.1 400 /,
        "malformed HTTP request",
      ],
      ["FOO /v1/models HTTP/1.1\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 400 /, "malformed HTTP request"],
      [
        `GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Pad: ${"p".repeat(20_000)}\r\n\r\n`,
        /^HTTP\/1\.1 431 /,
        "headers are larger than this relay takes",
      ],
      [
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        /^HTTP\/1\.1 405 /,
        "CONNECT is not served",
      ],
    ];
    for (const [request, status, message] of cases) {
      const answer = await raw(request);
      expect(answer).toMatch(status);
      const body = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as {
        error: { message: string; type: string };
      };
      expect(body.error.message).toContain(message);
      expect(body.error.type).toBe("invalid_request_error");
    }
    await stillServing();
  });

  it("cannot keep a refused connection open past --headers-timeout by never hanging up", async () => {
    const refusals = [
      `GET ${CONNECT_PATH} HTTP/1.1\r\nHost: x\r\nUpgrade: club-tunnel.2\r\nConnection: Upgrade\r\n` +
        "Authorization: Bearer wrong\r\n\r\n",
      "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
      "FOO / HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for (const text of refusals) {
      const { answer, cutAfterMs } = await heldOpen(text);
      expect(answer).toMatch(/^HTTP\/1\.1 4\d\d /);
      // --headers-timeout is 1 s here; before, a refused upgrade stayed open as long as its peer.
      expect(cutAfterMs).toBeLessThan(5000);
    }
    await stillServing();
  });

  it("cannot keep a connection open past --headers-timeout after an answer that came before its body", async () => {
    const post = (path: string, type: string, key: string, start: string): string =>
      `POST ${path} HTTP/1.1\r\nHost: x\r\n${key ? `Authorization: Bearer ${key}\r\n` : ""}` +
      `Content-Type: ${type}\r\nContent-Length: 100000000\r\n\r\n${start}`;
    const form = '--x\r\ncontent-disposition: form-data; name="model"\r\n\r\nnobody\r\n--x\r\n';
    // Each answered at once, the body's 100 MB declared and never sent: before, each connection
    // stayed open for as long as its peer kept it.
    for (const [text, status] of <[string, number][]>[
      [post("/v1/chat/completions", "application/json", "", '{"model":'), 401],
      [post("/v1/chat/completions", "application/json", KEY, '{"model":'), 413],
      [post("/v1/nothing", "application/json", KEY, "{}"), 404],
      [post("/v1/audio/transcriptions", "multipart/form-data; boundary=x", KEY, form), 404],
    ]) {
      const { answer, cutAfterMs } = await heldOpen(text);
      expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(answer).toMatch(/\r\n\r\n\{"error":\{"message":/);
      expect(cutAfterMs).toBeLessThan(5000);
    }
    await stillServing();
  });

  it("may fetch the keyless routes (gallery, media URLs) only at --open-rate per address", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${base}/v1/gallery`);
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    expect(statuses[0]).toBe(200);
    expect(statuses).toContain(429);
    await stillServing();
  });

  it("gets an answer, not a crash, for a malformed target on the WebSocket upgrade", async () => {
    const answer = await raw(
      "GET //[ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    expect(answer).toMatch(/^HTTP\/1\.1 (400|404) /);
    await stillServing();
  });

  it.each(["//[", "/v1/models/%E0%A4%A", "*", "http://evil.example/v1/models"])(
    "gets 400 or 404 for the target %s, never a 500",
    async (target) => {
      const answer = await raw(
        `GET ${target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nConnection: close\r\n\r\n`,
      );
      expect(answer).toMatch(/^HTTP\/1\.1 (400|404) /);
      expect(answer).toContain('"error"');
      await stillServing();
    },
  );

  it("is throttled after a burst of refused keys, with Retry-After", async () => {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 40; i++) {
      const res = await fetch(`${base}/v1/models`, {
        headers: { authorization: `Bearer sk-guess-${i}-0123456789abcdef` },
      });
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers.get("retry-after");
      await res.arrayBuffer();
    }
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // The tunnel endpoint counts the same refusals.
    const ws = tunnel("sk-guess-ws-0123456789abcdef");
    const [, res] = (await once(ws, "unexpected-response")) as [
      unknown,
      { statusCode: number; resume(): void },
    ];
    res.resume();
    expect(res.statusCode).toBe(429);
    await stillServing();
  });
});
