/** The inline transforms a workflow step can apply, run inside the relay (no provider involved). */
import type { TransformStep } from "./spec.ts";

const list = (value: unknown, op: string): unknown[] => {
  if (!Array.isArray(value)) throw new Error(`${op} needs a list, got ${typeof value}`);
  return value;
};

/**
 * Applies `step.op` to its rendered input:
 * - `passthrough`: the input itself;
 * - `pluck`: each item's `field`;
 * - `split_lines`: a text's non-empty lines, without list bullets or numbers;
 * - `join`: a list's items as text, joined with `separator` (default a newline);
 * - `zip`: an object of lists as a list of objects (`{a:[1,2],b:[3,4]}` → `[{a:1,b:3},{a:2,b:4}]`),
 *   as long as the shortest list;
 * - `chunk`: a list cut into lists of `size`.
 * Throws an `Error` saying what did not fit.
 */
export function applyTransform(step: TransformStep, input: unknown): unknown {
  switch (step.op) {
    case "passthrough":
      return input;
    case "pluck":
      return list(input, "pluck").map((item) =>
        typeof item === "object" && item !== null
          ? ((item as Record<string, unknown>)[step.field ?? ""] ?? null)
          : null,
      );
    case "split_lines":
      if (typeof input !== "string") throw new Error(`split_lines needs text, got ${typeof input}`);
      return input
        .split(/\r?\n/)
        .map((line) => line.replace(/^\s*(?:[-*•]|\d+[.)])\s*/, "").trim())
        .filter((line) => line !== "");
    case "join":
      return list(input, "join")
        .map((item) => (typeof item === "string" ? item : JSON.stringify(item)))
        .join(step.separator ?? "\n");
    case "zip": {
      if (typeof input !== "object" || input === null || Array.isArray(input))
        throw new Error("zip needs an object of lists");
      const columns = Object.entries(input).map(([k, v]) => [k, list(v, "zip")] as const);
      const length = columns.length === 0 ? 0 : Math.min(...columns.map(([, v]) => v.length));
      return Array.from({ length }, (_, i) =>
        Object.fromEntries(columns.map(([k, v]) => [k, v[i]])),
      );
    }
    case "chunk": {
      const items = list(input, "chunk");
      const size = step.size ?? 1;
      return Array.from({ length: Math.ceil(items.length / size) }, (_, i) =>
        items.slice(i * size, (i + 1) * size),
      );
    }
  }
}
