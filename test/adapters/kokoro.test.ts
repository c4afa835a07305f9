import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { DiscoveredModel, Upstream } from "../../adapters/adapter.ts";
import { toVoices } from "../../adapters/kit/audio.ts";
import kokoro from "../../adapters/kokoro.ts";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { findEndpoint } from "../../src/protocol/index.ts";
import { firstChunk, readBytes, speechCall, voicesCall } from "../fakes/audio-calls.ts";
import { speechPieces } from "../fakes/audio.ts";
import type { FakeServer } from "../fakes/fake-server.ts";
import { FakeKokoro } from "../fakes/kokoro.ts";
import { FakeSpeaches } from "../fakes/speaches.ts";
import { describeAdapterConformance } from "./conformance.ts";

const TEXT = "Hello there. How are you today?";

describeAdapterConformance("kokoro", {
  adapter: kokoro,
  fake: (options) => new FakeKokoro(options),
  apiKey: false, // Kokoro-FastAPI has no API key setting
  models: (model) =>
    expect(model).toMatchObject({
      type: "tts",
      inputModalities: ["text"],
      outputModalities: ["audio"],
      features: [],
    }),
  calls: {
    execute: {
      call: (upstream, model, signal) =>
        speechCall(
          upstream,
          model,
          { input: TEXT, voice: "af_heart", response_format: "wav", stream: false },
          signal,
        ),
      check(reply, body, fake, model) {
        expect(reply.headers["content-type"]).toBe("audio/wav");
        expect(reply.headers["content-length"]).toBe(String(body.length));
        expect(body.equals(Buffer.concat(speechPieces(TEXT, "wav")))).toBe(true);
        expect(fake.requests.at(-1)!.body).toEqual({
          input: TEXT,
          voice: "af_heart",
          response_format: "wav",
          stream: false,
          model: model.servedId,
        });
      },
    },
    stream: {
      call: (upstream, model, signal) =>
        speechCall(
          upstream,
          model,
          { input: TEXT, voice: "af_heart", response_format: "pcm" },
          signal,
        ),
      contentType: /^audio\/pcm$/,
      first: firstChunk,
      check: (all) => expect(all.equals(Buffer.concat(speechPieces(TEXT, "pcm")))).toBe(true),
    },
    error: {
      call: (upstream, model, signal) =>
        speechCall(upstream, model, { input: TEXT, voice: "xx_nobody" }, signal),
      check(status, body) {
        expect(status).toBe(400);
        expect(JSON.parse(body).detail.message).toMatch(/^Voice 'xx_nobody' not found/);
      },
    },
  },
});

describe("kokoro adapter", () => {
  const adapter = kokoro();
  const running: FakeServer[] = [];
  const signal = (): AbortSignal => AbortSignal.timeout(5_000);

  async function start(fake: FakeServer = new FakeKokoro()): Promise<Upstream> {
    running.push(fake);
    return { url: await fake.start() };
  }
  async function model(upstream: Upstream): Promise<DiscoveredModel> {
    return (await adapter.describe(upstream, signal())).models[0]!;
  }

  afterEach(async () => {
    await Promise.all(running.splice(0).map((f) => f.stop()));
  });
  afterAll(() => closeUpstreamPools());

  it("advertises one tts model, kokoro, for the four names Kokoro lists", async () => {
    expect(await adapter.describe(await start(), signal())).toEqual({
      engine: "other",
      label: "Kokoro-FastAPI",
      maxConcurrent: null,
      models: [
        {
          id: "kokoro",
          servedId: "kokoro",
          type: "tts",
          inputModalities: ["text"],
          outputModalities: ["audio"],
          features: [],
          contextLength: null,
        },
      ],
    });
  });

  it("tells Kokoro from speaches, whose Kokoro model is not owned_by kokoro", async () => {
    const result = await adapter.probe(await start(new FakeSpeaches()), signal());
    expect(result).toEqual({
      status: "no",
      reason: 'GET /v1/models: owned_by is "Systran", not kokoro',
    });
  });

  it("reports an unhealthy Kokoro as loading, with its reason", async () => {
    const result = await adapter.probe(await start(new FakeKokoro({ loading: true })), signal());
    expect(result).toEqual({
      status: "loading",
      reason:
        "Kokoro-FastAPI is not healthy yet (GET /health: 503, espeak error detected during operation)",
    });
  });

  it("answers voices in the club's shape: sorted, with language and gender from the name", async () => {
    const upstream = await start();
    const reply = await adapter.execute(voicesCall(upstream, await model(upstream)));
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toBe("application/json");
    expect(JSON.parse((await readBytes(reply.body)).toString())).toEqual({
      voices: [
        { id: "af_bella", name: "af_bella", language: "en-us", gender: "female" },
        { id: "af_heart", name: "af_heart", language: "en-us", gender: "female" },
        { id: "am_michael", name: "am_michael", language: "en-us", gender: "male" },
        { id: "bf_emma", name: "bf_emma", language: "en-gb", gender: "female" },
        { id: "jf_alpha", name: "jf_alpha", language: "ja", gender: "female" },
      ],
    });
  });

  it("reads the legacy string voice list as well", () => {
    expect(toVoices(["b", "a", { id: "c", name: "C" }, "a", 7])).toEqual([
      { id: "a", name: "a" },
      { id: "b", name: "b" },
      { id: "c", name: "C" },
    ]);
  });

  it("streams mp3 by default, and keeps Kokoro from writing download files on the rig", async () => {
    const fake = new FakeKokoro();
    const upstream = await start(fake);
    const call = speechCall(upstream, await model(upstream), {
      input: TEXT,
      voice: "af_heart",
      return_download_link: true,
      download_format: "wav",
    });
    const reply = await adapter.execute(call);
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toBe("audio/mpeg");
    expect(reply.headers["content-length"]).toBeUndefined();
    expect((await readBytes(reply.body)).equals(Buffer.concat(speechPieces(TEXT, "mp3")))).toBe(
      true,
    );
    expect(fake.requests.at(-1)!.body).toEqual({ input: TEXT, voice: "af_heart", model: "kokoro" });
  });

  it("passes an engine failure through for the gateway to report", async () => {
    const fake = new FakeKokoro();
    const upstream = await start(fake);
    fake.speechError = "espeak crashed";
    const reply = await adapter.execute(
      speechCall(upstream, await model(upstream), { input: TEXT }),
    );
    expect(reply.status).toBe(500);
    expect(JSON.parse((await readBytes(reply.body)).toString()).detail.message).toBe(
      "espeak crashed",
    );
  });

  it("refuses the tts endpoints Kokoro does not serve, without contacting it", async () => {
    const fake = new FakeKokoro();
    const upstream = await start(fake);
    const call = {
      ...speechCall(upstream, await model(upstream), { input: TEXT }),
      endpoint: findEndpoint("POST", "/v1/voice/generations")!,
      path: "/v1/voice/generations",
    };
    const before = fake.requests.length;
    const reply = await adapter.execute(call);
    expect(reply.status).toBe(404);
    expect(JSON.parse((await readBytes(reply.body)).toString())).toEqual({
      error: {
        message: "Kokoro-FastAPI does not serve POST /v1/voice/generations",
        type: "not_found_error",
      },
    });
    expect(fake.requests.length).toBe(before);
  });
});
