import { once } from "node:events";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { DiscoveredModel, Upstream } from "../../adapters/adapter.ts";
import comfyui from "../../adapters/comfyui.ts";
import { readBytes } from "../fakes/audio-calls.ts";
import { filePart, formCall, jsonCall } from "../fakes/comfyui-calls.ts";
import { fakePng, pngText, videoDigest } from "../fakes/comfyui-files.ts";
import { FakeComfyUI } from "../fakes/comfyui.ts";
import { describeAdapterConformance } from "./conformance.ts";
import { fakeUpstreams, signal } from "./fake-upstreams.ts";
import { createHash } from "node:crypto";

// The default workflows directory is under XDG_CONFIG_HOME: keep the developer's out of it.
process.env.XDG_CONFIG_HOME = mkdtempSync(join(tmpdir(), "club-comfy-xdg-"));
const LTXV = readFileSync(join(import.meta.dirname, "../fakes/comfyui-ltxv.json"), "utf8");
const IMAGES = "/v1/images/generations";

const images = (body: Buffer): Record<string, string>[] =>
  (JSON.parse(body.toString("utf8")) as { data: Record<string, string>[] }).data;
const about = (b64: string): Record<string, unknown> =>
  JSON.parse(pngText(Buffer.from(b64, "base64"))) as Record<string, unknown>;

describeAdapterConformance("comfyui", {
  adapter: comfyui,
  fake: (options) => new FakeComfyUI(options),
  loading: false, // ComfyUI loads its nodes before it listens, and models per prompt
  apiKey: false, // ComfyUI has no authentication of its own
  models: (model) =>
    expect(model).toEqual({
      id: "sdxl",
      servedId: "sdxl",
      type: "image",
      inputModalities: ["text", "image"],
      outputModalities: ["image"],
      features: [],
      contextLength: null,
    }),
  calls: {
    execute: {
      call: (upstream, model, s) => jsonCall(IMAGES, upstream, model, { prompt: "a red fox" }, s),
      check(reply, body) {
        expect(reply.headers["content-type"]).toBe("application/json");
        expect(images(body).map((d) => about(d.b64_json!).prompt)).toEqual(["a red fox"]);
      },
    },
    // Within the adapter's own limits nothing of sdxl's is beyond ComfyUI's (16384 wide, 4096
    // a batch): ComfyUI's own refusals of a request are tested below, on ltxv.
    error: {
      call: (upstream, model, s) =>
        jsonCall(IMAGES, upstream, model, { prompt: "too wide", size: "20000x512" }, s),
      check(status, body) {
        expect(status).toBe(400);
        expect(JSON.parse(body).error.message).toBe(
          '"width" must be between 16 and 16384, got 20000',
        );
      },
    },
  },
});

