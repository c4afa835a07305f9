/** Workflow runs as the public API shows them: `object: "workflow.run"`, each step's state. */
import { seconds } from "../jobs/view.ts";
import type { RunRecord } from "./types.ts";

/** Makes the relative `result_url`s in step outputs absolute. */
function absolute(value: unknown, base: string): unknown {
  if (Array.isArray(value)) return value.map((v) => absolute(v, base));
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] =
      k === "result_url" && typeof v === "string" && v.startsWith("/")
        ? base + v
        : absolute(v, base);
  return out;
}

/**
 * A run's public shape.
 * @example
 * runView(run, "http://127.0.0.1:8787")
 * // { id: "run_…", object: "workflow.run", status: "AWAITING", steps: [{ step_id: "story", status: "DONE", output: {…} }, …] }
 */
export function runView(run: RunRecord, base: string): Record<string, unknown> {
  return {
    id: run.id,
    object: "workflow.run",
    status: run.status,
    template: run.template ?? null,
    created: seconds(run.created),
    finished_at: seconds(run.finished),
    inputs: run.inputs,
    models: run.models,
    error: run.error ?? null,
    steps: run.spec.steps.map((step) => {
      const state = run.steps.find((s) => s.id === step.id);
      return {
        step_id: step.id,
        kind: step.kind,
        type: step.kind === "inference" || step.kind === "map" ? step.type : null,
        title: step.title ?? null,
        status: state?.status ?? "PENDING",
        jobs: state?.jobs ?? [],
        output: absolute(state?.output ?? null, base),
        error: state?.error ?? null,
        started_at: seconds(state?.started),
        finished_at: seconds(state?.finished),
      };
    }),
  };
}
