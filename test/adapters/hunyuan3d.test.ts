import { once } from "node:events";
import { describe, expect, it } from "vitest";
import hunyuan3d from "../../adapters/hunyuan3d.ts";
import { readBytes } from "../fakes/audio-calls.ts";
import { filePart, formCall } from "../fakes/comfyui-calls.ts";
import { fakePng } from "../fakes/comfyui-files.ts";
import { FakeHunyuan3D, fakeGlb } from "../fakes/hunyuan3d.ts";
import { describeAdapterConformance } from "./conformance.ts";
import { fakeUpstreams, signal } from "./fake-upstreams.ts";

const MESH = "/v1/3d/generations";
const IMAGE = fakePng("a chair");
const parts = (options: unknown) => [
  { name: "model", value: "hunyuan3d-2" },
  filePart("image", IMAGE),
  { name: "options", value: JSON.stringify(options) },
];

describeAdapterConformance("hunyuan3d", {
  adapter: hunyuan3d,
  fake: (options) => new FakeHunyuan3D(options),
  loading: false, // api_server.py loads the model before it listens
  apiKey: false, // it has no authentication
  models: (model) =>
    expect(model).toEqual({
      id: "hunyuan3d-2",
      servedId: "hunyuan3d-2",
      type: "mesh",
      inputModalities: ["image"],
      outputModalities: ["model"],
      features: [],
      contextLength: null,
    }),
  calls: {
    execute: {
      call: (upstream, model, s) =>
        formCall(MESH, upstream, model, parts({ formats: ["glb"], seed: 3, resolution: 1024 }), s),
      check(reply, body, fake) {
        const sent = { seed: 3, image: IMAGE.toString("base64"), type: "glb" };
        expect(reply.headers["content-type"]).toBe("model/gltf-binary");
        expect(body.equals(fakeGlb(sent))).toBe(true);
        if (!(fake instanceof FakeHunyuan3D)) throw new Error("not the Hunyuan3D fake");
        expect(fake.bodies.at(-1)).toEqual(sent);
      },
    },
    // Every error of Hunyuan3D-2 is a 404 "NETWORK ERROR…", which the adapter answers as an
    // engine failure (502): what reaches the consumer as is are the adapter's own refusals.
    error: {
      call: (upstream, model, s) => formCall(MESH, upstream, model, parts({ formats: ["obj"] }), s),
      check(status, body) {
        expect(status).toBe(400);
        expect(JSON.parse(body).error.message).toBe(
          'this rig makes GLB meshes: "options.formats" must include "glb"',
        );
      },
    },
  },
});

describe("hunyuan3d adapter", () => {
  const adapter = hunyuan3d();
  const start = fakeUpstreams();

  it("fails as the engine's failure, not as its 404", async () => {
    const fake = new FakeHunyuan3D();
    const up = await start(fake);
    const [model] = (await adapter.describe(up, signal())).models;
    fake.failNext = true;
    await expect(adapter.execute(formCall(MESH, up, model!, parts({})))).rejects.toMatchObject({
      code: "upstream_job_failed",
      message: expect.stringMatching(
        /^Hunyuan3D-2 could not make the mesh \(it answered 404: \*\*NETWORK ERROR/,
      ),
    });
  });

  it("answers probes from its own job while the server is busy making a mesh", async () => {
    const fake = new FakeHunyuan3D();
    const up = await start(fake);
    const [model] = (await adapter.describe(up, signal())).models;
    fake.pauseGenerations();
    const arrived = once(fake, "request");
    const pending = adapter.execute(
      formCall(MESH, up, model!, parts({ randomize_seed: true, texture: false })),
    );
    await arrived;
    const asked = fake.requests.length;
    expect((await adapter.probe(up, signal())).reason).toMatch(/making a mesh for us/);
    expect(fake.requests.length).toBe(asked);
    fake.resumeGenerations();
    await readBytes((await pending).body);
    expect(fake.bodies.at(-1)).toMatchObject({ texture: false, seed: expect.any(Number) });
    expect((await adapter.probe(up, signal())).status).toBe("ready");
  });

  it("refuses a form without an image, or with options it cannot take", async () => {
    const up = await start(new FakeHunyuan3D());
    const [model] = (await adapter.describe(up, signal())).models;
    for (const [form, message] of [
      [[{ name: "options", value: "{}" }], '"image" is required'],
      [
        [filePart("image", Buffer.from("GIF89a not supported")), { name: "options", value: "{}" }],
        /PNG, JPEG or WebP/,
      ],
      [
        parts({ num_inference_steps: 0 }),
        '"options.num_inference_steps" must be a number from 1 to 200',
      ],
      [
        [filePart("image", IMAGE), { name: "options", value: "[1," }],
        '"options" must be a JSON object',
      ],
    ] as const) {
      const reply = await adapter.execute(formCall(MESH, up, model!, [...form]));
      expect(reply.status).toBe(400);
      expect(JSON.parse((await readBytes(reply.body)).toString()).error.message).toMatch(message);
    }
  });
});
