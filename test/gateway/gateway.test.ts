/**
 * The gateway as a closed door: only public endpoints, only advertised models, only to the
 * service that serves them, with no inbound credentials, private image URLs or oversize
 * uploads getting through. Mounted on a plain loopback listener, in front of fake engines.
 */
import http from "node:http";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { discover, type Catalog } from "../../src/discovery/catalog.ts";
import { Capacity } from "../../src/gateway/capacity.ts";
import { createGateway } from "../../src/gateway/gateway.ts";
import { silentLogger } from "../../src/log.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { FakeWhisperCpp } from "../fakes/whispercpp.ts";
import { FakeKokoro } from "../fakes/kokoro.ts";
import { FakeOpenAIServer } from "../fakes/openai-server.ts";
import { json, send, type Body, type RecordedRequest } from "../fakes/fake-server.ts";
import { recording } from "../fakes/audio.ts";

type Envelope = { error: { message: string; type: string } };

let llama: FakeLlamaServer;
let whisper: FakeWhisperCpp;
let kokoro: FakeKokoro;
let refuser: RefusingEngine;

/**
 * A vLLM-like engine that refuses each chat the way its message names, in the shapes engines
 * answer: an OpenAI envelope, Ollama's `{"error": "…"}`, vLLM's 401 `{"error": "Unauthorized"}`,
 * a 429 with Retry-After, plain text.
 */
class RefusingEngine extends FakeOpenAIServer {
  protected override async handle(
    req: RecordedRequest,
    body: Body,
    res: http.ServerResponse,
  ): Promise<void> {
    if (req.method !== "POST" || !req.path.startsWith("/v1/chat/completions"))
      return super.handle(req, body, res);
    const first =
      body.kind === "json"
        ? (body.value as { messages?: { content?: unknown }[] }).messages?.[0]?.content
        : undefined;
    const content = typeof first === "string" ? first : "";
    if (content === "envelope")
      return json(res, 400, {
        error: { message: "the prompt is too long", type: "invalid_request_error", code: 400 },
      });
    if (content === "ollama") return json(res, 404, { error: "model 'refuser' not found" });
    if (content === "unauthorized") return json(res, 401, { error: "Unauthorized" });
    if (content === "busy")
      return json(res, 429, { detail: "too many requests" }, { "retry-after": "7" });
    return send(res, 400, "bad request", "text/plain");
  }
}
let server: http.Server;
let base: string;
let catalog: Catalog;

beforeAll(async () => {
  llama = new FakeLlamaServer({ totalSlots: 1, tokens: ["ok"] });
  whisper = new FakeWhisperCpp();
  kokoro = new FakeKokoro();
  refuser = new RefusingEngine({ modelId: "refuser" });
  await Promise.all([llama.start(), whisper.start(), kokoro.start(), refuser.start()]);
  catalog = await discover({
    services: [{ url: llama.url }, { url: whisper.url }, { url: kokoro.url }, { url: refuser.url }],
    autodetect: false,
  });
  const gateway = createGateway({
    catalog: () => catalog,
    providerName: "rig",
    log: silentLogger,
    load: new Capacity({ queueSize: 1 }),
    maxUploadBytes: 64 * 1024,
  });
  server = http.createServer(gateway);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  server.close();
  await Promise.all([
    llama.stop(),
    whisper.stop(),
    kokoro.stop(),
    refuser.stop(),
    closeUpstreamPools(),
  ]);
});

async function post(
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Envelope }> {
  const res = await fetch(base + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Envelope };
}

const chat = { model: "tiny-qwen2-chat", messages: [{ role: "user", content: "hi" }] };

describe("gateway: an engine's refusals, in the club's envelope", () => {
  const ask = (content: string) =>
    post("/v1/chat/completions", { model: "refuser", messages: [{ role: "user", content }] });

  it("passes an engine's own OpenAI envelope as it came, status and fields", async () => {
    const { status, json } = await ask("envelope");
    expect(status).toBe(400);
    expect(json).toEqual({
      error: { message: "the prompt is too long", type: "invalid_request_error", code: 400 },
    });
  });

  it("puts any other 4xx in the envelope with the engine's message, its status kept", async () => {
    const speech = await post("/v1/audio/speech", { model: "kokoro", input: 42 });
    expect(speech.status).toBe(422);
    expect(speech.json.error.type).toBe("invalid_request_error");
    expect(speech.json.error.message).toBe(
      "Kokoro-FastAPI refused the request (422): input: Field required",
    );
    const missing = await ask("ollama");
    expect([missing.status, missing.json.error.type]).toEqual([404, "not_found_error"]);
    expect(missing.json.error.message).toContain("model 'refuser' not found");
    const text = await ask("plain");
    expect([text.status, text.json.error.message]).toEqual([
      400,
      "OpenAI-compatible server refused the request (400): bad request",
    ]);
  });

  it("keeps an engine's Retry-After on a 429", async () => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "refuser", messages: [{ role: "user", content: "busy" }] }),
    });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("7");
    expect(((await res.json()) as Envelope).error.type).toBe("rate_limit_error");
  });

  it("answers an engine's 401 as 502: the engine refused the rig, not the member", async () => {
    const { status, json } = await ask("unauthorized");
    expect(status).toBe(502);
    expect(json.error).toEqual({
      type: "upstream_error",
      message: "OpenAI-compatible server refused this rig's credentials (401): Unauthorized",
    });
  });
});

