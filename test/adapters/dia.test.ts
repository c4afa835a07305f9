import { once } from "node:events";
import { describe, expect, it } from "vitest";
import type { DiscoveredModel, Upstream } from "../../adapters/adapter.ts";
import dia from "../../adapters/dia.ts";
import { readBytes, speechCall, voicesCall } from "../fakes/audio-calls.ts";
import { recording } from "../fakes/audio.ts";
import { jsonCall } from "../fakes/comfyui-calls.ts";
import { DIA_VOICES, diaSpeech, FakeDia } from "../fakes/dia.ts";
import { describeAdapterConformance } from "./conformance.ts";
import { fakeUpstreams, signal } from "./fake-upstreams.ts";

const VOICE = "/v1/voice/generations";
const SCRIPT = "[S1] Hello there. [S2] Hi! [S1]";
const errorOf = async (body: NodeJS.ReadableStream): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return (JSON.parse(Buffer.concat(chunks).toString()) as { error: { message: string } }).error
    .message;
};

describeAdapterConformance("dia", {
  adapter: dia,
  fake: (options) => new FakeDia(options),
  apiKey: false, // Dia-TTS-Server has no authentication
  models: (model) =>
    expect(model).toEqual({
      id: "dia-1.6b",
      servedId: "dia-1.6b",
      type: "tts",
      inputModalities: ["text", "audio"],
      outputModalities: ["audio"],
      features: ["voice-cloning"],
      contextLength: null,
    }),
  calls: {
    execute: {
      call: (upstream, model, s) =>
        jsonCall(VOICE, upstream, model, { input: SCRIPT, seed: 42 }, s),
      check(reply, body, fake) {
        const sent = { text: SCRIPT, output_format: "wav", seed: 42, voice_mode: "dialogue" };
        expect(reply.headers["content-type"]).toBe("audio/wav");
        expect(body.equals(diaSpeech(sent))).toBe(true);
        if (!(fake instanceof FakeDia)) throw new Error("not the Dia fake");
        expect(fake.generations.at(-1)).toEqual({ path: "/tts", body: sent });
      },
    },
    error: {
      call: (upstream, model, s) =>
        jsonCall(VOICE, upstream, model, { input: SCRIPT, cfg_scale: 9 }, s),
      check(status, body) {
        expect(status).toBe(422);
        expect(JSON.parse(body).detail[0].loc).toEqual(["body", "cfg_scale"]);
      },
    },
  },
});

describe("dia adapter", () => {
  const adapter = dia();
  const start = fakeUpstreams();

  async function setup(): Promise<{ fake: FakeDia; up: Upstream; model: DiscoveredModel }> {
    const fake = new FakeDia();
    const up = await start(fake);
    const [model] = (await adapter.describe(up, signal())).models;
    return { fake, up, model: model! };
  }

  it("clones a voice: uploads the clip under a name of its own, then runs clone mode", async () => {
    const { fake, up, model } = await setup();
    const clip = recording(1);
    const json = {
      input: SCRIPT,
      audio_prompt: `data:audio/wav;base64,${clip.toString("base64")}`,
      audio_prompt_text: "[S1] Hi.",
    };
    const reply = await adapter.execute(jsonCall(VOICE, up, model, json));
    expect(reply.status).toBe(200);
    await readBytes(reply.body);
    const [name, bytes] = [...fake.references.entries()][0]!;
    expect(name).toMatch(/^club-[0-9a-f-]{36}\.wav$/);
    expect(bytes.equals(clip)).toBe(true);
    expect(fake.generations.at(-1)!.body).toEqual({
      text: SCRIPT,
      output_format: "wav",
      voice_mode: "clone",
      clone_reference_filename: name,
      transcript: "[S1] Hi.",
    });
  });

  it("takes one of the server's voices as a speaker, and explains what it cannot take", async () => {
    const { fake, up, model } = await setup();
    const reply = await adapter.execute(
      jsonCall(VOICE, up, model, { input: "Hi.", speakers: { S1: "abigail" } }),
    );
    await readBytes(reply.body);
    expect(fake.generations.at(-1)!.body).toMatchObject({
      voice_mode: "predefined",
      clone_reference_filename: "Abigail.wav",
    });
    for (const [json, message] of [
      [{ input: "Hi.", speakers: { S1: 12 } }, /voice-library ids belong to the hosted club/],
      [
        { input: "Hi.", speakers: { S1: "Nobody" } },
        /no voice "Nobody"; this server has Abigail, Ryan/,
      ],
      [{ input: "Hi.", speakers: { S1: "Ryan", S2: "Abigail" } }, /one voice per request/],
      [
        { input: "Hi.", audio_prompt: Buffer.from("not audio at all").toString("base64") },
        /WAV or MP3/,
      ],
      [{ input: "Hi.", audio_prompt: "https://example.com/a.wav" }, /data: URL nor base64/],
      [{ speakers: { S1: "Ryan" } }, /"input" is required/],
    ] as const) {
      const refused = await adapter.execute(jsonCall(VOICE, up, model, json));
      expect(refused.status).toBe(400);
      expect(await errorOf(refused.body)).toMatch(message);
    }
    expect(fake.references.size).toBe(0);
  });

  it("answers probes from its own job while Dia is busy generating", async () => {
    const { fake, up, model } = await setup();
    fake.pauseGenerations();
    const arrived = once(fake, "request");
    const pending = adapter.execute(jsonCall(VOICE, up, model, { input: "Hi." }));
    await arrived;
    const asked = fake.requests.length;
    expect((await adapter.probe(up, signal())).reason).toMatch(/generating for us/);
    expect((await adapter.describe(up, signal())).models[0]!.id).toBe("dia-1.6b");
    expect(fake.requests.length).toBe(asked);
    fake.resumeGenerations();
    await readBytes((await pending).body);
    expect((await adapter.probe(up, signal())).reason).toMatch(/^GET \/api\/model-info/);
  });

  it("speech and voices: only S1, S2, dialogue and the server's own voices, wav or opus", async () => {
    const { fake, up, model } = await setup();
    const ok = await adapter.execute(
      speechCall(up, model, { input: "Hi.", voice: "S2", response_format: "opus" }),
    );
    expect(ok.headers["content-type"]).toBe("audio/opus");
    await readBytes(ok.body);
    expect(fake.generations.at(-1)!.path).toBe("/v1/audio/speech");
    for (const json of [
      { input: "Hi.", voice: "club-1234.wav" },
      { input: "Hi.", voice: "S1", response_format: "mp3" },
    ]) {
      const refused = await adapter.execute(speechCall(up, model, json));
      expect(refused.status).toBe(400);
      await readBytes(refused.body);
    }
    const voices = await adapter.execute(voicesCall(up, model));
    expect(JSON.parse((await readBytes(voices.body)).toString())).toEqual({
      voices: DIA_VOICES.map((v) => ({ id: v.filename, name: v.display_name })),
    });
  });
});
