/**
 * The ComfyUI adapter against what a real ComfyUI 0.3.64 answered (test/fakes/comfyui-captures,
 * recorded on CPU with model-free graphs): first the fake is held to those recordings, then the
 * adapter's behaviour where the real server showed it wrong: a COMBO without options, refusals
 * of what the workflow fixed, and the graph ComfyUI writes into the images it saves.
 */
import { once } from "node:events";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { Upstream } from "../../adapters/adapter.ts";
import comfyui from "../../adapters/comfyui.ts";
import { stripMetadata } from "../../adapters/comfyui/metadata.ts";
import { mp4MetadataStripper } from "../../adapters/comfyui/mp4-metadata.ts";
import { readBytes } from "../fakes/audio-calls.ts";
import { jsonCall } from "../fakes/comfyui-calls.ts";
import { pngChunks, pngText } from "../fakes/comfyui-files.ts";
import { FakeComfyUI } from "../fakes/comfyui.ts";
import { fakeUpstreams, signal } from "./fake-upstreams.ts";

process.env.XDG_CONFIG_HOME = mkdtempSync(join(tmpdir(), "club-comfy-xdg-"));
const CAPTURES = join(import.meta.dirname, "../fakes/comfyui-captures");
const capture = (name: string): unknown =>
  JSON.parse(readFileSync(join(CAPTURES, name), "utf8")) as unknown;
const LTXV = JSON.parse(
  readFileSync(join(import.meta.dirname, "../fakes/comfyui-ltxv.json"), "utf8"),
) as {
  club: { model: string };
  workflow: Record<string, { class_type: string; inputs: Record<string, unknown> }>;
};

type Message = { type: string; data: Record<string, unknown> };
type Node = { class_type: string; inputs: Record<string, unknown>; _meta?: { title: string } };

/** The graph of the capture's simple run: EmptyImage → ImageInvert → SaveImage. */
const SIMPLE: Record<string, Node> = {
  "1": {
    class_type: "EmptyImage",
    inputs: { width: 64, height: 48, batch_size: 1, color: 3368601 },
  },
  "2": { class_type: "ImageInvert", inputs: { image: ["1", 0] } },
  "3": { class_type: "SaveImage", inputs: { images: ["2", 0], filename_prefix: "cap/simple" } },
};

/** An operator's workflow that re-reads a file of ComfyUI's output folder (LoadImageOutput). */
const RELOAD = {
  club: { model: "reload", type: "image" },
  inputs: { prompt: { node: "Prompt", input: "value" } },
  workflow: {
    "1": { class_type: "LoadImageOutput", inputs: { image: "club/invert_00001_.png [output]" } },
    "2": { class_type: "ImageInvert", inputs: { image: ["1", 0] } },
    "4": {
      class_type: "PrimitiveStringMultiline",
      inputs: { value: "" },
      _meta: { title: "Prompt" },
    },
    "6": { class_type: "SaveImage", inputs: { images: ["2", 0], filename_prefix: "club/reload" } },
  },
};

/** A socket to the fake, keeping every message; `until` resolves once one matches. */
async function listen(fake: FakeComfyUI, clientId: string) {
  const ws = new WebSocket(`${fake.url.replace("http", "ws")}/ws?clientId=${clientId}`);
  const messages: Message[] = [];
  const waiting: [(m: Message) => boolean, () => void][] = [];
  ws.on("message", (raw: Buffer) => {
    const m = JSON.parse(raw.toString("utf8")) as Message;
    messages.push(m);
    for (const [test, done] of waiting) if (test(m)) done();
  });
  await once(ws, "open");
  const until = (test: (m: Message) => boolean): Promise<void> =>
    messages.some(test)
      ? Promise.resolve()
      : new Promise((resolve) => waiting.push([test, resolve]));
  return { ws, messages, until };
}

