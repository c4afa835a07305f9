/**
 * Audio end to end: the official openai client → relay → tunnel → daemon → fake Kokoro-FastAPI,
 * speaches and whisper.cpp, every piece a real process or server on loopback. The recording is
 * a real PCM WAV file made in code.
 */
import { once } from "node:events";
import { connect } from "node:net";
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recording, speechPieces, subtitles, timedTranscript } from "../fakes/audio.ts";
import { FakeKokoro } from "../fakes/kokoro.ts";
import { FakeSpeaches, SPEACHES_STT, SPEACHES_TTS } from "../fakes/speaches.ts";
import { FakeWhisperCpp } from "../fakes/whispercpp.ts";
import { ALICE_KEY, startStack, type Stack } from "./stack.ts";

const WAV = recording(2);
const SAID = "Hello from the rig. Audio works end to end.";
const TEXT = "Nice to meet you. The rig speaks now. Goodbye!";
let kokoro: FakeKokoro;
let speaches: FakeSpeaches;
let whisper: FakeWhisperCpp;
let stack: Stack;

beforeAll(async () => {
  kokoro = new FakeKokoro();
  speaches = new FakeSpeaches();
  whisper = new FakeWhisperCpp();
  await Promise.all([kokoro.start(), speaches.start(), whisper.start()]);
  stack = await startStack([kokoro.url, speaches.url, whisper.url]);
});

afterAll(async () => {
  await stack.stop();
  await Promise.all([kokoro.stop(), speaches.stop(), whisper.stop()]);
});

const file = (): Promise<File> => toFile(WAV, "hello.wav", { type: "audio/wav" });

/** Reads a web stream's first chunk, then the rest; `between` runs after the first. */
async function readInTwo(body: ReadableStream<Uint8Array>, between: () => void): Promise<Buffer> {
  const reader = body.getReader();
  const first = await reader.read();
  between();
  const chunks = [Buffer.from(first.value ?? [])];
  for (let r = await reader.read(); !r.done; r = await reader.read())
    chunks.push(Buffer.from(r.value));
  return Buffer.concat(chunks);
}

