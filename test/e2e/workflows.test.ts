/**
 * Workflow templates end to end, run by `club-provider relay` as jobs: chat steps go through the
 * tunnel to `club-provider start` and a fake llama-server, speech to a fake Kokoro behind the same
 * daemon. Image, music and video steps go to a media provider on the daemon's own tunnel client
 * (`MediaRig`), since no daemon adapter serves those types yet. Every template runs to DONE; one
 * gate is approved and one rejected.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeKokoro } from "../fakes/kokoro.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { call, type RunView, type StepView } from "../relay/jobs/helpers.ts";
import { MediaRig, PNG } from "../relay/jobs/media-rig.ts";
import { ALICE_KEY, startStack, type Stack } from "./stack.ts";

/** One reply with every key the templates ask the LLM for. */
const REPLY = {
  title: "Rain",
  scenes: ["A robot finds a brush.", "It paints the sea.", "It signs its name."],
  prompts: ["a fox at dawn", "a fox at dusk"],
  shots: ["Wide shot of a city.", "Close-up of a door."],
  lyrics: "Rain on the roof",
  style: "slow piano",
  cover: "clouds over a piano",
  lines: ["Models run on rigs.", "The club routes requests."],
};
const TOKENS = JSON.stringify(REPLY).match(/.{1,24}/g) ?? [];

let llama: FakeLlamaServer;
let kokoro: FakeKokoro;
let stack: Stack;
let media: MediaRig;

beforeAll(async () => {
  llama = new FakeLlamaServer({ tokens: TOKENS, nCtx: 4096 });
  kokoro = new FakeKokoro();
  await Promise.all([llama.start(), kokoro.start()]);
  stack = await startStack([llama.url, kokoro.url]);
  media = new MediaRig({ relayUrl: stack.relayUrl, apiKey: ALICE_KEY });
  await media.start();
});

afterAll(async () => {
  media.stop();
  await stack.stop();
  await Promise.all([llama.stop(), kokoro.stop()]);
});

const relay = (): { url: string } => ({ url: stack.relayUrl });

async function start(template: string, inputs: Record<string, unknown>): Promise<RunView> {
  const body = { template, inputs, models: { chat: "tiny-qwen2-chat", tts: "kokoro" } };
  const answer = await call<RunView>(relay(), "POST", "/v1/workflows/runs", body, {}, ALICE_KEY);
  expect(answer.status, JSON.stringify(answer.body)).toBe(202);
  return answer.body;
}

async function until(id: string, status: string): Promise<RunView> {
  const get = async (): Promise<RunView> =>
    (await call<RunView>(relay(), "GET", `/v1/workflows/runs/${id}`, undefined, {}, ALICE_KEY))
      .body;
  await expect
    .poll(async () => (await get()).status, { timeout: 30_000, interval: 50 })
    .toBe(status);
  return get();
}

async function decide(run: RunView, step: string, decision: "approve" | "reject"): Promise<void> {
  const path = `/v1/workflows/runs/${run.id}/steps/${step}/${decision}`;
  const answer = await call(relay(), "POST", path, {}, {}, ALICE_KEY);
  expect(answer.status).toBe(200);
}

const step = (run: RunView, id: string): StepView | undefined =>
  run.steps.find((s) => s.step_id === id);

async function fetchResult(url: unknown): Promise<Response> {
  return fetch(String(url), { headers: { authorization: `Bearer ${ALICE_KEY}` } });
}

describe("workflow templates: relay → tunnel → daemon and media provider", () => {
  it("illustrated-story: writes, waits at the gate, then illustrates once approved", async () => {
    const run = await start("illustrated-story", {
      topic: "a robot learning to paint",
      scenes: 3,
      style: "oil",
    });
    const waiting = await until(run.id, "AWAITING");
    expect(step(waiting, "scenes")?.output).toEqual(REPLY.scenes);
    expect(step(waiting, "illustrations")?.status).toBe("PENDING");
    await decide(run, "review", "approve");
    const done = await until(run.id, "DONE");
    const pictures = step(done, "illustrations")?.output as { result_url: string }[];
    expect(pictures).toHaveLength(3);
    const picture = (await (await fetchResult(pictures[0]?.result_url)).json()) as {
      data: { b64_json: string }[];
    };
    expect(picture.data[0]?.b64_json).toBe(PNG.toString("base64"));
    const prompts = media.requests
      .filter((r) => r.path === "/v1/images/generations")
      .map((r) => r.body.prompt);
    expect(prompts).toEqual(expect.arrayContaining(REPLY.scenes.map((s) => `${s} Style: oil`)));
  });

  it("illustrated-story: a rejected gate cancels the run before any picture", async () => {
    const drawn = media.requests.length;
    const run = await start("illustrated-story", { topic: "t", scenes: 2, style: "ink" });
    await until(run.id, "AWAITING");
    await decide(run, "review", "reject");
    const over = await until(run.id, "CANCELED");
    expect(over.error?.type).toBe("rejected");
    expect(step(over, "illustrations")?.status).toBe("SKIPPED");
    expect(media.requests.length).toBe(drawn);
  });

  it("image-variations: brainstorms prompts and renders each", async () => {
    const run = await start("image-variations", { subject: "a fox", count: 2, vibe: "calm" });
    const done = await until(run.id, "DONE");
    expect(step(done, "prompts")?.output).toMatchObject({ prompts: REPLY.prompts });
    expect(step(done, "images")?.jobs).toHaveLength(2);
  });

  it("storyboard-to-video: plans shots, draws first frames, and animates them once approved", async () => {
    const run = await start("storyboard-to-video", { concept: "a city wakes up", shots: 2 });
    await until(run.id, "AWAITING");
    await decide(run, "review", "approve");
    const done = await until(run.id, "DONE");
    const clips = step(done, "clips")?.output as { content_type: string; result_url: string }[];
    expect(clips.map((c) => c.content_type)).toEqual(["video/mp4", "video/mp4"]);
    const video = media.requests.filter((r) => r.path === "/v1/videos/generations").at(-1);
    expect(video?.body.image).toBe(`data:image/png;base64,${PNG.toString("base64")}`);
    expect(REPLY.shots).toContain(video?.body.prompt);
    expect((await fetchResult(clips[0]?.result_url)).headers.get("content-type")).toBe("video/mp4");
  });

  it("song-and-cover: makes the track and the cover art from one brief", async () => {
    const run = await start("song-and-cover", { theme: "rain", genre: "jazz" });
    const done = await until(run.id, "DONE");
    expect(step(done, "track")?.output).toMatchObject({ content_type: "audio/wav" });
    expect(step(done, "cover")?.output).toMatchObject({ content_type: "application/json" });
    const track = media.requests.filter((r) => r.path === "/v1/music/generations").at(-1);
    expect(track?.body).toMatchObject({ prompt: "jazz: slow piano", lyrics: "Rain on the roof" });
  });

  it("narrated-explainer: writes a script and narrates each line with the daemon's TTS", async () => {
    const spoken = kokoro.requests.length;
    const run = await start("narrated-explainer", { topic: "the club", lines: 2 });
    const done = await until(run.id, "DONE");
    const narration = step(done, "narration")?.output as { content_type: string }[];
    expect(narration.map((n) => n.content_type)).toEqual(["audio/mpeg", "audio/mpeg"]);
    const inputs = kokoro.requests.slice(spoken).map((r) => (r.body as { input?: string }).input);
    expect(inputs.sort()).toEqual([...REPLY.lines].sort());
  });
});
