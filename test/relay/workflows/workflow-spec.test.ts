/** Workflow specs, templating and transforms, checked without a relay. */
import { describe, expect, it } from "vitest";
import { HttpError } from "../../../src/http/error.ts";
import { runRequest } from "../../../src/relay/workflows/request.ts";
import { validateSpec, type TransformStep } from "../../../src/relay/workflows/spec.ts";
import { parseLooseJson } from "../../../src/relay/workflows/steps.ts";
import { TEMPLATES } from "../../../src/relay/workflows/catalog.ts";
import { Budget, TooLarge } from "../../../src/relay/workflows/size.ts";
import { render, type Scope } from "../../../src/relay/workflows/templating.ts";
import { applyTransform } from "../../../src/relay/workflows/transforms.ts";

/** The inline spec of the club's quickstart (step 5). */
const QUICKSTART = {
  steps: [
    {
      id: "plan",
      kind: "inference",
      type: "chat",
      extract: "json",
      title: "Plan sections",
      body: { messages: [{ role: "user", content: "List 4 titles about {{inputs.topic}}." }] },
    },
    {
      id: "images",
      kind: "map",
      type: "image",
      title: "Illustrate each section",
      over: "{{steps.plan.output.titles}}",
      body: { prompt: "Blog illustration for: {{item}}" },
    },
  ],
};

function refusal(spec: unknown, inputs: Record<string, unknown> = {}): string {
  try {
    validateSpec(spec, inputs);
  } catch (err) {
    expect(err).toBeInstanceOf(HttpError);
    return (err as HttpError).message;
  }
  throw new Error("the spec was accepted");
}

const gate = (id: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  id,
  kind: "gate",
  ...extra,
});

describe("workflow specs", () => {
  it("accepts the quickstart's inline spec", () => {
    expect(validateSpec(QUICKSTART, { topic: "distributed AI" }).steps).toHaveLength(2);
  });

  it("refuses an unknown step kind, naming the step", () => {
    expect(refusal({ steps: [{ id: "x", kind: "loop" }] })).toBe(
      'invalid workflow spec: step "x": unknown kind "loop" (inference, map, gate, transform)',
    );
  });

  it("refuses a reference to a missing step, naming both", () => {
    const spec = {
      steps: [QUICKSTART.steps[0], { ...QUICKSTART.steps[1], over: "{{steps.plann.output}}" }],
    };
    expect(refusal(spec, { topic: "t" })).toContain(
      'step "images" refers to step "plann", which does not exist',
    );
    expect(refusal({ steps: [gate("a", { needs: ["ghost"] })] })).toContain(
      'step "a" refers to step "ghost"',
    );
  });

  it("refuses a cycle, naming its steps", () => {
    const spec = {
      steps: [
        gate("a", { needs: ["c"] }),
        gate("b", { needs: ["a"] }),
        gate("c", { needs: ["b"] }),
      ],
    };
    expect(refusal(spec)).toContain('steps "a" → "c" → "b" → "a" form a cycle');
    expect(refusal({ steps: [gate("self", { needs: ["self"] })] })).toContain('"self" → "self"');
  });

  it("reports every other problem at once", () => {
    const message = refusal({
      steps: [
        { id: "a", kind: "inference", type: "sing", body: {} },
        {
          id: "b",
          kind: "inference",
          type: "image",
          extract: "json",
          body: { prompt: "{{item}}" },
        },
        { id: "c", kind: "transform", op: "explode", input: "{{inputs.missing}}" },
        { id: "c", kind: "map", type: "chat", body: {} },
        { id: "bad id!", kind: "gate" },
      ],
    });
    expect(message).toContain('step "a": unknown type "sing"');
    expect(message).toContain(
      'step "b": "extract" can only be "json", on chat or completion steps',
    );
    expect(message).toContain('step "b": {{item}} can only be used in the body of a map step');
    expect(message).toContain('step "c": unknown op "explode"');
    expect(message).toContain(
      'step "c": uses {{inputs.missing}} but the run has no input "missing"',
    );
    expect(message).toContain('step "c": the id is used twice');
    expect(message).toContain('step "c": a map needs "over"');
    expect(message).toContain('steps[4]: "id" must be');
    expect(refusal({ steps: [] })).toContain("1 to 32 steps");
  });

  it("checks template inputs against the template", () => {
    expect(() => runRequest({ template: "illustrated-story", inputs: { topic: "t" } })).toThrow(
      /input "scenes" is required.*input "style" is required/,
    );
    expect(() =>
      runRequest({
        template: "image-variations",
        inputs: { subject: "s", count: 99, vibe: "v", x: 1 },
      }),
    ).toThrow(/unknown input "x".*"count" must be a whole number from 1 to 16/);
    expect(() => runRequest({ template: "nope" })).toThrow(/unknown template "nope"/);
    expect(() => runRequest({ template: "song-and-cover", spec: QUICKSTART })).toThrow(/either/);
  });

  it("has the five templates the API names, each a valid spec", () => {
    expect(TEMPLATES.map((t) => t.key)).toEqual([
      "illustrated-story",
      "image-variations",
      "storyboard-to-video",
      "song-and-cover",
      "narrated-explainer",
    ]);
    for (const t of TEMPLATES) {
      const inputs = Object.fromEntries(
        t.inputs.map((i) => [i.name, i.type === "integer" ? 2 : "x"]),
      );
      expect(runRequest({ template: t.key, inputs }).spec.steps.length).toBeGreaterThan(1);
    }
  });
});