describe("audio: consumer → relay → tunnel → daemon → audio engines", () => {
  it("lists the audio models with the club's service types and features", async () => {
    const cards = (await stack.client.models.list()).data.map((m) => {
      const { created: _created, ...rest } = m as OpenAI.Model & Record<string, unknown>;
      return rest;
    });
    const card = (id: string, type: string, features: string[]) => ({
      id,
      object: "model",
      owned_by: "rig1",
      service_type: type,
      input_modalities: type === "stt" ? ["audio"] : ["text"],
      output_modalities: type === "stt" ? ["text"] : ["audio"],
      supported_features: features,
      context_length: null,
    });
    expect(cards).toEqual(
      expect.arrayContaining([
        card("kokoro", "tts", []),
        card(SPEACHES_STT, "stt", ["timestamps"]),
        card(SPEACHES_TTS, "tts", []),
        card("whisper", "stt", ["timestamps"]),
      ]),
    );
  });

  for (const [model, engine] of [
    [SPEACHES_STT, () => speaches],
    ["whisper", () => whisper],
  ] as const) {
    describe(`transcriptions with ${model}`, () => {
      it("answers json, and the engine got the WAV file byte for byte", async () => {
        const result = await stack.client.audio.transcriptions.create({
          model,
          file: await file(),
        });
        expect(result.text.replace(/\s+/g, " ")).toBe(SAID);
        expect(engine().forms.at(-1)!.files.file!.bytes.equals(WAV)).toBe(true);
      });

      it("answers text, srt and vtt as text", async () => {
        const text = await stack.client.audio.transcriptions.create({
          model,
          file: await file(),
          response_format: "text",
        });
        expect(text.trim().replace(/\s+/g, " ")).toBe(SAID);
        for (const format of ["srt", "vtt"] as const) {
          const subs = await stack.client.audio.transcriptions.create({
            model,
            file: await file(),
            response_format: format,
          });
          expect(subs).toBe(subtitles(format, timedTranscript(2)));
        }
      });

      it("answers verbose_json with word and segment timings", async () => {
        const verbose = await stack.client.audio.transcriptions.create({
          model,
          file: await file(),
          response_format: "verbose_json",
          timestamp_granularities: ["word", "segment"],
        });
        expect(verbose.duration).toBe(2);
        expect(verbose.words?.map((w) => w.word.trim())).toEqual(SAID.split(" "));
        expect(verbose.words?.every((w) => w.end > w.start)).toBe(true);
        expect(verbose.segments?.map((s) => [s.start, s.end])).toEqual([
          [0, 1],
          [1, 2],
        ]);
      });
    });
  }

  it("streams speech: the first audio arrives while the engine is still speaking", async () => {
    kokoro.pauseGenerations();
    const completed = kokoro.completed;
    const res = await stack.client.audio.speech.create({
      model: "kokoro",
      input: TEXT,
      voice: "af_heart",
      response_format: "wav",
    });
    expect(res.headers.get("content-type")).toBe("audio/wav");
    let busyAtFirst = false;
    const audio = await readInTwo(res.body!, () => {
      busyAtFirst = kokoro.completed === completed && kokoro.inFlight === 1;
      kokoro.resumeGenerations();
    });
    expect(busyAtFirst).toBe(true);
    expect(audio.equals(Buffer.concat(speechPieces(TEXT, "wav")))).toBe(true);
    expect(kokoro.requests.at(-1)!.body).toMatchObject({ model: "kokoro", voice: "af_heart" });
  });

  it("gives the raw streamed response, mp3 by default, from Kokoro and from speaches", async () => {
    for (const [model, voice] of [
      ["kokoro", "af_heart"],
      [SPEACHES_TTS, "bm_george"],
    ]) {
      const res = await stack.client.audio.speech
        .create({ model: model!, input: TEXT, voice: voice! })
        .asResponse();
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("audio/mpeg");
      const audio = Buffer.from(await res.arrayBuffer());
      expect(audio.equals(Buffer.concat(speechPieces(TEXT, "mp3")))).toBe(true);
    }
  });

  it("closes the engine's request when the consumer aborts speech", async () => {
    kokoro.pauseGenerations();
    const controller = new AbortController();
    const res = await stack.client.audio.speech.create(
      { model: "kokoro", input: TEXT, voice: "af_heart", response_format: "pcm" },
      { signal: controller.signal },
    );
    const closed = once(kokoro, "client-closed");
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await closed;
    kokoro.resumeGenerations();
    expect(kokoro.inFlight).toBe(0);
    // Both ends log it as a request whose caller left, with the status it had been sent.
    const left = /"endpoint":"\/v1\/audio\/speech",.*"status":499,.*"aborted":true,"sent":200/;
    await stack.relay.waitFor(left);
    await stack.daemon.waitFor(left);
  });

  it("lists a tts model's voices in one shape, whichever engine serves it", async () => {
    const voices = async (model: string): Promise<unknown> => {
      const res = await fetch(
        `${stack.relayUrl}/v1/audio/voices?model=${encodeURIComponent(model)}`,
        {
          headers: { authorization: `Bearer ${stack.client.apiKey}` },
        },
      );
      expect(res.status).toBe(200);
      return res.json();
    };
    expect(await voices("kokoro")).toEqual({
      voices: expect.arrayContaining([
        { id: "af_heart", name: "af_heart", language: "en-us", gender: "female" },
        { id: "jf_alpha", name: "jf_alpha", language: "ja", gender: "female" },
      ]),
    });
    expect(await voices(SPEACHES_TTS)).toEqual({
      voices: [
        { id: "af_heart", name: "af_heart", language: "en-us", gender: "female" },
        { id: "bm_george", name: "bm_george", language: "en-gb", gender: "male" },
      ],
    });
  });

  it("gives 400 for a malformed form, naming what is wrong, not a provider's 502", async () => {
    const part = (tail: string) =>
      '--x\r\ncontent-disposition: form-data; name="model"\r\n\r\nwhisper\r\n' +
      '--x\r\ncontent-disposition: form-data; name="file"; filename="a.wav"\r\n' +
      `content-type: audio/wav\r\n\r\nRIFF\r\n${tail}`;
    const truncated = "body ended before the closing boundary (truncated upload?)";
    // Cut off, closed with another boundary, and refused before it reached a provider.
    for (const [body, message] of <[string, string][]>[
      [part(""), truncated],
      [part("--y--\r\n"), truncated],
      [
        part("--x--\r\n").replace('filename="a.wav"', 'filename=""quoted".wav"'),
        'junk after quoted "filename"',
      ],
    ]) {
      const res = await fetch(`${stack.relayUrl}/v1/audio/transcriptions`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${ALICE_KEY}`,
          "content-type": "multipart/form-data; boundary=x",
        },
        body,
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: { message, type: "invalid_request_error" } });
      expect(res.headers.get("x-club-request-id")).toMatch(/^req_/);
    }
  });

  it("frees the engine of an upload cut mid-body: the next transcription is answered", async () => {
    // whisper.cpp takes one request at a time: an upload the daemon never heard was cut would
    // hold it, and every transcription after it would wait for ever.
    const form =
      '--x\r\ncontent-disposition: form-data; name="model"\r\n\r\nwhisper\r\n' +
      '--x\r\ncontent-disposition: form-data; name="file"; filename="a.wav"\r\n' +
      "content-type: audio/wav\r\n\r\n";
    const { hostname, port } = new URL(stack.relayUrl);
    const socket = connect(Number(port), hostname);
    socket.on("error", () => undefined);
    socket.write(
      "POST /v1/audio/transcriptions HTTP/1.1\r\nhost: relay\r\n" +
        `authorization: Bearer ${ALICE_KEY}\r\n` +
        "content-type: multipart/form-data; boundary=x\r\n" +
        `content-length: ${form.length + 200_000}\r\n\r\n${form}`,
    );
    socket.write(WAV.subarray(0, 20_000));
    // The engine has the request, with its body still coming, when the consumer hangs up.
    await once(whisper, "started");
    socket.destroy();
    await stack.daemon.waitFor(/"endpoint":"\/v1\/audio\/transcriptions".*"status":499/);
    const text = await stack.client.audio.transcriptions.create({
      model: "whisper",
      file: await file(),
      response_format: "text",
    });
    expect(text).toContain("Hello from the rig.");
  });

  it("gives 502 upstream_error when an audio engine fails", async () => {
    kokoro.speechError = "espeak crashed";
    whisper.inferenceError = "failed to process audio";
    try {
      const speech = await stack.client.audio.speech
        .create({ model: "kokoro", input: TEXT, voice: "af_heart" })
        .catch((e: unknown) => e);
      const stt = await stack.client.audio.transcriptions
        .create({ model: "whisper", file: await file() })
        .catch((e: unknown) => e);
      for (const [err, why] of [
        [speech, /Kokoro-FastAPI answered 500: espeak crashed$/],
        [stt, /whisper\.cpp whisper-server answered 500: failed to process audio$/],
      ] as const) {
        expect(err).toBeInstanceOf(OpenAI.APIError);
        expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
        expect((err as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({
          type: "upstream_error",
        });
        expect((err as Error).message).toMatch(why);
      }
    } finally {
      kokoro.speechError = undefined;
      whisper.inferenceError = undefined;
    }
  });
});
