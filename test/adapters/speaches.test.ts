import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { DiscoveredModel, EngineCall, Upstream } from "../../adapters/adapter.ts";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import speaches from "../../adapters/speaches.ts";
import {
  firstChunk,
  readBytes,
  speechCall,
  transcriptionCall,
  voicesCall,
  type PartSpec,
} from "../fakes/audio-calls.ts";
import { recording, speechPieces, subtitles, timedTranscript } from "../fakes/audio.ts";
import type { FakeServer } from "../fakes/fake-server.ts";
import { FakeSpeaches, SPEACHES_PIPER, SPEACHES_STT, SPEACHES_TTS } from "../fakes/speaches.ts";
import { describeAdapterConformance } from "./conformance.ts";

const WAV = recording(2);
const FILE: PartSpec = { name: "file", filename: "hello.wav", type: "audio/wav", data: WAV };
const TEXT = "Hello from the rig. Audio works end to end.";
const stt = (models: DiscoveredModel[]): DiscoveredModel | undefined =>
  models.find((m) => m.type === "stt");
const asText = (b: Buffer): string => b.toString("utf8");

describeAdapterConformance("speaches", {
  adapter: speaches,
  fake: (options) => new FakeSpeaches(options),
  // speaches loads models on first use and listens only once started: no loading state.
  loading: false,
  pick: stt,
  models(model) {
    expect(["stt", "tts"]).toContain(model.type);
    expect(model.features).toEqual(model.type === "stt" ? ["timestamps"] : []);
    expect(model.outputModalities).toEqual(model.type === "stt" ? ["text"] : ["audio"]);
  },
  calls: {
    execute: {
      call: (upstream, model, signal) =>
        transcriptionCall(upstream, model, [{ name: "model", value: model.id }, FILE], signal),
      check(reply, body, fake) {
        expect(reply.headers["content-type"]).toBe("application/json");
        expect(JSON.parse(asText(body))).toEqual({ text: TEXT });
        if (!(fake instanceof FakeSpeaches)) throw new Error("not the speaches fake");
        const form = fake.forms.at(-1)!;
        expect(form.fields).toEqual({ model: [SPEACHES_STT] });
        expect(form.files.file).toMatchObject({ filename: "hello.wav", type: "audio/wav" });
        expect(form.files.file!.bytes.equals(WAV)).toBe(true);
      },
    },
    stream: {
      call: (upstream, _model, signal) =>
        speechCall(
          upstream,
          ttsModel,
          { input: TEXT, voice: "af_heart", response_format: "wav" },
          signal,
        ),
      contentType: /^audio\/wav$/,
      first: firstChunk,
      check: (all) => expect(all.equals(Buffer.concat(speechPieces(TEXT, "wav")))).toBe(true),
    },
    error: {
      call: (upstream, model, signal) =>
        transcriptionCall(
          upstream,
          model,
          [
            { name: "model", value: model.id },
            { ...FILE, data: Buffer.from("not audio") },
          ],
          signal,
        ),
      check(status, body) {
        expect(status).toBe(400);
        expect(JSON.parse(body)).toEqual({ detail: "Failed to decode the audio file" });
      },
    },
  },
});

/** speaches' Kokoro model as describe lists it (the stream case speaks through it). */
const ttsModel: DiscoveredModel = {
  id: SPEACHES_TTS,
  servedId: SPEACHES_TTS,
  type: "tts",
  inputModalities: ["text"],
  outputModalities: ["audio"],
  features: [],
  contextLength: null,
};

