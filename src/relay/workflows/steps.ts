/**
 * Running one workflow step: rendering its requests, submitting its jobs (one, or one per item
 * of a map), and turning finished jobs into the step's output. Chat outputs are the reply's
 * text (or its JSON with `extract: "json"`); media outputs are `{job_id, result_url,
 * content_type}` references, and a template path through `.result` reads the job's JSON result.
 */
import { readFileSync } from "node:fs";
import type { JobSystem } from "../jobs/jobs.ts";
import { jobRequest, type JobRequest } from "../jobs/request.ts";
import { resultPaths } from "../jobs/results.ts";
import type { JobError, JobLimits, JobRecord } from "../jobs/types.ts";
import { HttpError } from "../../http/error.ts";
import { MAX_FANOUT, STEP_TYPES, type InferenceStep, type MapStep, type Step } from "./spec.ts";
import { render, type Scope } from "./templating.ts";
import { applyTransform } from "./transforms.ts";
import type { RunRecord, StepState } from "./types.ts";

/** What running a step needs: its run, the job queue, the bounds, the results directory. */
export interface StepContext {
  run: RunRecord;
  jobs: JobSystem;
  limits: JobLimits;
  resultsDir: string;
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

function scope(ctx: StepContext, item?: unknown, index?: number): Scope {
  return {
    inputs: ctx.run.inputs,
    output: (id) => {
      const s = ctx.run.steps.find((x) => x.id === id);
      return s?.status === "DONE" ? s.output : undefined;
    },
    ...(index === undefined ? {} : { item, index }),
    jobResult: (id) => jsonResult(ctx, ctx.jobs.get(ctx.run.member, id)),
  };
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
  let items: { item?: unknown; index?: number }[] = [{}];
  if (step.kind === "map") {
    const over = render(step.over, scope(ctx));
    if (!Array.isArray(over)) throw new Error(`"over" is not a list but ${typeof over}`);
    const limit = step.limit === undefined ? undefined : Number(render(step.limit, scope(ctx)));
    if (limit === undefined && over.length > MAX_FANOUT)
      throw new Error(
        `"over" has ${over.length} items; a map takes at most ${MAX_FANOUT} (set "limit")`,
      );
    items = (over as unknown[])
      .slice(0, Math.min(limit ?? MAX_FANOUT, MAX_FANOUT))
      .map((item, index) => ({ item, index }));
  }
  return items.map(({ item, index }) => {
    const body = render(step.body, scope(ctx, item, index)) as Record<string, unknown>;
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
      const output = applyTransform(step, render(step.input, scope(ctx)));
      Object.assign(state, { status: "DONE", output, finished: Date.now() });
      return;
    }
    const requests = requestsOf(ctx, step);
    const { run, jobs } = ctx;
    const key = (i: number): string => `run:${run.id}:${step.id}:${i}`;
    const known = requests.map((_, i) => jobs.replay(run.member, key(i)));
    jobs.checkRoom(run.member, known.filter((j) => j === undefined).length);
    state.jobs = requests.map((r, i) => {
      const origin = { idempotencyKey: key(i), runId: run.id };
      return (known[i] ?? jobs.enqueue(run.member, [r], origin).jobs[0])?.id ?? "";
    });
    state.status = "RUNNING";
    if (requests.length === 0)
      Object.assign(state, { status: "DONE", output: [], finished: Date.now() });
  } catch (err) {
    fail(state, err instanceof HttpError ? err.type : "invalid_step", (err as Error).message);
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
    Object.assign(state, { status: "DONE", output, finished: Date.now() });
  } catch (err) {
    fail(state, "invalid_output", (err as Error).message);
  }
  return true;
}
