/**
 * Running one workflow step: rendering its requests, submitting its jobs (one, or one per item
 * of a map), and turning finished jobs into the step's output. Chat outputs are the reply's
 * text (or its JSON with `extract: "json"`); media outputs are `{job_id, result_url,
 * content_type}` references, and a template path through `.result` reads the job's JSON result.
 * What a step makes is bounded: its requests together by `maxBodyBytes`, and the run's inputs
 * and outputs together by `maxRunBytes` (`size.ts`).
 */
import { readFileSync } from "node:fs";
import type { JobSystem } from "../jobs/jobs.ts";
import { jobRequest, type JobRequest } from "../jobs/request.ts";
import { resultPaths } from "../jobs/results.ts";
import { roomFor } from "../jobs/retention.ts";
import type { JobError, JobLimits, JobRecord } from "../jobs/types.ts";
import { HttpError } from "../../http/error.ts";
import { MAX_FANOUT, STEP_TYPES, type InferenceStep, type MapStep, type Step } from "./spec.ts";
import { Budget, TooLarge } from "./size.ts";
import { render, type Scope } from "./templating.ts";
import { applyTransform } from "./transforms.ts";
import type { RunRecord, StepState } from "./types.ts";

/**
 * What running a step needs: its run, the job queue, the bounds, the results directory, and a
 * way to drop the finished jobs that make room for the step's (`roomFor`).
 */
export interface StepContext {
  run: RunRecord;
  jobs: JobSystem;
  limits: JobLimits;
  resultsDir: string;
  forget(jobs: JobRecord[]): void;
}

const fail = (state: StepState, type: string, message: string): void => {
  Object.assign(state, { status: "FAILED", finished: Date.now(), error: { type, message } });
};

/** A job's JSON result: inline, or read from its file when it is JSON of a body's size. */
function jsonResult(ctx: StepContext, job: JobRecord | undefined): unknown {
  const result = job?.result;
  if (!job || !result) return undefined;
  if (result.kind === "json") return result.value;
  if (!result.content_type.includes("json") || result.bytes > ctx.limits.maxBodyBytes)
    return undefined;
  return JSON.parse(readFileSync(resultPaths(ctx.resultsDir, job.id).final, "utf8")) as unknown;
}

/**
 * What a step's templates see. `results` keeps each job's JSON result once read: a template may
 * name the same result many times, and each would otherwise read and parse its file again.
 */
function scope(
  ctx: StepContext,
  results: Map<string, unknown>,
  item?: unknown,
  index?: number,
): Scope {
  return {
    inputs: ctx.run.inputs,
    output: (id) => {
      const s = ctx.run.steps.find((x) => x.id === id);
      return s?.status === "DONE" ? s.output : undefined;
    },
    ...(index === undefined ? {} : { item, index }),
    jobResult: (id) => {
      if (!results.has(id)) results.set(id, jsonResult(ctx, ctx.jobs.get(ctx.run.member, id)));
      return results.get(id);
    },
  };
}

/** Bytes the run's inputs and the outputs of its finished steps take as JSON, up to `limit`. */
export function runBytes(run: RunRecord, limit: number): number {
  const budget = new Budget(limit, `run ${run.id}`, "maxRunBytes");
  budget.count(run.inputs);
  for (const state of run.steps) if (state.status === "DONE") budget.count(state.output ?? null);
  return budget.used;
}

/** What the run may still grow by before it passes `maxRunBytes`, as a budget for `what`. */
function room(ctx: StepContext, what: string): Budget {
  const used = runBytes(ctx.run, ctx.limits.maxRunBytes);
  return new Budget(
    ctx.limits.maxRunBytes - used,
    what,
    `maxRunBytes, less the ${used} bytes the run holds`,
  );
}