describe("speaches adapter", () => {
  const adapter = speaches();
  const running: FakeServer[] = [];
  const signal = (): AbortSignal => AbortSignal.timeout(5_000);
  let fake: FakeSpeaches;
  let upstream: Upstream;
  let models: DiscoveredModel[];

  async function start(): Promise<void> {
    fake = new FakeSpeaches();
    running.push(fake);
    upstream = { url: await fake.start() };
    models = (await adapter.describe(upstream, signal())).models;
  }
  const byId = (id: string): DiscoveredModel => models.find((m) => m.servedId === id)!;
  async function run(call: EngineCall): Promise<{ status: number; type?: string; body: string }> {
    const reply = await adapter.execute(call);
    const type = reply.headers["content-type"];
    return {
      status: reply.status,
      ...(type ? { type } : {}),
      body: asText(await readBytes(reply.body)),
    };
  }
  const transcribe = (fields: [string, string][], model = byId(SPEACHES_STT)): EngineCall =>
    transcriptionCall(upstream, model, [
      FILE,
      { name: "model", value: model.id },
      ...fields.map(([name, value]) => ({ name, value })),
    ]);

  afterEach(async () => {
    await Promise.all(running.splice(0).map((f) => f.stop()));
  });
  afterAll(() => closeUpstreamPools());

  it("advertises recognition as stt with timestamps and synthesis as tts, nothing else", async () => {
    await start();
    expect(models.map((m) => [m.id, m.type, m.features])).toEqual([
      [SPEACHES_STT, "stt", ["timestamps"]],
      [SPEACHES_TTS, "tts", []],
      [SPEACHES_PIPER, "tts", []],
    ]);
  });

  it("passes every response_format through with speaches' content types", async () => {
    await start();
    const segments = timedTranscript(2);
    expect(await run(transcribe([["response_format", "text"]]))).toEqual({
      status: 200,
      type: "text/plain; charset=utf-8",
      body: TEXT,
    });
    expect(await run(transcribe([["response_format", "srt"]]))).toMatchObject({
      type: "text/plain; charset=utf-8",
      body: subtitles("srt", segments),
    });
    expect(await run(transcribe([["response_format", "vtt"]]))).toMatchObject({
      type: "text/vtt; charset=utf-8",
      body: subtitles("vtt", segments),
    });
  });

  it("keeps every field, repeated timestamp granularities included, and gets word timings", async () => {
    await start();
    const fields: [string, string][] = [
      ["response_format", "verbose_json"],
      ["timestamp_granularities[]", "word"],
      ["timestamp_granularities[]", "segment"],
      ["language", "en"],
      ["hotwords", "rig"],
    ];
    const { body } = await run(transcribe(fields));
    const verbose = JSON.parse(body) as { words: { word: string }[]; segments: unknown[] };
    expect(verbose.words.map((w) => w.word.trim())).toEqual(TEXT.split(" "));
    expect(verbose.segments).toHaveLength(2);
    expect(fake.forms.at(-1)!.fields).toEqual({
      model: [SPEACHES_STT],
      response_format: ["verbose_json"],
      "timestamp_granularities[]": ["word", "segment"],
      language: ["en"],
      hotwords: ["rig"],
    });
  });

  it("sends the served id when an operator alias renamed the model", async () => {
    await start();
    const aliased = { ...byId(SPEACHES_STT), id: "whisper-tiny" };
    const call = transcriptionCall(
      upstream,
      aliased,
      [{ name: "model", value: "whisper-tiny" }, FILE],
      undefined,
      7,
    );
    expect((await run(call)).status).toBe(200);
    expect(fake.forms.at(-1)!.fields.model).toEqual([SPEACHES_STT]);
    expect(fake.forms.at(-1)!.files.file!.bytes.equals(WAV)).toBe(true);
  });

  it("refuses a malformed form itself, without sending it on", async () => {
    await start();
    const call = transcribe([]);
    call.headers["content-type"] = "multipart/form-data; boundary=not-the-one-used";
    const before = fake.requests.length;
    const result = await run(call);
    expect(result.status).toBe(400);
    expect(JSON.parse(result.body).error.type).toBe("invalid_request_error");
    expect(fake.forms).toHaveLength(0);
    expect(fake.requests.length - before).toBeLessThanOrEqual(1);
  });

  it("lists each tts model's own voices in the club's shape", async () => {
    await start();
    expect(JSON.parse((await run(voicesCall(upstream, byId(SPEACHES_TTS)))).body)).toEqual({
      voices: [
        { id: "af_heart", name: "af_heart", language: "en-us", gender: "female" },
        { id: "bm_george", name: "bm_george", language: "en-gb", gender: "male" },
      ],
    });
    expect(JSON.parse((await run(voicesCall(upstream, byId(SPEACHES_PIPER)))).body)).toEqual({
      voices: [{ id: "amy", name: "amy", language: "en" }],
    });
  });

  it("falls back to every installed voice when the model entry has none", async () => {
    await start();
    const unknown = { ...byId(SPEACHES_TTS), id: "gone", servedId: "org/gone" };
    const answer = JSON.parse((await run(voicesCall(upstream, unknown))).body) as {
      voices: { id: string }[];
    };
    const ids = answer.voices.map((v) => v.id);
    expect(ids).toEqual(["af_heart", "amy", "bm_george"]);
  });

  it("passes speech as server-sent events through when the consumer asks for them", async () => {
    await start();
    const call = speechCall(upstream, byId(SPEACHES_TTS), {
      input: "Hi.",
      voice: "af_heart",
      stream_format: "sse",
    });
    const result = await run(call);
    expect(result.type).toBe("text/event-stream; charset=utf-8");
    expect(result.body.trimEnd().split("\n\n").at(-1)).toContain('"type":"speech.audio.done"');
  });
});
