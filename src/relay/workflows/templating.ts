/**
 * `{{…}}` templating in workflow steps: `{{inputs.x}}`, `{{steps.<id>.output…}}`, `{{item…}}`
 * and `{{index}}`, with dotted paths (`.0` indexes a list). A string that is exactly one
 * expression becomes the value itself (a list stays a list); inside text, values are written
 * out (JSON for lists and objects). An object field whose whole value is an expression that comes
 * to null is left out, so optional inputs can be omitted. What a render makes is counted against a
 * `Budget` as it is made (`size.ts`).
 */
import type { Budget } from "./size.ts";

/** One parsed expression: where it starts and the path below that. */
export interface Ref {
  root: "inputs" | "steps" | "item" | "index";
  /** For `steps`: the step id, then the path below `output`. */
  step?: string;
  path: string[];
  text: string;
}

/** What expressions are evaluated against. */
export interface Scope {
  inputs: Record<string, unknown>;
  /** The output of a finished step, or undefined. */
  output(step: string): unknown;
  item?: unknown;
  index?: number;
  /** A job's JSON result, for paths that go through `result` of a `{job_id}` output. */
  jobResult(jobId: string): unknown;
}

/** An expression that could not be evaluated; the message names it. */
export class RenderError extends Error {}

const EXPR = /\{\{\s*([^{}]*?)\s*\}\}/g;
const SOLE = /^\{\{\s*([^{}]*?)\s*\}\}$/;
const SEGMENT = /^[A-Za-z0-9_-]+$/;

/** Parses the text between `{{` and `}}`; a string is the reason it is not an expression. */
export function parseRef(text: string): Ref | string {
  const parts = text.split(".");
  if (!parts.every((p) => SEGMENT.test(p))) return `{{${text}}} is not a dotted path`;
  const [root = "", ...rest] = parts;
  if (root === "inputs" && rest.length > 0) return { root, path: rest, text };
  if (root === "item") return { root, path: rest, text };
  if (root === "index" && rest.length === 0) return { root, path: [], text };
  if (root === "steps" && rest.length >= 2 && rest[1] === "output")
    return { root, step: rest[0] ?? "", path: rest.slice(2), text };
  return `{{${text}}} is not one of {{inputs.<name>}}, {{steps.<id>.output…}}, {{item…}}, {{index}}`;
}

/** Every expression's text in a JSON value, strings inside lists and objects included. */
export function expressions(value: unknown): string[] {
  if (typeof value === "string") return [...value.matchAll(EXPR)].map((m) => m[1] ?? "");
  if (Array.isArray(value)) return value.flatMap(expressions);
  if (typeof value === "object" && value !== null) return Object.values(value).flatMap(expressions);
  return [];
}

function walk(start: unknown, ref: Ref, scope: Scope): unknown {
  let value = start;
  for (const seg of ref.path) {
    if (Array.isArray(value) && /^\d+$/.test(seg)) value = value[Number(seg)];
    else if (typeof value === "object" && value !== null) {
      const obj = value as Record<string, unknown>;
      value =
        !(seg in obj) && seg === "result" && typeof obj.job_id === "string"
          ? scope.jobResult(obj.job_id)
          : obj[seg];
    } else value = undefined;
    if (value === undefined) throw new RenderError(`{{${ref.text}}} has no "${seg}"`);
  }
  return value;
}

function resolve(text: string, scope: Scope): unknown {
  const ref = parseRef(text);
  if (typeof ref === "string") throw new RenderError(ref);
  switch (ref.root) {
    case "inputs":
      return walk(scope.inputs, ref, scope);
    case "index":
      return scope.index;
    case "item":
      return walk(scope.item, ref, scope);
    case "steps": {
      const output = scope.output(ref.step ?? "");
      if (output === undefined)
        throw new RenderError(`{{${text}}}: step "${ref.step}" has no output`);
      return walk(output, ref, scope);
    }
  }
}

/** `value` as text inside a string: strings as they are, anything else as JSON. */
function asText(value: unknown, budget: Budget): string {
  if (typeof value === "string") {
    budget.take(value.length);
    return value;
  }
  if (value === null || value === undefined) return "";
  // Counted before it is written, so a value too large to write is never written.
  budget.count(value);
  return JSON.stringify(value);
}

/**
 * Renders every string in `value` against `scope`; throws a `RenderError` naming the expression,
 * or a `TooLarge` once what it makes passes `budget`.
 */
export function render(value: unknown, scope: Scope, budget: Budget): unknown {
  if (typeof value === "string") {
    const sole = SOLE.exec(value);
    if (sole) {
      const resolved = resolve(sole[1] ?? "", scope);
      budget.count(resolved);
      return resolved;
    }
    budget.take(value.length + 2);
    return value.replace(EXPR, (_, text: string) => asText(resolve(text, scope), budget));
  }
  if (Array.isArray(value)) {
    budget.take(value.length + 1);
    return value.map((v) => render(v, scope, budget));
  }
  if (typeof value === "object" && value !== null) {
    budget.take(2);
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      budget.take(key.length + 4);
      const rendered = render(v, scope, budget);
      if (rendered === null && typeof v === "string" && SOLE.test(v)) continue;
      out[key] = rendered;
    }
    return out;
  }
  budget.count(value);
  return value;
}