/** The JSON in an LLM reply, tolerating code fences and prose around it. */
export function parseLooseJson(text: string): unknown {
  const candidate = /```(?:json)?\s*([\s\S]*?)```/.exec(text)?.[1] ?? text;
  try {
    return JSON.parse(candidate.trim());
  } catch {
    const start = candidate.search(/[[{]/);
    const end = Math.max(candidate.lastIndexOf("}"), candidate.lastIndexOf("]"));
    if (start >= 0 && end > start) return JSON.parse(candidate.slice(start, end + 1));
    throw new Error(`the reply is not JSON: ${JSON.stringify(text.slice(0, 200))}`);
  }
}

function outputOf(ctx: StepContext, step: InferenceStep | MapStep, job: JobRecord): unknown {
  if (step.type !== "chat" && step.type !== "completion")
    return {
      job_id: job.id,
      result_url: `/v1/jobs/${job.id}/result`,
      content_type: job.result?.content_type ?? null,
    };
  const reply = jsonResult(ctx, job) as {
    choices?: { message?: { content?: unknown }; text?: unknown }[];
  };
  const choice = reply.choices?.[0];
  const text = step.type === "chat" ? choice?.message?.content : choice?.text;
  if (typeof text !== "string") throw new Error(`job ${job.id}: the reply has no text`);
  return step.extract === "json" ? parseLooseJson(text) : text;
}

function requestsOf(ctx: StepContext, step: InferenceStep | MapStep): JobRequest[] {
  const results = new Map<string, unknown>();
  let items: { item?: unknown; index?: number }[] = [{}];
  if (step.kind === "map") {
    const over = render(step.over, scope(ctx, results), room(ctx, `step "${step.id}"'s "over"`));
    if (!Array.isArray(over)) throw new Error(`"over" is not a list but ${typeof over}`);
    const limit =
      step.limit === undefined
        ? undefined
        : Number(render(step.limit, scope(ctx, results), room(ctx, `step "${step.id}"'s "limit"`)));
    if (limit === undefined && over.length > MAX_FANOUT)
      throw new Error(
        `"over" has ${over.length} items; a map takes at most ${MAX_FANOUT} (set "limit")`,
      );
    items = (over as unknown[])
      .slice(0, Math.min(limit ?? MAX_FANOUT, MAX_FANOUT))
      .map((item, index) => ({ item, index }));
  }
  // All of a step's requests together are no larger than one job's body may be.
  const budget = new Budget(
    ctx.limits.maxBodyBytes,
    `step "${step.id}"'s requests`,
    "maxBodyBytes",
  );
  return items.map(({ item, index }) => {
    const body = render(step.body, scope(ctx, results, item, index), budget) as Record<
      string,
      unknown
    >;
    const model =
      step.model ?? (typeof body.model === "string" ? body.model : ctx.run.models[step.type]);
    const checked = jobRequest(STEP_TYPES[step.type], { ...body, model }, ctx.limits.maxBodyBytes);
    if (typeof checked === "string") throw new Error(checked);
    return checked;
  });
}

/**
 * Starts a step whose dependencies are DONE. Gates start AWAITING; transforms finish at once;
 * inference and map steps submit their jobs (reusing any a crash left behind, found by their
 * idempotency keys) and are RUNNING. Problems make the step FAILED, never throw.
 */
export function startStep(ctx: StepContext, step: Step, state: StepState): void {
  state.started = Date.now();
  if (step.kind === "gate") {
    state.status = "AWAITING";
    return;
  }
  try {
    if (step.kind === "transform") {
      const input = render(
        step.input,
        scope(ctx, new Map()),
        room(ctx, `step "${step.id}"'s input`),
      );
      const output = applyTransform(step, input, room(ctx, `step "${step.id}"'s output`));
      Object.assign(state, { status: "DONE", output, finished: Date.now() });
      return;
    }
    const requests = requestsOf(ctx, step);
    const { run, jobs } = ctx;
    const key = (i: number): string => `run:${run.id}:${step.id}:${i}`;
    const known = requests.map((_, i) => jobs.replay(run.member, key(i)));
    const fresh = requests.filter((_, i) => known[i] === undefined);
    jobs.checkRoom(run.member, fresh.length);
    const bytes = fresh.reduce((sum, r) => sum + r.body.length, 0);
    ctx.forget(roomFor(jobs, run.member, fresh.length, ctx.limits, bytes));
    state.jobs = requests.map((r, i) => {
      const origin = { idempotencyKey: key(i), runId: run.id };
      return (known[i] ?? jobs.enqueue(run.member, [r], origin).jobs[0])?.id ?? "";
    });
    state.status = "RUNNING";
    if (requests.length === 0)
      Object.assign(state, { status: "DONE", output: [], finished: Date.now() });
  } catch (err) {
    const type =
      err instanceof HttpError ? err.type : err instanceof TooLarge ? "too_large" : "invalid_step";
    fail(state, type, (err as Error).message);
  }
}

/** Settles a RUNNING step once its jobs have; true when its state changed. */
export function collectStep(ctx: StepContext, step: Step, state: StepState): boolean {
  if (step.kind !== "inference" && step.kind !== "map") return false;
  const jobs = (state.jobs ?? []).map((id) => ctx.jobs.get(ctx.run.member, id));
  const bad = jobs.find((j) => j === undefined || j.status === "FAILED" || j.status === "CANCELED");
  if (bad !== undefined || jobs.some((j) => j === undefined)) {
    const error: JobError = bad?.error ?? {
      type: "job_failed",
      message: "a job of this step is gone",
    };
    fail(state, error.type, bad ? `job ${bad.id} ${bad.status}: ${error.message}` : error.message);
    return true;
  }
  if (!jobs.every((j) => j?.status === "PROCESSED")) return false;
  try {
    const outputs = jobs.map((j) => outputOf(ctx, step, j as JobRecord));
    const output = step.kind === "map" ? outputs : outputs[0];
    room(ctx, `step "${step.id}"'s output`).count(output);
    Object.assign(state, { status: "DONE", output, finished: Date.now() });
  } catch (err) {
    fail(state, err instanceof TooLarge ? "too_large" : "invalid_output", (err as Error).message);
  }
  return true;
}