describe("gateway: what it forwards", () => {
  it("answers unknown paths and models with 404 without touching an engine", async () => {
    const before = llama.requests.length + whisper.requests.length;
    expect((await post("/props", {})).status).toBe(404);
    expect((await post("/v1/embeddings", { model: "tiny-qwen2-chat", input: "x" })).status).toBe(
      404,
    );
    expect((await fetch(`${base}/slots`)).status).toBe(404);
    expect((await post("/v1/chat/completions", { ...chat, model: "other" })).status).toBe(404);
    // A model of another type is not reachable through this endpoint either.
    expect((await post("/v1/chat/completions", { ...chat, model: "whisper" })).status).toBe(404);
    expect(llama.requests.length + whisper.requests.length).toBe(before);
  });

  it("answers 404 for an endpoint the model's engine does not serve, without calling it", async () => {
    const before = kokoro.requests.length;
    const res = await post("/v1/voice/generations", { model: "kokoro", input: "[S1] hi" });
    expect(res.status).toBe(404);
    expect(res.json).toEqual({
      error: {
        message: "Kokoro-FastAPI does not serve POST /v1/voice/generations",
        type: "not_found_error",
      },
    });
    expect(kokoro.requests.length).toBe(before);
    // The endpoints it does serve still reach it.
    const voices = await fetch(`${base}/v1/audio/voices?model=kokoro`);
    expect(voices.status).toBe(200);
    expect(kokoro.requests.length).toBeGreaterThan(before);
  });

  it("passes no inbound credentials or hop-by-hop headers to the engine", async () => {
    const res = await post("/v1/chat/completions", chat, {
      authorization: "Bearer sk-consumer-secret",
      cookie: "session=1",
      "x-api-key": "sk-other",
      "proxy-authorization": "Basic x",
    });
    expect(res.status).toBe(200);
    const seen = llama.requests.at(-1)!.headers;
    for (const h of ["authorization", "cookie", "x-api-key", "proxy-authorization"])
      expect(seen[h]).toBeUndefined();
  });

  it("refuses image URLs that point at the rig or its network, before the engine sees them", async () => {
    const before = llama.requests.length;
    const res = await post("/v1/chat/completions", {
      ...chat,
      messages: [
        {
          role: "user",
          content: [{ type: "image_url", image_url: { url: "http://192.168.1.1/admin.png" } }],
        },
      ],
    });
    expect(res.status).toBe(400);
    expect(res.json.error.message).toMatch(/private address/);
    expect(llama.requests.length).toBe(before);
    const ok = await post("/v1/chat/completions", {
      ...chat,
      messages: [
        {
          role: "user",
          content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }],
        },
      ],
    });
    expect(ok.status).toBe(200);
  });

  it("refuses IPv4-mapped, numeric and video/audio URLs at the rig before the engine sees them", async () => {
    const before = llama.requests.length;
    for (const part of [
      { type: "image_url", image_url: { url: "http://[::ffff:127.0.0.1]:8080/props" } },
      { type: "image_url", image_url: { url: "http://2130706433/" } },
      { type: "video_url", video_url: { url: "http://[::ffff:10.0.0.1]/clip.mp4" } },
      { type: "audio_url", audio_url: { url: "http://example.com\\@127.0.0.1/a.wav" } },
    ]) {
      const res = await post("/v1/chat/completions", {
        ...chat,
        messages: [{ role: "user", content: [part] }],
      });
      expect(res.status, JSON.stringify(part)).toBe(400);
      expect(res.json.error.type).toBe("invalid_request_error");
    }
    expect(llama.requests.length).toBe(before);
  });

  it("refuses an upload over the limit with 413", async () => {
    const form = new FormData();
    form.set("model", "whisper");
    form.set("file", new Blob([recording(10)]), "long.wav");
    // The relay names the model of a multipart request in a header; the gateway does not parse forms.
    const res = await fetch(`${base}/v1/audio/transcriptions`, {
      method: "POST",
      body: form,
      headers: { "x-club-model": "whisper" },
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as Envelope).error.type).toBe("request_too_large");
  });

  it("queues past capacity and answers 429 with Retry-After past the queue", async () => {
    llama.pauseGenerations();
    const running = post("/v1/chat/completions", chat);
    await new Promise<void>((resolve) => llama.once("request", () => resolve()));
    const queued = post("/v1/chat/completions", chat);
    let refused: Response | undefined;
    await expect
      .poll(async () => {
        refused = await fetch(`${base}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(chat),
        });
        return refused.status;
      })
      .toBe(429);
    expect(refused!.headers.get("retry-after")).toBe("1");
    expect(((await refused!.json()) as Envelope).error.message).toMatch(
      /at capacity .*1 running, 1 waiting/,
    );
    llama.resumeGenerations();
    expect((await running).status).toBe(200);
    expect((await queued).status).toBe(200);
  });
});
