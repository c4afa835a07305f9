/**
 * Media end to end: the official openai client (or fetch, for raw bytes) → relay → tunnel →
 * daemon → fake ComfyUI, ACE-Step, Dia-TTS-Server and Hunyuan3D-2, every piece a real process
 * or server on loopback. Covers a 200 MB video streamed with bounded memory, keepalives on a
 * long job, progress in the daemon's status, and a cancel in the middle of a job.
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeAceStep, aceAudio } from "../fakes/acestep.ts";
import { recording } from "../fakes/audio.ts";
import { fakePng, pngText, videoDigest } from "../fakes/comfyui-files.ts";
import { FakeComfyUI } from "../fakes/comfyui.ts";
import { FakeDia } from "../fakes/dia.ts";
import { FakeHunyuan3D, fakeGlb } from "../fakes/hunyuan3d.ts";
import { freePort } from "../fakes/util.ts";
import { runCli, scratchDir } from "./harness.ts";
import { ALICE_KEY, startStack, type Stack } from "./stack.ts";

const VIDEO_BYTES = 200 * 1024 * 1024;
const LTXV = readFileSync(join(import.meta.dirname, "../fakes/comfyui-ltxv.json"), "utf8");
let comfy: FakeComfyUI;
let ace: FakeAceStep;
let dia: FakeDia;
let hunyuan: FakeHunyuan3D;
let stack: Stack;
let statusPort: number;

beforeAll(async () => {
  comfy = new FakeComfyUI({ videoBytes: VIDEO_BYTES });
  ace = new FakeAceStep();
  dia = new FakeDia();
  hunyuan = new FakeHunyuan3D();
  await Promise.all([comfy.start(), ace.start(), dia.start(), hunyuan.start()]);
  const xdg = scratchDir();
  mkdirSync(join(xdg, "club-provider", "workflows"), { recursive: true });
  writeFileSync(join(xdg, "club-provider", "workflows", "ltxv.json"), LTXV);
  statusPort = await freePort();
  stack = await startStack(
    [comfy.url, ace.url, dia.url, hunyuan.url],
    ["--status-port", String(statusPort)],
    { XDG_CONFIG_HOME: xdg, CLUB_KEEPALIVE_MS: "1000", CLUB_POLL_MS: "20" },
  );
});

afterAll(async () => {
  await stack.stop();
  await Promise.all([comfy.stop(), ace.stop(), dia.stop(), hunyuan.stop()]);
});

const post = (path: string, body: unknown, signal?: AbortSignal): Promise<Response> =>
  fetch(`${stack.relayUrl}/v1${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${ALICE_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });

const about = (b64: string): Record<string, unknown> =>
  JSON.parse(pngText(Buffer.from(b64, "base64"))) as Record<string, unknown>;

/** The daemon's `/status` jobs, read again until `done` holds for them. */
async function jobsUntil(
  done: (jobs: Record<string, unknown>[]) => boolean,
): Promise<Record<string, unknown>[]> {
  for (;;) {
    const status = (await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as {
      jobs: Record<string, unknown>[];
    };
    if (done(status.jobs)) return status.jobs;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Peak resident memory of a process since the last reset, in bytes (Linux). */
function peakRss(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmHWM:\s+(\d+) kB/m);
  return Number(line?.[1] ?? 0) * 1024;
}

describe("media: consumer → relay → tunnel → daemon → media engines", () => {
  it("lists images, video, music, voice cloning and 3D with the club's types", async () => {
    const cards = (await stack.client.models.list()).data as unknown as Record<string, unknown>[];
    const brief = cards.map((c) => [c.id, c.service_type, c.supported_features]);
    expect(brief).toEqual(
      expect.arrayContaining([
        ["sdxl", "image", []],
        ["ltxv", "video", []],
        ["acestep-v15-turbo", "music", []],
        ["dia-1.6b", "tts", ["voice-cloning"]],
        ["hunyuan3d-2", "mesh", []],
      ]),
    );
  });

  it("generates and edits images with the openai client", async () => {
    const img = await stack.client.images.generate({
      model: "sdxl",
      prompt: "a red fox",
      size: "1024x1024",
      seed: 7,
      response_format: "b64_json",
    } as never);
    expect(about(img.data![0]!.b64_json!)).toMatchObject({ prompt: "a red fox", seed: 7 });
    const url = await stack.client.images.generate({
      model: "sdxl",
      prompt: "x",
      response_format: "url",
    });
    // The relay keeps the image and answers a URL of its own that serves it.
    expect(url.data![0]!.url).toMatch(new RegExp(`^${stack.relayUrl}/v1/media/`));
    const fetched = await fetch(url.data![0]!.url!);
    expect(fetched.headers.get("content-type")).toBe("image/png");
    const edit = await stack.client.images.edit({
      model: "sdxl",
      prompt: "make it blue",
      image: await toFile(fakePng("source"), "source.png", { type: "image/png" }),
      mask: await toFile(fakePng("mask"), "mask.png", { type: "image/png" }),
    });
    const made = about(edit.data![0]!.b64_json!);
    expect(comfy.uploads.get(String(made.input))?.equals(fakePng("source"))).toBe(true);
    expect(comfy.uploads.get(String(made.mask))?.equals(fakePng("mask"))).toBe(true);
  });

  it.skipIf(process.platform !== "linux")(
    "streams a 200 MB video through relay and tunnel without holding it",
    async () => {
      const pids = { daemon: stack.daemon.child.pid!, relay: stack.relay.child.pid! };
      const before = { daemon: peakRss(pids.daemon), relay: peakRss(pids.relay) };
      // Reset the peaks to the present, so they measure this transfer only.
      for (const pid of Object.values(pids)) writeFileSync(`/proc/${pid}/clear_refs`, "5");
      const start = { daemon: peakRss(pids.daemon), relay: peakRss(pids.relay) };
      const res = await post("/videos/generations", { model: "ltxv", prompt: "ocean waves" });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("video/mp4");
      const hash = createHash("sha256");
      let size = 0;
      for await (const chunk of res.body! as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        size += chunk.length;
      }
      const growth = {
        daemon: peakRss(pids.daemon) - start.daemon,
        relay: peakRss(pids.relay) - start.relay,
      };
      console.log("video peak RSS growth (MiB)", {
        daemon: (growth.daemon / 2 ** 20).toFixed(1),
        relay: (growth.relay / 2 ** 20).toFixed(1),
        baseline: {
          daemon: (before.daemon / 2 ** 20).toFixed(1),
          relay: (before.relay / 2 ** 20).toFixed(1),
        },
      });
      expect(size).toBe(VIDEO_BYTES);
      expect(hash.digest("hex")).toBe(videoDigest(VIDEO_BYTES));
      // Holding the body would add 200 MB; streaming keeps each side to its windows.
      expect(growth.daemon).toBeLessThan(VIDEO_BYTES / 2);
      expect(growth.relay).toBeLessThan(VIDEO_BYTES / 2);
    },
    120_000,
  );

  it("shows a job's progress in the daemon's status, and a cancel interrupts it in ComfyUI", async () => {
    comfy.pauseGenerations();
    const controller = new AbortController();
    const pending = post(
      "/images/generations",
      { model: "sdxl", prompt: "to cancel" },
      controller.signal,
    );
    pending.catch(() => undefined);
    const [job] = await jobsUntil((jobs) => jobs.some((j) => j.detail === "running KSampler"));
    expect(job).toMatchObject({
      model: "sdxl",
      endpoint: "/v1/images/generations",
      service: expect.any(String),
    });
    // `club-provider status` prints the job with what the engine says it does.
    const cli = runCli(["status", "--status-port", String(statusPort)], { home: stack.home });
    expect(await cli.exited, cli.output()).toBe(0);
    expect(cli.output()).toMatch(/^JOB +MODEL +ENDPOINT +FOR +PROGRESS +DETAIL$/m);
    expect(cli.output()).toMatch(
      new RegExp(
        `^${String(job!.request_id)} +sdxl +/v1/images/generations +\\S+ +- +running KSampler$`,
        "m",
      ),
    );
    const prompt = comfy.queue.jobs.at(-1)!;
    expect(prompt.state).toBe("running");
    const closed = once(comfy, "client-closed");
    controller.abort();
    // As in ComfyUI, the interrupt takes effect at the sampler's next step.
    await closed;
    const interrupt = comfy.requests.find((r) => r.path === "/interrupt");
    expect(interrupt?.body).toEqual({ prompt_id: prompt.id });
    expect(prompt.state).toBe("cancelled");
    expect(comfy.queue.history.get(prompt.id)).toMatchObject({
      status: { status_str: "error", completed: false },
    });
    comfy.resumeGenerations();
    expect(await jobsUntil((jobs) => jobs.length === 0)).toEqual([]);
    // Logged and counted as aborted (499), not as the 200 its keepalives may have begun with.
    const line = await stack.daemon.waitFor(
      new RegExp(`"requestId":"${String(job!.request_id)}".*"aborted":true`),
    );
    expect(JSON.parse(line)).toMatchObject({ status: 499, aborted: true });
    const metrics = await (await fetch(`http://127.0.0.1:${statusPort}/metrics`)).text();
    const labels = 'endpoint="/v1/images/generations",model="sdxl"';
    expect(metrics).toContain(`club_provider_requests_total{${labels},status="499"} 1`);
    expect(metrics).toContain(`club_provider_requests_aborted_total{${labels}} 1`);
  });

  it("keeps a long job alive with spaces before its JSON, and cuts it off if it fails", async () => {
    comfy.pauseGenerations();
    const res = await post("/images/generations", {
      model: "sdxl",
      prompt: "slow",
      response_format: "b64_json",
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    const first = await reader.read();
    expect(Buffer.from(first.value ?? []).toString()).toMatch(/^ +$/);
    comfy.resumeGenerations();
    const rest: Buffer[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read())
      rest.push(Buffer.from(r.value));
    const reply = JSON.parse(Buffer.concat(rest).toString()) as { data: { b64_json: string }[] };
    expect(about(reply.data[0]!.b64_json).prompt).toBe("slow");

    comfy.pauseGenerations();
    comfy.failNext = "CUDA out of memory";
    const failing = await post("/images/generations", { model: "sdxl", prompt: "doomed" });
    expect(failing.status).toBe(200);
    const broken = failing.body!.getReader();
    await broken.read();
    comfy.resumeGenerations();
    await expect(
      (async () => {
        for (let r = await broken.read(); !r.done; r = await broken.read());
      })(),
    ).rejects.toThrow("terminated");
  });

  it("makes music, clones a voice and builds a mesh, as raw bytes", async () => {
    const music = await post("/music/generations", {
      model: "acestep-v15-turbo",
      prompt: "lofi",
      seed: 3,
    });
    expect(music.headers.get("content-type")).toBe("audio/mpeg");
    const track = Buffer.from(await music.arrayBuffer());
    expect(track.equals(aceAudio({ prompt: "lofi", seed: 3, model: "acestep-v15-turbo" }))).toBe(
      true,
    );

    const clip = recording(1);
    const voice = await post("/voice/generations", {
      model: "dia-1.6b",
      input: "[S1] Hello from the rig.",
      audio_prompt: clip.toString("base64"),
      cfg_scale: 3,
      seed: 42,
    });
    expect(voice.headers.get("content-type")).toBe("audio/wav");
    expect(Buffer.from(await voice.arrayBuffer()).toString("latin1", 0, 4)).toBe("RIFF");
    expect(dia.generations.at(-1)!.body).toMatchObject({
      voice_mode: "clone",
      cfg_scale: 3,
      seed: 42,
    });
    expect([...dia.references.values()].at(-1)!.equals(clip)).toBe(true);

    const form = new FormData();
    form.append("model", "hunyuan3d-2");
    form.append("image", new Blob([fakePng("chair")], { type: "image/png" }), "chair.png");
    form.append("options", JSON.stringify({ formats: ["glb"], seed: 5 }));
    const mesh = await fetch(`${stack.relayUrl}/v1/3d/generations`, {
      method: "POST",
      headers: { authorization: `Bearer ${ALICE_KEY}` },
      body: form,
    });
    expect(mesh.headers.get("content-type")).toBe("model/gltf-binary");
    const glb = Buffer.from(await mesh.arrayBuffer());
    expect(
      glb.equals(fakeGlb({ seed: 5, image: fakePng("chair").toString("base64"), type: "glb" })),
    ).toBe(true);
  });
});