/** A budget no test here comes near. */
const plenty = (): Budget => new Budget(1 << 20, "the value", "a test");

const scope = (extra: Partial<Scope> = {}): Scope => ({
  inputs: { topic: "AI", voice: null, n: 3 },
  output: (id) => (id === "plan" ? { titles: ["A", "B"], frame: { job_id: "job_1" } } : undefined),
  jobResult: (id) => ({ data: [{ b64_json: `image of ${id}` }] }),
  ...extra,
});

describe("templating", () => {
  it("keeps a sole expression's value and writes values into text", () => {
    expect(render("{{steps.plan.output.titles}}", scope(), plenty())).toEqual(["A", "B"]);
    expect(render("{{ steps.plan.output.titles.1 }}", scope(), plenty())).toBe("B");
    expect(
      render(
        "About {{inputs.topic}}: {{steps.plan.output.titles}} ({{inputs.n}})",
        scope(),
        plenty(),
      ),
    ).toBe('About AI: ["A","B"] (3)');
    expect(
      render({ p: "#{{index}} {{item.t}}" }, scope({ item: { t: "x" }, index: 2 }), plenty()),
    ).toEqual({
      p: "#2 x",
    });
  });

  it("drops a field that is an input left out, and reads job results through .result", () => {
    expect(render({ input: "hi", voice: "{{inputs.voice}}" }, scope(), plenty())).toEqual({
      input: "hi",
    });
    expect(render("{{steps.plan.output.frame.result.data.0.b64_json}}", scope(), plenty())).toBe(
      "image of job_1",
    );
  });

  it("stops at the budget, however many times a value holds the same list", () => {
    let nested: unknown = "abcdefgh";
    for (let i = 0; i < 6; i++) nested = Array(100).fill(nested);
    // 10^13 bytes written out; counting stops after the budget's 64 KiB.
    const big = scope({ output: () => nested });
    expect(() => render("{{steps.s.output}}", big, new Budget(65_536, "it", "x"))).toThrow(
      new TooLarge("it comes to more than 65536 bytes of JSON (x)"),
    );
    expect(() => render("see {{steps.s.output}}", big, new Budget(65_536, "it", "x"))).toThrow(
      TooLarge,
    );
    const small = render(Array(3).fill("{{inputs.topic}}"), scope(), new Budget(16, "it", "x"));
    expect(small).toEqual(["AI", "AI", "AI"]);
    expect(() =>
      render(Array(4).fill("{{inputs.topic}}"), scope(), new Budget(16, "it", "x")),
    ).toThrow(TooLarge);
  });

  it("names the expression that has no value", () => {
    expect(() => render("{{steps.plan.output.nope}}", scope(), plenty())).toThrow(
      '{{steps.plan.output.nope}} has no "nope"',
    );
    expect(() => render("{{steps.later.output}}", scope(), plenty())).toThrow(
      'step "later" has no output',
    );
  });
});

describe("transforms and extraction", () => {
  const t = (op: TransformStep["op"], extra: Partial<TransformStep> = {}): TransformStep => ({
    id: "t",
    kind: "transform",
    op,
    input: null,
    ...extra,
  });

  it("applies each transform", () => {
    expect(applyTransform(t("passthrough"), [1], plenty())).toEqual([1]);
    expect(applyTransform(t("pluck", { field: "a" }), [{ a: 1 }, { b: 2 }], plenty())).toEqual([
      1,
      null,
    ]);
    expect(applyTransform(t("split_lines"), "1. one\n\n- two\n  three ", plenty())).toEqual([
      "one",
      "two",
      "three",
    ]);
    expect(applyTransform(t("join", { separator: ", " }), ["a", 2], plenty())).toBe("a, 2");
    expect(applyTransform(t("zip"), { a: [1, 2, 3], b: ["x", "y"] }, plenty())).toEqual([
      { a: 1, b: "x" },
      { a: 2, b: "y" },
    ]);
    expect(applyTransform(t("chunk", { size: 2 }), [1, 2, 3], plenty())).toEqual([[1, 2], [3]]);
    expect(() => applyTransform(t("join"), "text", plenty())).toThrow("join needs a list");
  });

  it("finds the JSON in an LLM reply", () => {
    expect(parseLooseJson('{"a":1}')).toEqual({ a: 1 });
    expect(parseLooseJson('Sure!\n```json\n{"a": [1]}\n```\nEnjoy.')).toEqual({ a: [1] });
    expect(parseLooseJson('Here: {"a": 2} as asked')).toEqual({ a: 2 });
    expect(() => parseLooseJson("no json here")).toThrow(/not JSON/);
  });
});
