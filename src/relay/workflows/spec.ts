/**
 * Workflow specs: a list of steps forming a DAG, checked whole at submission. Every problem is
 * reported at once, each naming its step: unknown kinds and types, references to steps that do
 * not exist, cycles, inputs the run does not have, `{{item}}` outside a map.
 */
import { HttpError } from "../../http/error.ts";
import { expressions, parseRef } from "./templating.ts";

/** Step `type` → the endpoint its jobs go to. */
export const STEP_TYPES = {
  chat: "/v1/chat/completions",
  completion: "/v1/completions",
  image: "/v1/images/generations",
  tts: "/v1/audio/speech",
  music: "/v1/music/generations",
  video: "/v1/videos/generations",
} as const;
/** A step's modality: `chat`, `completion`, `image`, `tts`, `music` or `video`. */
export type StepType = keyof typeof STEP_TYPES;

/** The inline transforms (`transforms.ts`). */
export const TRANSFORM_OPS = [
  "passthrough",
  "pluck",
  "split_lines",
  "join",
  "zip",
  "chunk",
] as const;
export type TransformOp = (typeof TRANSFORM_OPS)[number];

/** At most this many steps per spec, and this many items per map. */
export const MAX_STEPS = 32;
export const MAX_FANOUT = 64;

interface StepBase {
  id: string;
  title?: string;
  /** Steps that must be DONE first, beyond those the step's templates refer to. */
  needs?: string[];
}
/** One job. */
export interface InferenceStep extends StepBase {
  kind: "inference";
  type: StepType;
  model?: string;
  body: Record<string, unknown>;
  /** Parse the LLM's reply as JSON (code fences and surrounding prose are tolerated). */
  extract?: "json";
}
/** One job per item of a list. */
export interface MapStep extends Omit<InferenceStep, "kind"> {
  kind: "map";
  /** A list, usually `{{steps.<id>.output…}}`: one job per item. */
  over: unknown;
  /** Use at most this many items (a number or an expression). */
  limit?: number | string;
}
/** Waits (AWAITING) until a person approves or rejects it. */
export interface GateStep extends StepBase {
  kind: "gate";
  message?: string;
}
/** Reshapes data inside the relay; no provider involved. */
export interface TransformStep extends StepBase {
  kind: "transform";
  op: TransformOp;
  input: unknown;
  field?: string;
  separator?: string;
  size?: number;
}
/** Any step of a spec. */
export type Step = InferenceStep | MapStep | GateStep | TransformStep;
/** A workflow: its steps, run as their dependencies allow. */
export interface Spec {
  steps: Step[];
}

const KINDS = ["inference", "map", "gate", "transform"];
const ID = /^[A-Za-z0-9_-]{1,64}$/;
const has = (o: object, k: string): boolean => Object.hasOwn(o, k);

/** The ids a step waits for: its `needs` and every step its templates use. */
export function dependencies(step: Step): string[] {
  const refs = expressions(step).map(parseRef);
  const used = refs.flatMap((r) => (typeof r === "object" && r.step !== undefined ? [r.step] : []));
  return [...new Set([...(step.needs ?? []), ...used])];
}

