/** The fake llama-server answers byte for byte like the recorded one where it matters. */
import { once } from "node:events";
import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { FakeLlamaServer } from "./llama-server.ts";

describe("FakeLlamaServer", () => {
  let fake: FakeLlamaServer | undefined;
  async function start(
    options: ConstructorParameters<typeof FakeLlamaServer>[0] = {},
  ): Promise<string> {
    fake = new FakeLlamaServer(options);
    return fake.start();
  }
  afterEach(async () => {
    await fake?.stop();
  });

  async function get(
    url: string,
    init: {
      method?: "GET" | "POST" | "DELETE";
      body?: string;
      headers?: Record<string, string>;
    } = {},
  ) {
    const res = await request(url, {
      method: init.method ?? "GET",
      body: init.body ?? null,
      headers: init.headers ?? {},
    });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  }

  it("answers /health, unknown paths and wrong methods as recorded", async () => {
    const base = await start();
    const health = await get(`${base}/health`);
    expect([health.status, health.text, health.headers.server]).toEqual([
      200,
      '{"status":"ok"}',
      "llama.cpp",
    ]);
    expect(health.headers["content-type"]).toBe("application/json; charset=utf-8");
    for (const res of [
      await get(`${base}/v1/nonexistent`),
      await get(`${base}/v1/models`, { method: "DELETE" }),
    ]) {
      expect(res.status).toBe(404);
      expect(res.text).toBe(
        '{"error":{"message":"File Not Found","type":"not_found_error","code":404}}',
      );
      expect(res.headers.connection).toBe("close");
    }
  });

  it("answers bad requests as recorded: 500 for malformed JSON, 400 without messages", async () => {
    const base = await start();
    const headers = { "content-type": "application/json" };
    const bad = await get(`${base}/v1/chat/completions`, {
      method: "POST",
      headers,
      body: '{"messages":[',
    });
    expect(bad.status).toBe(500);
    expect(JSON.parse(bad.text).error).toMatchObject({ code: 500, type: "server_error" });
    const missing = await get(`${base}/v1/chat/completions`, {
      method: "POST",
      headers,
      body: '{"max_tokens":4}',
    });
    expect([missing.status, missing.text]).toEqual([
      400,
      `{"error":{"code":400,"message":"'messages' is required","type":"invalid_request_error"}}`,
    ]);
  });

  it("guards everything but /health with --api-key, accepting Bearer or X-Api-Key", async () => {
    const base = await start({ apiKey: "sk-harness-test", alias: "tiny-qwen2-chat" });
    expect((await get(`${base}/health`)).status).toBe(200);
    const refused = await get(`${base}/v1/models`);
    expect([refused.status, refused.text]).toEqual([
      401,
      '{"error":{"message":"Invalid API Key","type":"authentication_error","code":401}}',
    ]);
    expect(
      (await get(`${base}/props`, { headers: { "x-api-key": "sk-harness-test" } })).status,
    ).toBe(200);
    const models = await get(`${base}/v1/models`, {
      headers: { authorization: "Bearer sk-harness-test" },
    });
    expect(JSON.parse(models.text).data[0]).toMatchObject({
      id: "tiny-qwen2-chat",
      owned_by: "llamacpp",
    });
  });

  it("answers 503 Loading model while loading, except /v1/models (meta null)", async () => {
    const base = await start({ loading: true });
    const health = await get(`${base}/health`);
    expect([health.status, health.text]).toEqual([
      503,
      '{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}',
    ]);
    expect((await get(`${base}/props`)).status).toBe(503);
    expect(JSON.parse((await get(`${base}/v1/models`)).text).data[0].meta).toBeNull();
    fake!.setLoading(false);
    expect(JSON.parse((await get(`${base}/models`)).text).data[0].meta).toMatchObject({
      n_ctx: 256,
      ftype: "F16",
    });
  });

  it("shows in-flight requests in /slots and refuses fail_on_no_slot when all are busy", async () => {
    const base = await start({ totalSlots: 1 });
    fake!.pauseGenerations();
    const arrived = once(fake!, "request");
    const pending = get(`${base}/v1/chat/completions`, { method: "POST", body: '{"messages":[]}' });
    await arrived;
    const slots = JSON.parse((await get(`${base}/slots`)).text);
    expect(slots).toEqual([
      { id: 0, n_ctx: 256, speculative: false, is_processing: true, id_task: 553 },
    ]);
    const busy = await get(`${base}/slots?fail_on_no_slot=1`);
    expect([busy.status, busy.text]).toEqual([
      503,
      '{"error":{"code":503,"message":"no slot available","type":"unavailable_error"}}',
    ]);
    fake!.resumeGenerations();
    expect((await pending).status).toBe(200);
    expect(JSON.parse((await get(`${base}/slots`)).text)[0].is_processing).toBe(false);
  });

  it("answers text completions, cut by max_tokens with finish_reason length", async () => {
    const base = await start();
    const res = await get(`${base}/v1/completions`, {
      method: "POST",
      body: '{"prompt":"Once upon a time","max_tokens":2}',
    });
    const body = JSON.parse(res.text);
    expect(body).toMatchObject({
      object: "text_completion",
      system_fingerprint: "b1-80fb11a",
      model: "/models/tiny-qwen2-chat.gguf",
    });
    expect(body.choices).toEqual([
      { text: " Cas Axios", index: 0, logprobs: null, finish_reason: "length" },
    ]);
    const stream = await get(`${base}/v1/completions`, {
      method: "POST",
      body: '{"prompt":"x","max_tokens":1,"stream":true}',
    });
    const events = stream.text.split("\n\n").filter(Boolean);
    expect(events.at(-1)).toBe("data: [DONE]");
    expect(JSON.parse(events.at(-2)!.slice(6)).choices[0]).toEqual({
      text: "",
      index: 0,
      logprobs: null,
      finish_reason: "length",
    });
  });
});
