import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { DiscoveredModel, EngineCall, Upstream } from "../../adapters/adapter.ts";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import whispercpp from "../../adapters/whispercpp.ts";
import { readBytes, transcriptionCall, type PartSpec } from "../fakes/audio-calls.ts";
import { recording, subtitles, timedTranscript } from "../fakes/audio.ts";
import type { FakeServer } from "../fakes/fake-server.ts";
import { FakeKokoro } from "../fakes/kokoro.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { FakeWhisperCpp } from "../fakes/whispercpp.ts";
import { describeAdapterConformance } from "./conformance.ts";

const WAV = recording(2);
const FILE: PartSpec = { name: "file", filename: "hello.wav", type: "audio/wav", data: WAV };
const TEXT = "Hello from the rig.\n Audio works end to end.";
const asText = (b: Buffer): string => b.toString("utf8");

describeAdapterConformance("whispercpp", {
  adapter: whispercpp,
  fake: (options) => new FakeWhisperCpp(options),
  apiKey: false, // whisper-server has no authentication
  models: (model) =>
    expect(model).toEqual({
      id: "whisper",
      servedId: "whisper",
      type: "stt",
      inputModalities: ["audio"],
      outputModalities: ["text"],
      features: ["timestamps"],
      contextLength: null,
    }),
  calls: {
    execute: {
      call: (upstream, model, signal) =>
        transcriptionCall(upstream, model, [{ name: "model", value: "whisper" }, FILE], signal),
      check(reply, body, fake) {
        expect(reply.headers["content-type"]).toBe("application/json");
        expect(JSON.parse(asText(body))).toEqual({ text: TEXT });
        if (!(fake instanceof FakeWhisperCpp)) throw new Error("not the whisper.cpp fake");
        const form = fake.forms.at(-1)!;
        expect(form.fields).toEqual({ response_format: ["json"] });
        expect(form.files.file!.bytes.equals(WAV)).toBe(true);
        expect(fake.requests.at(-1)!.path).toBe("/inference");
      },
    },
    error: {
      call: (upstream, model, signal) =>
        transcriptionCall(upstream, model, [{ name: "model", value: "whisper" }], signal),
      check(status, body) {
        expect(status).toBe(400);
        expect(JSON.parse(body)).toEqual({ error: "no 'file' field in the request" });
      },
    },
  },
});