function checkStep(
  s: Record<string, unknown>,
  name: string,
  inputs: Record<string, unknown>,
): string[] {
  const p: string[] = [];
  const kind = s.kind;
  if (typeof kind !== "string" || !KINDS.includes(kind))
    return [`${name}: unknown kind ${JSON.stringify(kind)} (${KINDS.join(", ")})`];
  if (kind === "inference" || kind === "map") {
    if (typeof s.type !== "string" || !has(STEP_TYPES, s.type))
      p.push(
        `${name}: unknown type ${JSON.stringify(s.type)} (${Object.keys(STEP_TYPES).join(", ")})`,
      );
    if (typeof s.body !== "object" || s.body === null || Array.isArray(s.body))
      p.push(`${name}: "body" must be an object (the request for each job)`);
    if (s.model !== undefined && typeof s.model !== "string")
      p.push(`${name}: "model" must be a string`);
    if (
      s.extract !== undefined &&
      (s.extract !== "json" || (s.type !== "chat" && s.type !== "completion"))
    )
      p.push(`${name}: "extract" can only be "json", on chat or completion steps`);
  }
  if (kind === "map" && s.over === undefined) p.push(`${name}: a map needs "over" (a list)`);
  if (
    kind === "map" &&
    s.limit !== undefined &&
    typeof s.limit !== "string" &&
    typeof s.limit !== "number"
  )
    p.push(`${name}: "limit" must be a number or an expression`);
  if (kind === "transform") {
    if (!TRANSFORM_OPS.includes(s.op as TransformOp))
      p.push(`${name}: unknown op ${JSON.stringify(s.op)} (${TRANSFORM_OPS.join(", ")})`);
    if (!has(s, "input")) p.push(`${name}: a transform needs "input"`);
    if (s.op === "pluck" && typeof s.field !== "string") p.push(`${name}: pluck needs "field"`);
    if (s.op === "chunk" && !(Number.isInteger(s.size) && (s.size as number) > 0))
      p.push(`${name}: chunk needs "size", a positive integer`);
  }
  if (
    s.needs !== undefined &&
    !(Array.isArray(s.needs) && s.needs.every((n) => typeof n === "string"))
  )
    p.push(`${name}: "needs" must be a list of step ids`);
  for (const [field, value] of Object.entries(s)) {
    for (const text of expressions(value)) {
      const ref = parseRef(text);
      if (typeof ref === "string") p.push(`${name}: ${ref}`);
      else if (
        (ref.root === "item" || ref.root === "index") &&
        !(kind === "map" && field === "body")
      )
        p.push(`${name}: {{${text}}} can only be used in the body of a map step`);
      else if (ref.root === "inputs" && !has(inputs, ref.path[0] ?? ""))
        p.push(`${name}: uses {{${text}}} but the run has no input "${ref.path[0]}"`);
    }
  }
  return p;
}

function findCycle(steps: Step[]): string[] | undefined {
  const deps = new Map(steps.map((s) => [s.id, dependencies(s)]));
  const state = new Map<string, "visiting" | "done">();
  const visit = (id: string, path: string[]): string[] | undefined => {
    if (state.get(id) === "done" || !deps.has(id)) return undefined;
    if (state.get(id) === "visiting") return [...path.slice(path.indexOf(id)), id];
    state.set(id, "visiting");
    for (const dep of deps.get(id) ?? []) {
      const cycle = visit(dep, [...path, id]);
      if (cycle) return cycle;
    }
    state.set(id, "done");
    return undefined;
  };
  for (const s of steps) {
    const cycle = visit(s.id, []);
    if (cycle) return cycle;
  }
  return undefined;
}

/**
 * The spec, checked; a 400 `HttpError` listing every problem otherwise.
 * @example
 * validateSpec({ steps: [{ id: "a", kind: "gate" }] }, {});
 */
export function validateSpec(raw: unknown, inputs: Record<string, unknown>): Spec {
  const steps = (raw as { steps?: unknown } | null)?.steps;
  if (!Array.isArray(steps) || steps.length === 0 || steps.length > MAX_STEPS)
    throw new HttpError(
      400,
      "invalid_request_error",
      `"spec.steps" must be a list of 1 to ${MAX_STEPS} steps`,
    );
  const problems: string[] = [];
  const ids = new Set<string>();
  steps.forEach((s: unknown, i) => {
    if (typeof s !== "object" || s === null) return problems.push(`steps[${i}]: must be an object`);
    const { id } = s as { id?: unknown };
    if (typeof id !== "string" || !ID.test(id))
      return problems.push(`steps[${i}]: "id" must be 1-64 letters, digits, "_" or "-"`);
    if (ids.has(id)) problems.push(`step "${id}": the id is used twice`);
    ids.add(id);
    problems.push(...checkStep(s as Record<string, unknown>, `step "${id}"`, inputs));
  });
  // References and cycles are only looked for in steps that are otherwise well formed.
  if (problems.length === 0) {
    const missing = (steps as Step[]).flatMap((step) =>
      dependencies(step)
        .filter((dep) => !ids.has(dep))
        .map((dep) => `step "${step.id}" refers to step "${dep}", which does not exist`),
    );
    const cycle = missing.length === 0 ? findCycle(steps as Step[]) : undefined;
    problems.push(...missing);
    if (cycle) problems.push(`steps ${cycle.map((id) => `"${id}"`).join(" → ")} form a cycle`);
  }
  if (problems.length > 0)
    throw new HttpError(
      400,
      "invalid_request_error",
      `invalid workflow spec: ${problems.join("; ")}`,
    );
  return { steps: steps as Step[] };
}