describe("comfyui adapter", () => {
  const adapter = comfyui();
  const start = fakeUpstreams();
  const dir = mkdtempSync(join(tmpdir(), "club-comfy-workflows-"));
  let sdxl: DiscoveredModel;

  beforeAll(() => {
    writeFileSync(join(dir, "ltxv.json"), LTXV);
    const missing = JSON.parse(LTXV) as {
      club: { model: string };
      workflow: Record<string, { inputs: Record<string, unknown> }>;
    };
    missing.club.model = "needs-more";
    missing.workflow["1"]!.inputs.ckpt_name = "not-here.safetensors";
    writeFileSync(join(dir, "missing.json"), JSON.stringify(missing));
    writeFileSync(
      join(dir, "ui.json"),
      JSON.stringify({ club: {}, workflow: { nodes: [], links: [] } }),
    );
    writeFileSync(join(dir, "broken.json"), "{ not json");
  });

  async function upstream(fake = new FakeComfyUI()): Promise<{ fake: FakeComfyUI; up: Upstream }> {
    const up = { ...(await start(fake)), settings: { comfyui: { workflowsDir: dir } } };
    const info = await adapter.describe(up, signal());
    sdxl = info.models.find((m) => m.id === "sdxl")!;
    return { fake, up };
  }

  it("advertises the workflows that can run, and says why the others cannot", async () => {
    const fake = new FakeComfyUI();
    const up = { ...(await start(fake)), settings: { comfyui: { workflowsDir: dir } } };
    expect((await adapter.probe(up, signal())).reason).toBe(
      "GET /system_stats: ComfyUI 0.3.99-fake",
    );
    const info = await adapter.describe(up, signal());
    expect(info.models.map((m) => [m.id, m.type, m.inputModalities])).toEqual([
      ["ltxv", "video", ["text"]],
      ["sdxl", "image", ["text", "image"]],
    ]);
    expect(info.maxConcurrent).toBe(1);
    expect(info.label).toBe("ComfyUI 0.3.99-fake");
    const notes = info.notes!.join("\n");
    expect(notes).toContain(
      "skipped " +
        join(dir, "missing.json") +
        ': CheckpointLoaderSimple.ckpt_name "not-here.safetensors" is not installed',
    );
    expect(notes).toContain(
      'ui.json: "workflow" is in the UI format: export it with "Save (API Format)"',
    );
    expect(notes).toContain("broken.json: ");
  });

  it("is down, saying why, when no workflow can run", async () => {
    const up = {
      ...(await start(new FakeComfyUI({ checkpoints: [] }))),
      settings: { comfyui: { workflowsDir: dir } },
    };
    await expect(adapter.describe(up, signal())).rejects.toThrow(
      /^ComfyUI 0\.3\.99-fake can run none of the workflows: .*sd_xl_base_1\.0\.safetensors" is not installed/,
    );
  });

  it("writes the request's fields into the workflow and answers every image it saved", async () => {
    const { fake, up } = await upstream();
    const json = {
      prompt: "a fox",
      negative_prompt: "rain",
      size: "768x512",
      n: 2,
      seed: 42,
      steps: 9,
    };
    const reply = await adapter.execute(jsonCall(IMAGES, up, sdxl, json));
    const data = images(await readBytes(reply.body));
    expect(data.map((d) => about(d.b64_json!))).toEqual(
      [0, 1].map((i) => ({ prompt: "a fox", negative: "rain", seed: 42, i })),
    );
    const graph = fake.lastGraph();
    expect(graph["5"]!.inputs).toEqual({ width: 768, height: 512, batch_size: 2 });
    expect(graph["3"]!.inputs).toMatchObject({ seed: 42, steps: 9, cfg: 7 });
    // Only the SaveImage node's files were fetched, never the temp preview.
    expect(fake.views.every((v) => v.includes("subfolder=club") && v.includes("type=output"))).toBe(
      true,
    );
    expect(fake.views).toHaveLength(2);
  });

  it("draws a seed when none is given, and answers data: URLs for response_format url", async () => {
    const { fake, up } = await upstream();
    const reply = await adapter.execute(
      jsonCall(IMAGES, up, sdxl, { prompt: "x", response_format: "url" }),
    );
    const [image] = images(await readBytes(reply.body));
    expect(image!.url).toMatch(/^data:image\/png;base64,/);
    expect(typeof fake.lastGraph()["3"]!.inputs.seed).toBe("number");
  });

  it("edits: uploads the image (and mask) under names of its own, then runs img2img or inpaint", async () => {
    const { fake, up } = await upstream();
    const source = fakePng("source");
    const mask = fakePng("mask");
    const edit = async (parts: Parameters<typeof formCall>[3]) =>
      adapter.execute(formCall("/v1/images/edits", up, sdxl, parts));
    const plain = await edit([
      { name: "prompt", value: "make it blue" },
      filePart("image", source, "image/png", "../../etc/passwd"),
    ]);
    const [first] = images(await readBytes(plain.body));
    const input = String(about(first!.b64_json!).input);
    expect(input).toMatch(/^club\/[0-9a-f-]{36}\.png$/);
    expect(fake.uploads.get(input)?.equals(source)).toBe(true);
    expect(Object.values(fake.lastGraph()).some((n) => n.class_type === "LoadImageMask")).toBe(
      false,
    );
    const masked = await edit([
      { name: "prompt", value: "x" },
      filePart("image[]", source),
      filePart("mask", mask),
    ]);
    const out = about(images(await readBytes(masked.body))[0]!.b64_json!);
    expect(fake.uploads.get(String(out.mask))?.equals(mask)).toBe(true);
    const noImage = await edit([{ name: "prompt", value: "x" }]);
    expect(noImage.status).toBe(400);
    expect(JSON.parse((await readBytes(noImage.body)).toString()).error.message).toBe(
      '"image" is required',
    );
  });

  it("streams the video file from /view, reporting progress from the socket", async () => {
    const { fake, up } = await upstream(new FakeComfyUI({ videoBytes: 3 * 1024 * 1024 + 17 }));
    const ltxv = (await adapter.describe(up, signal())).models.find((m) => m.id === "ltxv")!;
    const seen: [number | null, string | undefined][] = [];
    const call = jsonCall(
      "/v1/videos/generations",
      up,
      ltxv,
      { prompt: "waves", duration: 2, fps: 12, width: 512 },
      undefined,
      (f, d) => seen.push([f, d]),
    );
    const reply = await adapter.execute(call);
    expect(reply.headers).toEqual({
      "content-type": "video/mp4",
      "content-length": String(3 * 1024 * 1024 + 17),
    });
    const bytes = await readBytes(reply.body);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(
      videoDigest(3 * 1024 * 1024 + 17),
    );
    expect(fake.lastGraph()["6"]!.inputs).toEqual({
      width: 512,
      height: 512,
      length: 25,
      batch_size: 1,
    });
    expect(fake.lastGraph()["13"]!.inputs.fps).toBe(12);
    expect(seen).toEqual(
      expect.arrayContaining([
        [null, "queued"],
        [0.5, "SamplerCustomAdvanced 2/4"],
        [1, "SamplerCustomAdvanced 4/4"],
        [1, "sending the video"],
      ]),
    );
  });

  it("polls /history when ComfyUI's socket cannot be opened", async () => {
    const fake = new FakeComfyUI();
    fake.acceptSockets = false;
    const { up } = await upstream(fake);
    const reply = await adapter.execute(jsonCall(IMAGES, up, sdxl, { prompt: "no socket" }));
    expect(about(images(await readBytes(reply.body))[0]!.b64_json!).prompt).toBe("no socket");
  });

  it("gives up on a prompt ComfyUI lost (a restart) when it has no socket to say so", async () => {
    const fake = new FakeComfyUI();
    fake.acceptSockets = false;
    const { up } = await upstream(fake);
    fake.pauseGenerations();
    const arrived = once(fake, "request");
    const pending = adapter.execute(jsonCall(IMAGES, up, sdxl, { prompt: "lost" }));
    pending.catch(() => undefined);
    await arrived;
    fake.queue.forget();
    fake.resumeGenerations();
    await expect(pending).rejects.toThrow("ComfyUI lost the prompt: it is neither queued nor done");
  });

  it("deletes a prompt that waits in ComfyUI's queue when its call is aborted", async () => {
    const { fake, up } = await upstream();
    fake.pauseGenerations();
    const first = adapter.execute(jsonCall(IMAGES, up, sdxl, { prompt: "first" }));
    const controller = new AbortController();
    const second = adapter.execute(
      jsonCall(IMAGES, up, sdxl, { prompt: "second" }, controller.signal),
    );
    second.catch(() => undefined);
    while (fake.queue.jobs.length < 2) await once(fake, "request");
    const closed = once(fake, "client-closed");
    controller.abort();
    await closed;
    expect(fake.queue.jobs.map((j) => j.state)).toEqual(["running", "cancelled"]);
    expect(fake.requests.some((r) => r.path === "/queue" && r.method === "POST")).toBe(true);
    fake.resumeGenerations();
    expect(about(images(await readBytes((await first).body))[0]!.b64_json!).prompt).toBe("first");
    await expect(second).rejects.toMatchObject({ name: "AbortError" });
  });

  it("rejects with ComfyUI's error when the prompt fails while it runs", async () => {
    const { fake, up } = await upstream();
    fake.failNext = "CUDA out of memory";
    await expect(adapter.execute(jsonCall(IMAGES, up, sdxl, { prompt: "x" }))).rejects.toThrow(
      "ComfyUI failed in KSampler (node 3): CUDA out of memory",
    );
  });

  it("refuses what a workflow cannot take, before anything reaches ComfyUI", async () => {
    const { fake, up } = await upstream();
    const before = fake.requests.length;
    for (const [json, message] of [
      [{ prompt: "x", response_format: "png" }, '"response_format" must be b64_json or url'],
      [{ prompt: "x", size: "big" }, '"size" must be WIDTHxHEIGHT (e.g. 1024x1024) or auto'],
      [{ prompt: "x", steps: 0 }, '"steps" must be between 1 and 1000, got 0'],
      [{ size: "512x512" }, '"prompt" is required'],
    ] as const) {
      const reply = await adapter.execute(jsonCall(IMAGES, up, sdxl, json));
      expect(reply.status).toBe(400);
      expect(JSON.parse((await readBytes(reply.body)).toString()).error.message).toBe(message);
    }
    expect(fake.requests.length).toBe(before);
  });
});