async function post(fake: FakeComfyUI, path: string, body: unknown) {
  const res = await fetch(`${fake.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

describe("the fake ComfyUI answers as ComfyUI 0.3.64 did", () => {
  const start = fakeUpstreams();

  it("sends the socket messages of a run in the recorded set and order", async () => {
    const fake = new FakeComfyUI();
    await start(fake);
    const socket = await listen(fake, "capclient1");
    const answer = await post(fake, "/prompt", { prompt: SIMPLE, client_id: "capclient1" });
    expect(answer.status).toBe(200);
    const id = (JSON.parse(answer.text) as { prompt_id: string }).prompt_id;
    await socket.until((m) => m.type === "executing" && m.data.node === null);
    socket.ws.close();
    const recorded = (capture("ws_messages_simple.json") as Message[]).map((m) => m.type);
    const types = socket.messages.map((m) => m.type);
    // ComfyUI ends with `executing {node: null}` to the client that queued the prompt.
    expect(types).toEqual([...recorded, "executing"]);
    // No node of this graph has a progress bar, so no `progress` at all.
    expect(types).not.toContain("progress");
    const executed = socket.messages.find((m) => m.type === "executed")!;
    expect(executed.data).toMatchObject({ node: "3", display_node: "3", prompt_id: id });
    expect(executed.data.output).toEqual({
      images: [{ filename: "simple_00001_.png", subfolder: "cap", type: "output" }],
    });
  });

  it("interrupts at the next step, saying so, and keeps an error entry in /history", async () => {
    const fake = new FakeComfyUI();
    await start(fake);
    const socket = await listen(fake, "capclient3");
    fake.pauseGenerations();
    const graph = {
      ...SIMPLE,
      "5": { class_type: "KSampler", inputs: { seed: 1, steps: 4 } },
    };
    const { text } = await post(fake, "/prompt", { prompt: graph, client_id: "capclient3" });
    const id = (JSON.parse(text) as { prompt_id: string }).prompt_id;
    await socket.until((m) => m.type === "executing" && m.data.node === "5");
    const interrupt = await post(fake, "/interrupt", { prompt_id: id });
    expect(interrupt).toEqual({ status: 200, text: "" });
    await socket.until((m) => m.type === "execution_interrupted");
    const said = socket.messages.find((m) => m.type === "execution_interrupted")!;
    const recorded = (capture("ws_messages_interrupted.json") as Message[]).find(
      (m) => m.type === "execution_interrupted",
    )!;
    expect(Object.keys(said.data).sort()).toEqual(Object.keys(recorded.data).sort());
    expect(said.data).toMatchObject({
      node_id: "5",
      node_type: "KSampler",
      executed: ["3", "2", "1"],
    });
    expect(socket.messages.at(-1)!.type).toBe("status");
    socket.ws.close();
    const history = (await (await fetch(`${fake.url}/history/${id}`)).json()) as Record<
      string,
      {
        outputs: unknown;
        status: { status_str: string; completed: boolean; messages: unknown[][] };
      }
    >;
    const real = Object.values(
      capture("history_by_id_interrupted.json") as Record<
        string,
        { status: { messages: unknown[][] } }
      >,
    )[0]!;
    expect(history[id]!.outputs).toEqual({});
    expect(history[id]!.status).toMatchObject({ status_str: "error", completed: false });
    expect(history[id]!.status.messages.map((m) => m[0])).toEqual(
      real.status.messages.map((m) => m[0]),
    );
    fake.resumeGenerations();
  });

  it("answers /view and /history as ComfyUI does", async () => {
    const fake = new FakeComfyUI();
    await start(fake);
    const socket = await listen(fake, "c");
    await post(fake, "/prompt", { prompt: SIMPLE, client_id: "c" });
    await socket.until((m) => m.type === "executing" && m.data.node === null);
    socket.ws.close();
    const view = async (q: string) => (await fetch(`${fake.url}/view?${q}`)).status;
    // A missing type means output.
    expect(await view("filename=simple_00001_.png&subfolder=cap")).toBe(200);
    expect(await view("filename=nope.png&subfolder=cap&type=output")).toBe(404);
    expect(await view("filename=simple_00001_.png&subfolder=../../etc&type=output")).toBe(403);
    const unknown = await fetch(`${fake.url}/history/2b6c0a37-0000-4000-8000-000000000000`);
    expect([unknown.status, await unknown.json()]).toEqual([200, {}]);
  });

  it("refuses a prompt in ComfyUI's three 400 shapes", async () => {
    const fake = new FakeComfyUI();
    await start(fake);
    const refuse = async (prompt: unknown) => {
      const { status, text } = await post(fake, "/prompt", { prompt, client_id: "c" });
      return { status, body: JSON.parse(text) as Record<string, unknown> };
    };
    const real = (name: string) =>
      capture(name) as { status: number; body: Record<string, unknown> };
    expect(await refuse({ ...SIMPLE, "4": { class_type: "NoSuchNode", inputs: {} } })).toEqual(
      real("prompt_post_unknown_class.json"),
    );
    const { "3": _save, ...noOutput } = SIMPLE;
    expect(await refuse(noOutput)).toEqual(real("prompt_post_no_output.json"));
    const tooSmall = structuredClone(SIMPLE);
    tooSmall["1"]!.inputs.width = 0;
    const got = await refuse(tooSmall);
    const want = real("prompt_post_invalid_value.json");
    expect(got.status).toBe(want.status);
    // The recorded input_config carries EmptyImage's own default and step; the rest is equal.
    const strip = (b: Record<string, unknown>) =>
      JSON.parse(
        JSON.stringify(b).replace(/"input_config":\[[^\]]*\]/g, '"input_config":null'),
      ) as unknown;
    expect(strip(got.body)).toEqual(strip(want.body));
  });
});

describe("the comfyui adapter against ComfyUI's real shapes", () => {
  const start = fakeUpstreams();
  const dir = mkdtempSync(join(tmpdir(), "club-comfy-real-"));
  writeFileSync(join(dir, "ltxv.json"), JSON.stringify(LTXV));
  writeFileSync(join(dir, "reload.json"), JSON.stringify(RELOAD));
  const bad = structuredClone(LTXV);
  bad.club.model = "ltxv-bad";
  bad.workflow["7"]!.inputs.max_shift = 200;
  writeFileSync(join(dir, "bad.json"), JSON.stringify(bad));

  async function upstream(): Promise<{ fake: FakeComfyUI; up: Upstream }> {
    const fake = new FakeComfyUI();
    return { fake, up: { ...(await start(fake)), settings: { comfyui: { workflowsDir: dir } } } };
  }

  it("advertises a workflow whose COMBO has no option list (LoadImageOutput)", async () => {
    const { up } = await upstream();
    const info = await comfyui().describe(up, signal());
    expect(info.models.map((m) => m.id)).toContain("reload");
    const reload = info.models.find((m) => m.id === "reload")!;
    expect(reload.inputModalities).toEqual(["text"]);
  });

  it("skips a workflow whose fixed number is beyond its node's limits, saying where", async () => {
    const { up } = await upstream();
    const info = await comfyui().describe(up, signal());
    expect(info.models.map((m) => m.id)).not.toContain("ltxv-bad");
    expect(info.notes).toContain(
      `skipped ${join(dir, "bad.json")}: node 7 LTXVScheduler.max_shift 200 is above its max 100`,
    );
  });

  it("answers 400 when ComfyUI refuses a value the request set", async () => {
    const { up } = await upstream();
    const adapter = comfyui();
    const ltxv = (await adapter.describe(up, signal())).models.find((m) => m.id === "ltxv")!;
    const reply = await adapter.execute(
      jsonCall("/v1/videos/generations", up, ltxv, { prompt: "x", num_frames: 20000 }),
    );
    expect(reply.status).toBe(400);
    expect(JSON.parse((await readBytes(reply.body)).toString()).error).toEqual({
      type: "invalid_request_error",
      message:
        "ComfyUI refused the request: node 6 (EmptyLTXVLatentVideo) length: Value 20000 bigger than max of 16384",
    });
  });

  it("fails as the rig's fault (upstream) when ComfyUI refuses what the workflow fixed", async () => {
    const { up } = await upstream();
    // Not described first: the call runs the file as it is (as when it changed since the scan).
    const model = {
      ...(await comfyui().describe(up, signal())).models[0]!,
      id: "ltxv-bad",
      servedId: "ltxv-bad",
    };
    const pending = comfyui().execute(
      jsonCall("/v1/videos/generations", up, model, { prompt: "x" }),
    );
    await expect(pending).rejects.toMatchObject({
      name: "UpstreamError",
      code: "upstream_workflow_refused",
      message:
        "ComfyUI refused the workflow bad.json (prompt_outputs_failed_validation): node 7 (LTXVScheduler) max_shift: Value 200 bigger than max of 100; the rig's operator must fix the file",
    });
    const broken = structuredClone(RELOAD);
    broken.club.model = "reload-broken";
    (broken.workflow as Record<string, Node>)["9"] = { class_type: "NoSuchNode", inputs: {} };
    writeFileSync(join(dir, "broken.json"), JSON.stringify(broken));
    const other = { ...model, id: "reload-broken", servedId: "reload-broken" };
    await expect(
      comfyui().execute(jsonCall("/v1/images/generations", up, other, { prompt: "x" })),
    ).rejects.toMatchObject({
      code: "upstream_workflow_refused",
      message:
        "ComfyUI refused the workflow broken.json (invalid_prompt): Cannot execute because node NoSuchNode does not exist. (Node ID '#9'); the rig's operator must fix the file",
    });
  });

  it("sends images without the graph ComfyUI wrote into them", async () => {
    const { fake, up } = await upstream();
    const adapter = comfyui();
    const info = await adapter.describe(up, signal());
    const reload = info.models.find((m) => m.id === "reload")!;
    const reply = await adapter.execute(
      jsonCall("/v1/images/generations", up, reload, { prompt: "x" }),
    );
    const [image] = (
      JSON.parse((await readBytes(reply.body)).toString()) as {
        data: { b64_json: string }[];
      }
    ).data;
    const saved = [...fake.files.values()][0]!;
    expect(saved.kind === "bytes" && pngChunks(saved.bytes).map((c) => c.type)).toEqual([
      "IHDR",
      "tEXt",
      "tEXt",
      "clUb",
      "IDAT",
      "IEND",
    ]);
    const sent = Buffer.from(image!.b64_json, "base64");
    // Every chunk left is whole, its CRC checked.
    expect(pngChunks(sent).map((c) => c.type)).toEqual(["IHDR", "clUb", "IDAT", "IEND"]);
    expect(sent.toString("latin1")).not.toContain("LoadImageOutput");
    expect(JSON.parse(pngText(sent))).toMatchObject({ input: "club/invert_00001_.png [output]" });
  });

  it("strips the text chunks of the PNG ComfyUI really saved, and WebP EXIF/XMP", () => {
    const real = readFileSync(join(CAPTURES, "view_simple.png"));
    expect(pngChunks(real).map((c) => c.type)).toEqual(["IHDR", "tEXt", "IDAT", "IEND"]);
    const stripped = stripMetadata(real);
    expect(pngChunks(stripped).map((c) => c.type)).toEqual(["IHDR", "IDAT", "IEND"]);
    expect(stripped.length).toBe(real.length - (12 + 316));
    const chunk = (type: string, data: Buffer) => {
      const head = Buffer.alloc(8);
      head.write(type, 0, "latin1");
      head.writeUInt32LE(data.length, 4);
      return Buffer.concat([head, data, Buffer.alloc(data.length % 2)]);
    };
    const vp8x = Buffer.alloc(10);
    vp8x[0] = 0x08 | 0x04 | 0x10; // EXIF, XMP, alpha
    const body = Buffer.concat([
      Buffer.from("WEBP"),
      chunk("VP8X", vp8x),
      chunk("VP8L", Buffer.from("pixels!")),
      chunk("EXIF", Buffer.from('{"prompt": {}}')),
      chunk("XMP ", Buffer.from("<x/>")),
    ]);
    const riff = Buffer.concat([Buffer.from("RIFF"), Buffer.alloc(4), body]);
    riff.writeUInt32LE(body.length, 4);
    const out = stripMetadata(riff);
    expect(out.readUInt32LE(4)).toBe(out.length - 8);
    expect(out.toString("latin1")).not.toContain("EXIF");
    expect(out.toString("latin1")).not.toContain("XMP ");
    expect(out.toString("latin1")).toContain("pixels!");
    expect(out[20]).toBe(0x10);
  });
});

/** An MP4 box. */
const box = (type: string, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length + 8, 0);
  head.write(type, 4, "latin1");
  return Buffer.concat([head, body]);
};

/** An MP4 as SaveVideo writes it: ftyp, mdat, then moov with the graph in udta/meta. */
function mp4WithGraph(graph: unknown, frames: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(graph));
  return Buffer.concat([
    box("ftyp", Buffer.from("isom\0\0\x02\0isomiso2avc1mp41", "latin1")),
    box("mdat", frames),
    box(
      "moov",
      box("mvhd", Buffer.alloc(100, 1)),
      box("trak", box("tkhd", Buffer.alloc(84, 2))),
      box(
        "udta",
        box(
          "meta",
          Buffer.alloc(4),
          box("hdlr", Buffer.alloc(25)),
          box("keys", Buffer.from("prompt")),
          box("ilst", box("data", json)),
        ),
      ),
    ),
  ]);
}

describe("the comfyui adapter streams videos without ComfyUI's metadata", () => {
  const start = fakeUpstreams();
  const dir = mkdtempSync(join(tmpdir(), "club-comfy-mp4-"));
  writeFileSync(join(dir, "ltxv.json"), JSON.stringify(LTXV));

  it("blanks moov/udta, keeping every size, offset and frame", async () => {
    const frames = Buffer.alloc(300 * 1024);
    for (let i = 0; i < frames.length; i++) frames[i] = (i * 7) & 0xff;
    const file = mp4WithGraph(LTXV.workflow, frames);
    const fake = new FakeComfyUI({ videoFile: file });
    const up = { ...(await start(fake)), settings: { comfyui: { workflowsDir: dir } } };
    const adapter = comfyui();
    const ltxv = (await adapter.describe(up, signal())).models.find((m) => m.id === "ltxv")!;
    const reply = await adapter.execute(
      jsonCall("/v1/videos/generations", up, ltxv, { prompt: "waves" }),
    );
    expect(reply.headers["content-length"]).toBe(String(file.length));
    const sent = await readBytes(reply.body);
    expect(sent.length).toBe(file.length);
    expect(file.toString("latin1")).toContain("CheckpointLoaderSimple");
    expect(sent.toString("latin1")).not.toContain("CheckpointLoaderSimple");
    expect(sent.toString("latin1")).not.toContain("udta");
    const udta = file.indexOf("udta", 0, "latin1");
    expect(sent.toString("latin1", udta, udta + 4)).toBe("free");
    // Everything but the metadata box's contents is byte for byte what ComfyUI saved.
    const size = file.readUInt32BE(udta - 4);
    expect(sent.subarray(0, udta).equals(file.subarray(0, udta))).toBe(true);
    expect(sent.subarray(udta + 4, udta - 4 + size).every((b) => b === 0)).toBe(true);
    expect(sent.subarray(udta - 4 + size).equals(file.subarray(udta - 4 + size))).toBe(true);
  });
});

describe("mp4MetadataStripper", () => {
  it("gives the same bytes whatever the chunking, and passes a non-MP4 as it is", async () => {
    const file = mp4WithGraph({ secret: "lora.safetensors" }, Buffer.alloc(999, 3));
    const run = async (input: Buffer, step: number) => {
      const parts: Buffer[] = [];
      for (let i = 0; i < input.length; i += step) parts.push(input.subarray(i, i + step));
      const out = Readable.from(parts).pipe(mp4MetadataStripper());
      return readBytes(out);
    };
    const whole = await run(file, file.length);
    expect(whole.toString("latin1")).not.toContain("lora.safetensors");
    expect(whole.length).toBe(file.length);
    for (const step of [1, 5, 17, 4096]) expect((await run(file, step)).equals(whole)).toBe(true);
    const other = Buffer.from("RIFF....WEBPVP8 not an mp4 at all, udta inside");
    expect((await run(other, 3)).equals(other)).toBe(true);
  });
});
