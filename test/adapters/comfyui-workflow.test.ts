import { describe, expect, it } from "vitest";
import { comboOptions } from "../../adapters/comfyui/installed.ts";
import { outputFiles, safeName, safeSubfolder, viewPath } from "../../adapters/comfyui/outputs.ts";
import { applyValues, readValues } from "../../adapters/comfyui/params.ts";
import { findNode, parseWorkflow, type Graph } from "../../adapters/comfyui/workflow.ts";
import txt2img from "../../adapters/comfyui/templates/sdxl-txt2img.json" with { type: "json" };

const GRAPH: Graph = {
  "3": {
    class_type: "KSampler",
    inputs: { seed: 0, model: ["4", 0] },
    _meta: { title: "Sampler" },
  },
  "6": { class_type: "CLIPTextEncode", inputs: { text: "" }, _meta: { title: "Positive prompt" } },
  "7": { class_type: "CLIPTextEncode", inputs: { text: "" }, _meta: { title: "Negative prompt" } },
};

describe("comfyui workflow files", () => {
  it("names nodes by id, then _meta.title, then a unique class_type", () => {
    expect(findNode(GRAPH, "7")).toBe("7");
    expect(findNode(GRAPH, "Positive prompt")).toBe("6");
    expect(findNode(GRAPH, "KSampler")).toBe("3");
    expect(() => findNode(GRAPH, "CLIPTextEncode")).toThrow(
      'node "CLIPTextEncode" matches nodes 6, 7: name one by id or a unique _meta.title',
    );
    expect(() => findNode(GRAPH, "Nope")).toThrow("matches no node id, _meta.title or class_type");
  });

  it("reports every problem of a file at once", () => {
    const file = {
      club: { model: "bad id!", type: "audio" },
      inputs: {},
      workflow: GRAPH,
    };
    expect(() => parseWorkflow(file, "x.json")).toThrow(
      'x.json: club.model "bad id!" is not a model id (A-Z a-z 0-9 . _ : / -); club.type must be "image" or "video", got "audio"; inputs.prompt is missing: a workflow takes a prompt',
    );
    const inputs = {
      prompt: { node: "Positive prompt", input: "text" },
      seed: { node: "Sampler", input: "model" },
      colour: { node: "3", input: "seed" },
      mask: { node: "3", input: "seed" },
    };
    expect(() =>
      parseWorkflow({ club: { model: "m", type: "image" }, inputs, workflow: GRAPH }, "y.json"),
    ).toThrow(
      "y.json: inputs.seed: 3.model is a link, not a value; inputs.colour: unknown field (use prompt, negative_prompt, n, seed, steps, guidance_scale, denoise, width, height, num_frames, fps, image, mask or size); inputs.mask needs inputs.image too",
    );
  });

  it("parses the shipped text-to-image template", () => {
    const wf = parseWorkflow(txt2img, "template");
    expect(wf).toMatchObject({
      model: "sdxl",
      type: "image",
      outputs: ["9"],
      size: { width: { node: "5", input: "width" } },
    });
    expect(wf.targets.n).toEqual([{ node: "5", input: "batch_size" }]);
  });

  it("writes checked request values into a copy of the graph, refusing what it cannot take", () => {
    const wf = parseWorkflow(txt2img, "template");
    const graph = applyValues(
      wf,
      readValues({ prompt: "fox", size: "640x480", n: "2", num_inference_steps: 12 }),
    );
    expect(graph["5"]!.inputs).toEqual({ width: 640, height: 480, batch_size: 2 });
    expect(graph["3"]!.inputs.steps).toBe(12);
    expect(graph["6"]!.inputs.text).toBe("fox");
    expect(wf.graph["6"]!.inputs.text).toBe("");
    const one = parseWorkflow(
      {
        club: { model: "m", type: "image" },
        inputs: { prompt: { node: "6", input: "text" } },
        workflow: GRAPH,
      },
      "one",
    );
    expect(() => applyValues(one, readValues({ prompt: "x", n: 2 }))).toThrow(
      'does not take "n" > 1',
    );
    expect(() => applyValues(one, readValues({ prompt: "x", size: "512x512" }))).toThrow(
      'does not take "size"',
    );
    expect(() => applyValues(one, readValues({ prompt: "x", negative_prompt: "y" }))).toThrow(
      '"negative_prompt"',
    );
  });

  it("reads combo options in the old and the new node schema", () => {
    expect(comboOptions([["a", "b"], { default: "a" }])).toEqual(["a", "b"]);
    expect(comboOptions(["COMBO", { options: ["c"] }])).toEqual(["c"]);
    expect(comboOptions(["INT", { min: 0 }])).toBeUndefined();
  });
});

describe("comfyui outputs", () => {
  it("builds /view only for plain files of the output folder", () => {
    expect(safeName("ComfyUI_00001_.png")).toBe(true);
    for (const bad of [
      "",
      "../x.png",
      "a/b.png",
      "a\\b.png",
      ".hidden",
      "x.png [input]",
      "x\0.png",
    ])
      expect(safeName(bad)).toBe(false);
    expect(safeSubfolder("club/video")).toBe(true);
    for (const bad of ["/etc", "\\\\server\\x", "C:\\out", "a/../..", "..", "a//b"])
      expect(safeSubfolder(bad)).toBe(false);
    expect(viewPath({ node: "9", filename: "a b.png", subfolder: "club" })).toBe(
      "/view?filename=a+b.png&subfolder=club&type=output",
    );
  });

  it("takes output entries of the chosen nodes, skips temp previews, refuses unsafe ones", () => {
    const entry = {
      outputs: {
        "10": { images: [{ filename: "b.png", subfolder: "", type: "output" }] },
        "9": {
          gifs: [
            { filename: "a.mp4", subfolder: "club", type: "output", format: "video/h264-mp4" },
          ],
        },
        "2": { images: [{ filename: "p.png", subfolder: "", type: "temp" }], text: ["not a file"] },
      },
    };
    expect(outputFiles(entry).map((f) => f.filename)).toEqual(["a.mp4", "b.png"]);
    expect(outputFiles(entry, ["10"]).map((f) => f.filename)).toEqual(["b.png"]);
    const evil = {
      outputs: {
        "9": { images: [{ filename: "x.png", subfolder: "../../home", type: "output" }] },
      },
    };
    expect(() => outputFiles(evil)).toThrow(
      "ComfyUI named an output file outside its output folder",
    );
  });
});
