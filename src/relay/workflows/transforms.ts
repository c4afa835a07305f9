/** The inline transforms a workflow step can apply, run inside the relay (no provider involved). */
import type { Budget } from "./size.ts";
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
 * Throws an `Error` saying what did not fit, or a `TooLarge` once the output passes `budget`.
 */
export function applyTransform(step: TransformStep, input: unknown, budget: Budget): unknown {
  if (step.op === "join") {
    // Counted before it is joined: a long separator between many items is a long text.
    const texts = list(input, "join").map((item) =>
      typeof item === "string" ? item : JSON.stringify(item),
    );
    const separator = step.separator ?? "\n";
    budget.take(separator.length * Math.max(0, texts.length - 1) + 2);
    for (const text of texts) budget.take(text.length);
    return texts.join(separator);
  }
  const output = reshape(step, input);
  budget.count(output);
  return output;
}

function reshape(step: TransformStep, input: unknown): unknown {
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
