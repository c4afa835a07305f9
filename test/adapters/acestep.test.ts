import { describe, expect, it } from "vitest";
import acestep from "../../adapters/acestep.ts";
import { audioPath, musicBody, taskState } from "../../adapters/acestep/request.ts";
import { readBytes } from "../fakes/audio-calls.ts";
import { aceAudio, FakeAceStep } from "../fakes/acestep.ts";
import { jsonCall } from "../fakes/comfyui-calls.ts";
import { describeAdapterConformance } from "./conformance.ts";
import { fakeUpstreams, signal } from "./fake-upstreams.ts";

process.env.CLUB_POLL_MS = "5";
const MUSIC = "/v1/music/generations";

describeAdapterConformance("acestep", {
  adapter: acestep,
  fake: (options) => new FakeAceStep(options),
  cancel: false, // ACE-Step's API has no way to cancel a task; an aborted call stops polling
  models: (model) =>
    expect(model).toEqual({
      id: "acestep-v15-turbo",
      servedId: "acestep-v15-turbo",
      type: "music",
      inputModalities: ["text"],
      outputModalities: ["audio"],
      features: [],
      contextLength: null,
    }),
  calls: {
    execute: {
      call: (upstream, model, s) =>
        jsonCall(MUSIC, upstream, model, { prompt: "lofi piano", seed: 7 }, s),
      check(reply, body, fake, model) {
        expect(reply.headers["content-type"]).toBe("audio/mpeg");
        expect(
          body.equals(aceAudio({ prompt: "lofi piano", seed: 7, model: model.servedId })),
        ).toBe(true);
        if (!(fake instanceof FakeAceStep)) throw new Error("not the ACE-Step fake");
        expect(fake.tasks.at(-1)!.body).toEqual({
          model: model.servedId,
          task_type: "text2music",
          batch_size: 1,
          prompt: "lofi piano",
          seed: 7,
          use_random_seed: false,
          audio_format: "mp3",
        });
      },
    },
    error: {
      call: (upstream, model, s) =>
        jsonCall(MUSIC, upstream, model, { prompt: "short", audio_duration: 5 }, s),
      check(status, body) {
        expect(status).toBe(400);
        expect(JSON.parse(body).error.message).toBe(
          "ACE-Step refused the task: audio_duration must be between 10 and 600 seconds",
        );
      },
    },
  },
});

describe("acestep adapter", () => {
  const adapter = acestep();
  const start = fakeUpstreams();

  it("reports the task's progress, and fails with ACE-Step's reason", async () => {
    const fake = new FakeAceStep();
    const upstream = await start(fake);
    const [model] = (await adapter.describe(upstream, signal())).models;
    const seen: (string | undefined)[] = [];
    const call = jsonCall(MUSIC, upstream, model!, { lyrics: "la la" }, undefined, (_f, d) =>
      seen.push(d),
    );
    await readBytes((await adapter.execute(call)).body);
    expect(seen[0]).toBe("queued");
    expect(seen.every((d) => d === "queued" || /^diffusion \d\/4$/.test(d ?? ""))).toBe(true);
    fake.failNext = "CUDA out of memory";
    await expect(
      adapter.execute(jsonCall(MUSIC, upstream, model!, { prompt: "x" })),
    ).rejects.toThrow("ACE-Step failed: CUDA out of memory");
  });

  it("is loading until its models are initialised", async () => {
    const fake = new FakeAceStep({ loading: true });
    const upstream = await start(fake);
    expect(await adapter.probe(upstream, signal())).toEqual({
      status: "loading",
      reason: "ACE-Step is loading its models (GET /health: models_initialized false)",
    });
  });

  it("sends only the club's music fields, refusing server paths and other tasks", () => {
    const { body } = musicBody(
      { prompt: "p", src_audio_path: "/etc/passwd", lm_model_path: "x", batch_size: 8, bpm: 90 },
      "m",
    );
    expect(body).toEqual({
      model: "m",
      task_type: "text2music",
      batch_size: 1,
      prompt: "p",
      bpm: 90,
      audio_format: "mp3",
    });
    expect(() => musicBody({ prompt: "p", task_type: "repaint" }, "m")).toThrow(/text2music/);
    expect(() => musicBody({ prompt: "p", audio_format: "ogg" }, "m")).toThrow(/audio_format/);
    expect(() => musicBody({}, "m")).toThrow('"prompt" or "lyrics" is required');
  });

  it("fetches audio only by the engine's own result, never by a URL", () => {
    expect(audioPath("/v1/audio?path=%2Ftmp%2Fa.mp3")).toBe("/v1/audio?path=%2Ftmp%2Fa.mp3");
    expect(audioPath("/tmp/api_audio/b.wav")).toBe("/v1/audio?path=%2Ftmp%2Fapi_audio%2Fb.wav");
    expect(() => audioPath("http://169.254.169.254/latest")).toThrow(/by URL/);
    expect(taskState({ status: 1, result: "not json" })).toEqual({
      kind: "failed",
      why: "the task succeeded without a file",
    });
  });
});