describe("whispercpp adapter", () => {
  const adapter = whispercpp();
  const running: FakeServer[] = [];
  const signal = (): AbortSignal => AbortSignal.timeout(5_000);
  let fake: FakeWhisperCpp;
  let upstream: Upstream;
  let model: DiscoveredModel;

  async function start(): Promise<void> {
    fake = new FakeWhisperCpp();
    running.push(fake);
    upstream = { url: await fake.start() };
    model = (await adapter.describe(upstream, signal())).models[0]!;
  }
  const transcribe = (fields: [string, string][], chunk?: number): EngineCall =>
    transcriptionCall(
      upstream,
      model,
      [FILE, ...fields.map(([name, value]) => ({ name, value }))],
      undefined,
      chunk,
    );
  async function run(call: EngineCall): Promise<{ status: number; type?: string; body: string }> {
    const reply = await adapter.execute(call);
    const type = reply.headers["content-type"];
    const body = asText(await readBytes(reply.body));
    return { status: reply.status, ...(type ? { type } : {}), body };
  }

  afterEach(async () => {
    await Promise.all(running.splice(0).map((f) => f.stop()));
  });
  afterAll(() => closeUpstreamPools());

  it("runs one request at a time", async () => {
    await start();
    expect((await adapter.describe(upstream, signal())).maxConcurrent).toBe(1);
  });

  it("is told by its Server header, not by its port", async () => {
    for (const other of [new FakeLlamaServer(), new FakeKokoro()]) {
      running.push(other);
      const result = await adapter.probe({ url: await other.start() }, signal());
      expect(result).toEqual({
        status: "no",
        reason: "GET /health: no Server: whisper.cpp header",
      });
    }
  });

  it("answers text, srt and vtt with OpenAI's content types", async () => {
    await start();
    const segments = timedTranscript(2);
    expect(await run(transcribe([["response_format", "text"]]))).toEqual({
      status: 200,
      type: "text/plain; charset=utf-8",
      body: " Hello from the rig.\n Audio works end to end.\n",
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

  it("asks for token timestamps for word granularity and lifts the words to the top level", async () => {
    await start();
    const result = await run(
      transcribe([
        ["response_format", "verbose_json"],
        ["timestamp_granularities[]", "word"],
        ["timestamp_granularities[]", "segment"],
      ]),
    );
    const verbose = JSON.parse(result.body) as {
      text: string;
      words: { word: string }[];
      segments: { start: number }[];
    };
    expect(verbose.text).toBe(TEXT);
    expect(verbose.words.map((w) => w.word)).toEqual(
      "Hello from the rig. Audio works end to end.".split(" "),
    );
    expect(verbose.words[0]).toEqual({ word: "Hello", start: 0, end: expect.closeTo(0.25, 5) });
    expect(verbose.segments.map((s) => s.start)).toEqual([0, 1]);
    expect(fake.forms.at(-1)!.fields).toEqual({
      response_format: ["verbose_json"],
      token_timestamps: ["true"],
    });
  });

  it("leaves words out when only segments are asked for", async () => {
    await start();
    const verbose = JSON.parse((await run(transcribe([["response_format", "verbose_json"]]))).body);
    expect(verbose).not.toHaveProperty("words");
    expect(verbose.segments).toHaveLength(2);
    expect(fake.forms.at(-1)!.fields).toEqual({ response_format: ["verbose_json"] });
  });

  it("maps only the OpenAI fields it knows; no request reaches other whisper.cpp options", async () => {
    await start();
    const fields: [string, string][] = [
      ["model", "whisper"],
      ["language", "de"],
      ["prompt", "Rig talk."],
      ["temperature", "0.2"],
      ["stream", "false"],
      ["translate", "true"],
      ["no_timestamps", "true"],
      ["token_timestamps", "false"],
      ["vad", "true"],
      ["offset_t", "1000"],
    ];
    expect((await run(transcribe(fields, 5))).status).toBe(200);
    expect(fake.forms.at(-1)!.fields).toEqual({
      language: ["de"],
      prompt: ["Rig talk."],
      temperature: ["0.2"],
      response_format: ["json"],
    });
    expect(fake.forms.at(-1)!.files.file!.bytes.equals(WAV)).toBe(true);
  });

  it("refuses what whisper.cpp would choke on; the engine never gets the form", async () => {
    await start();
    for (const [field, value, message] of [
      ["response_format", "diarized_json", /^response_format must be one of json, text/],
      ["temperature", "warm", /^temperature must be a number/],
      ["timestamp_granularities[]", "char", /word or segment/],
    ] as const) {
      const result = await run(transcribe([[field, value]]));
      expect(result.status).toBe(400);
      expect(JSON.parse(result.body).error).toMatchObject({
        type: "invalid_request_error",
        message: expect.stringMatching(message),
      });
    }
    expect(fake.forms).toHaveLength(0);
  });

  it("streams a large upload through in pieces, intact", async () => {
    await start();
    const big = recording(60); // ~1.9 MB
    const call = transcriptionCall(
      upstream,
      model,
      [
        { ...FILE, data: big },
        { name: "response_format", value: "text" },
      ],
      undefined,
      64 * 1024,
    );
    expect((await run(call)).status).toBe(200);
    expect(fake.forms.at(-1)!.files.file!.bytes.equals(big)).toBe(true);
  });

  it("passes an engine failure through for the gateway to report", async () => {
    await start();
    fake.inferenceError = "failed to process audio";
    expect(await run(transcribe([]))).toEqual({
      status: 500,
      type: "application/json",
      body: '{"error":"failed to process audio"}',
    });
  });
});
