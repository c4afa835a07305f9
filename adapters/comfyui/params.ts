/**
 * From a request to the graph ComfyUI runs: the request fields a workflow takes are checked
 * (type and range) and written into a copy of its graph. Nothing else of a request reaches a
 * node: no field names an input, a node or a file of the rig.
 */
import { randomInt } from "node:crypto";
import { badRequest } from "../../src/http/error.ts";
import type { Field, Graph, Target, Workflow } from "./workflow.ts";

/** Field values after checking; `image` and `mask` are the names ComfyUI gave the uploads. */
export type Values = Partial<Record<Field, string | number>> & { size?: [number, number] };

type Rule = ["string", number] | ["int" | "number", number, number];

const RULES: Record<Exclude<Field, "image" | "mask">, Rule> = {
  prompt: ["string", 32_000],
  negative_prompt: ["string", 32_000],
  n: ["int", 1, 16],
  seed: ["int", 0, Number.MAX_SAFE_INTEGER],
  steps: ["int", 1, 1000],
  guidance_scale: ["number", 0, 100],
  denoise: ["number", 0, 1],
  width: ["int", 16, 16_384],
  height: ["int", 16, 16_384],
  num_frames: ["int", 1, 100_000],
  fps: ["number", 0.1, 1000],
};

/** Names the club's clients use for some fields. */
const ALIASES: Record<string, keyof typeof RULES> = {
  num_inference_steps: "steps",
  cfg_scale: "guidance_scale",
};

function check(field: string, rule: Rule, raw: unknown): string | number {
  if (rule[0] === "string") {
    if (typeof raw !== "string") throw badRequest(`"${field}" must be a string`);
    if (raw.length > rule[1]) throw badRequest(`"${field}" is longer than ${rule[1]}`);
    return raw;
  }
  const n = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw;
  const [kind, min, max] = rule;
  if (typeof n !== "number" || !Number.isFinite(n) || (kind === "int" && !Number.isInteger(n)))
    throw badRequest(`"${field}" must be ${kind === "int" ? "an integer" : "a number"}`);
  if (n < min || n > max)
    throw badRequest(`"${field}" must be between ${min} and ${max}, got ${n}`);
  return n;
}

function parseSize(raw: unknown): [number, number] | undefined {
  if (raw === undefined || raw === null || raw === "auto") return undefined;
  const m = typeof raw === "string" ? /^(\d{2,5})x(\d{2,5})$/.exec(raw) : null;
  if (!m) throw badRequest(`"size" must be WIDTHxHEIGHT (e.g. 1024x1024) or auto`);
  return [
    check("width", RULES.width, Number(m[1])) as number,
    check("height", RULES.height, Number(m[2])) as number,
  ];
}

/**
 * The checked values of the fields in `fields` (a JSON body or a form's text fields). `n`
 * defaults to 1, and a seed is drawn when none is given (ComfyUI would otherwise answer the
 * same request with its cached result).
 */
export function readValues(fields: Record<string, unknown>): Values {
  const values: Values = {};
  for (const [name, raw] of Object.entries(fields)) {
    const field = ALIASES[name] ?? name;
    if (raw === undefined || raw === null || !(field in RULES)) continue;
    const rule = RULES[field as keyof typeof RULES];
    values[field as keyof typeof RULES] = check(name, rule, raw);
  }
  const size = parseSize(fields.size);
  if (size) values.size = size;
  values.seed ??= randomInt(0, 2 ** 47);
  return values;
}

/**
 * A copy of `wf`'s graph with `values` written into the inputs its `inputs` map names (`size`
 * into `inputs.size`, or `inputs.width` and `inputs.height`); each input written is added to
 * `written` as `node.input` (what the request set, told apart from what the workflow fixed).
 * Rejects a value the workflow has no place for when leaving it out would change the answer:
 * `n` > 1, a size, an image, a mask, frames or a negative prompt.
 */
export function applyValues(wf: Workflow, values: Values, written: Set<string> = new Set()): Graph {
  const graph = structuredClone(wf.graph);
  const write = (t: Target, value: string | number): void => {
    const node = graph[t.node];
    if (!node) return;
    node.inputs[t.input] = value;
    written.add(`${t.node}.${t.input}`);
  };
  const refuse = (what: string): never => {
    throw badRequest(`model ${wf.model} (${wf.source}) does not take ${what}`);
  };
  const { size, width, height, ...rest } = values;
  for (const [field, value] of Object.entries(rest) as [Field, string | number][]) {
    const targets = wf.targets[field];
    if (targets) for (const t of targets) write(t, value);
    else if (field === "n" && value !== 1) refuse(`"n" > 1 (it makes one result per request)`);
    else if (["negative_prompt", "num_frames", "image", "mask"].includes(field))
      refuse(`"${field}"`);
  }
  const dims: [string, number | undefined, Target | undefined][] = [
    ["width", size?.[0] ?? (width as number | undefined), wf.targets.width?.[0] ?? wf.size?.width],
    [
      "height",
      size?.[1] ?? (height as number | undefined),
      wf.targets.height?.[0] ?? wf.size?.height,
    ],
  ];
  for (const [name, value, target] of dims) {
    if (value === undefined) continue;
    if (!target) refuse(size ? `"size"` : `"${name}"`);
    for (const t of wf.targets[name as Field] ?? (target ? [target] : [])) write(t, value);
  }
  return graph;
}

/** A graph ready to run, with the inputs the request set in it (`node.input`). */
export interface Prepared {
  graph: Graph;
  written: ReadonlySet<string>;
}

/** {@link applyValues}, keeping what the request set (so a refusal can say whose fault it is). */
export function prepare(wf: Workflow, values: Values): Prepared {
  const written = new Set<string>();
  return { graph: applyValues(wf, values, written), written };
}
