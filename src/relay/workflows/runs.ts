/**
 * Workflow runs inside the relay: a run advances whenever one of its jobs settles or a gate is
 * decided, starting every step whose dependencies are DONE. A failed step fails the run; a
 * rejected gate or a cancel ends it CANCELED. Either way its unfinished jobs are canceled (at
 * the provider too) and the steps that never started are SKIPPED. What a member keeps is bounded
 * by `maxStoredRunsPerMember` and `maxStoredRunBytesPerMember`: their oldest finished runs go
 * first.
 */
import type { Logger } from "../../log.ts";
import { describeError } from "../../errors.ts";
import { newId, nextSeq } from "../jobs/ids.ts";
import { MemberRecords } from "../jobs/records.ts";
import type { JobSystem } from "../jobs/jobs.ts";
import type { JobStore } from "../jobs/store.ts";
import type { JobError, JobLimits, JobRecord } from "../jobs/types.ts";
import { conflict } from "../jobs/work-error.ts";
import { HttpError } from "../../http/error.ts";
import type { Registry } from "../registry.ts";
import { chooseModels, runRequest } from "./request.ts";
import { dependencies, type Step } from "./spec.ts";
import { jsonSize, TooLarge } from "./size.ts";
import { collectStep, runBytes, startStep, type StepContext } from "./steps.ts";
import { isRunOver, type RunRecord, type StepState } from "./types.ts";

/** Runs one member may have going at once. */
export const MAX_ACTIVE_RUNS = 32;

/**
 * The relay's workflow runs.
 * @example
 * const { run } = await workflows.submit("alice", { template: "image-variations", inputs });
 * await workflows.decide(run, "review", true, "looks good");
 */
export class Workflows {
  readonly #runs = new MemberRecords<RunRecord>();
  /** Each run's `runBytes` at its last save. */
  readonly #bytes = new WeakMap<RunRecord, number>();

  constructor(
    private readonly jobs: JobSystem,
    private readonly store: JobStore,
    private readonly registry: Registry,
    private readonly limits: JobLimits,
    private readonly log: Logger,
  ) {
    jobs.on("settled", (job) => {
      const run = job.run_id === undefined ? undefined : this.#runs.byId(job.run_id);
      if (run) this.#advance(run);
    });
  }

  /** Lets go of runs another instance of the club has taken over. */
  release(ids: ReadonlySet<string>): void {
    this.#runs.release(ids);
  }

  /** Every run's id (what an instance checks it still owns). */
  ids(): string[] {
    return [...this.#runs.values()].map((r) => r.id);
  }

  /** Takes the stored runs (after the jobs) and moves on those a restart interrupted. */
  load(runs: RunRecord[]): void {
    this.#runs.load(runs);
    for (const run of runs) {
      this.#measure(run);
      this.#advance(run);
    }
  }

  /** Starts a run from a template or a spec; a repeated idempotency key gets the existing run. */
  async submit(
    member: string,
    body: Record<string, unknown>,
    key?: string,
  ): Promise<{ run: RunRecord; replayed: boolean }> {
    const known = this.#runs.byKey(member, key);
    if (known) return { run: known, replayed: true };
    const request = runRequest(body);
    let bytes: number;
    try {
      bytes = jsonSize(request.inputs, this.limits.maxRunBytes, "the run's inputs", "maxRunBytes");
    } catch (err) {
      if (err instanceof TooLarge) throw new HttpError(413, "request_too_large", err.message);
      throw err;
    }
    const active = this.list(member).filter((r) => !isRunOver(r.status)).length;
    if (active >= MAX_ACTIVE_RUNS)
      throw new HttpError(
        429,
        "rate_limit_error",
        `you have ${active} workflow runs going; the limit is ${MAX_ACTIVE_RUNS}`,
      );
    const old = this.#roomFor(member, bytes);
    const models = {
      ...request.models,
      ...chooseModels(request.spec, request.models, this.registry.cards(member)),
    };
    const run: RunRecord = {
      kind: "run",
      id: newId("run"),
      seq: nextSeq(),
      member,
      created: Date.now(),
      status: "PENDING",
      ...(request.template === undefined ? {} : { template: request.template }),
      spec: request.spec,
      inputs: request.inputs,
      models,
      steps: request.spec.steps.map((s) => ({ id: s.id, status: "PENDING" })),
      ...(key === undefined ? {} : { idempotency_key: key }),
    };
    this.#runs.add(run);
    this.#bytes.set(run, bytes);
    for (const finished of old) void this.#drop(finished);
    try {
      await this.store.save(run);
    } catch (err) {
      // Not stored, so not acknowledged: the run goes as if it had not been submitted.
      this.#runs.remove(run);
      throw err;
    }
    this.log.info(
      { run: run.id, member, template: run.template },
      "workflow run %s started",
      run.id,
    );
    this.#advance(run);
    return { run, replayed: false };
  }

  get(member: string, id: string): RunRecord | undefined {
    return this.#runs.get(member, id);
  }

  /** The member's runs, newest first. */
  list(member: string): RunRecord[] {
    return this.#runs.list(member);
  }

  /** Cancels a run and its unfinished jobs; resolves once that is committed to the store. */
  async cancel(run: RunRecord): Promise<void> {
    if (isRunOver(run.status)) throw conflict(`run ${run.id} is already ${run.status}`);
    this.#end(run, "CANCELED", { type: "canceled", message: "the run was canceled" });
    await this.store.save(run);
  }

  /**
   * Approves or rejects a gate that is AWAITING; a rejection ends the run CANCELED. Resolves
   * once the decision is committed to the store, so an answered decision survives a crash.
   */
  async decide(
    run: RunRecord,
    stepId: string,
    approve: boolean,
    note: string | undefined,
  ): Promise<void> {
    const state = run.steps.find((s) => s.id === stepId);
    const step = run.spec.steps.find((s) => s.id === stepId);
    if (!state || !step)
      throw new HttpError(404, "not_found_error", `run ${run.id} has no step "${stepId}"`);
    if (step.kind !== "gate") throw conflict(`step "${stepId}" is a ${step.kind} step, not a gate`);
    if (state.status !== "AWAITING" || isRunOver(run.status))
      throw conflict(`step "${stepId}" is ${state.status}, not AWAITING a decision`);
    const output = { approved: approve, ...(note === undefined ? {} : { note }) };
    Object.assign(state, { status: approve ? "DONE" : "CANCELED", output, finished: Date.now() });
    this.log.info(
      { run: run.id, step: stepId, approve },
      "gate %s %s",
      stepId,
      approve ? "approved" : "rejected",
    );
    if (approve) this.#advance(run, true);
    else
      this.#end(run, "CANCELED", {
        type: "rejected",
        message: `step "${stepId}" was rejected${note ? `: ${note}` : ""}`,
      });
    await this.store.save(run);
  }

  /** Deletes runs (and their jobs) finished longer than the retention ago. */
  async prune(now: number): Promise<void> {
    for (const run of this.#runs.values())
      if (isRunOver(run.status) && now - (run.finished ?? now) >= this.limits.retainMs)
        await this.#drop(run);
  }

  /** Drops the run and its jobs, from memory at once and then from the store. */
  async #drop(run: RunRecord): Promise<void> {
    this.#runs.remove(run);
    const jobs = run.steps.flatMap((s) => s.jobs ?? []).map((id) => this.jobs.get(run.member, id));
    await Promise.all(jobs.filter((j) => j !== undefined).map((j) => this.jobs.forget(j)))
      .then(() => this.store.remove(run.id))
      .catch((err: unknown) =>
        this.log.error({ err: describeError(err) }, "dropping a run failed"),
      );
  }

  /**
   * The oldest finished runs of `member` to drop so that one more holding `bytes` fits; a 429
   * naming the limit when only unfinished runs are left.
   */
  #roomFor(member: string, bytes: number): RunRecord[] {
    const mine = this.list(member);
    const held = mine.reduce((sum, r) => sum + (this.#bytes.get(r) ?? 0), 0);
    const { maxStoredRunsPerMember: maxRuns, maxStoredRunBytesPerMember: maxBytes } = this.limits;
    let extraRuns = mine.length + 1 - maxRuns;
    let extraBytes = held + bytes - maxBytes;
    const oldest: RunRecord[] = [];
    for (const run of mine.toReversed()) {
      if (extraRuns <= 0 && extraBytes <= 0) break;
      if (!isRunOver(run.status)) continue;
      oldest.push(run);
      extraRuns--;
      extraBytes -= this.#bytes.get(run) ?? 0;
    }
    if (extraRuns > 0)
      throw new HttpError(
        429,
        "rate_limit_error",
        `you keep ${mine.length} workflow runs; the limit is ${maxRuns} (maxStoredRunsPerMember): wait for runs to finish`,
      );
    if (extraBytes > 0)
      throw new HttpError(
        429,
        "rate_limit_error",
        `your workflow runs hold ${held} bytes and this one's ${bytes} more would pass the limit of ${maxBytes} bytes (maxStoredRunBytesPerMember): wait for runs to finish`,
      );
    return oldest;
  }

  #context(run: RunRecord): StepContext {
    return {
      run,
      jobs: this.jobs,
      limits: this.limits,
      resultsDir: this.store.resultsDir,
      forget: (jobs: JobRecord[]) =>
        void Promise.all(jobs.map((j) => this.jobs.forget(j))).catch((err: unknown) =>
          this.log.error({ err: describeError(err), run: run.id }, "dropping old jobs failed"),
        ),
    };
  }

  /** Remembers what the run holds, for `#roomFor`. */
  #measure(run: RunRecord): void {
    // Runs saved before `maxRunBytes` may hold more: they count as what they hold, or, nested
    // too deep to count, as the most a run may hold.
    try {
      this.#bytes.set(run, runBytes(run, Infinity));
    } catch (err) {
      if (!(err instanceof TooLarge)) throw err;
      this.#bytes.set(run, this.limits.maxRunBytes);
    }
  }

  #advance(run: RunRecord, changed = false): void {
    if (isRunOver(run.status)) return;
    const ctx = this.#context(run);
    const stateOf = (id: string): StepState | undefined => run.steps.find((s) => s.id === id);
    for (let moved = true; moved;) {
      moved = false;
      for (const step of run.spec.steps) {
        const state = stateOf(step.id);
        if (!state) continue;
        if (state.status === "RUNNING") moved = collectStep(ctx, step, state) || moved;
        else if (state.status === "PENDING" && this.#ready(step, stateOf)) {
          startStep(ctx, step, state);
          moved = true;
        }
      }
      changed ||= moved;
    }
    const failed = run.steps.find((s) => s.status === "FAILED");
    if (failed) {
      const why = failed.error?.message ?? "it failed";
      this.#end(run, "FAILED", {
        type: failed.error?.type ?? "step_failed",
        message: `step "${failed.id}" failed: ${why}`,
      });
      return;
    }
    const status = run.steps.every((s) => s.status === "DONE")
      ? "DONE"
      : run.steps.some((s) => s.status === "AWAITING")
        ? "AWAITING"
        : "RUNNING";
    if (status !== run.status) {
      Object.assign(run, { status, ...(status === "DONE" ? { finished: Date.now() } : {}) });
      changed = true;
    }
    if (changed) this.#save(run);
  }

  #ready(step: Step, stateOf: (id: string) => StepState | undefined): boolean {
    return dependencies(step).every((id) => stateOf(id)?.status === "DONE");
  }

  #end(run: RunRecord, status: "FAILED" | "CANCELED", error: JobError): void {
    // The status first: canceling jobs below re-enters `#advance`, which must see the run over.
    Object.assign(run, { status, error, finished: Date.now() });
    for (const state of run.steps) {
      if (state.status === "PENDING") state.status = "SKIPPED";
      if (state.status !== "RUNNING" && state.status !== "AWAITING") continue;
      Object.assign(state, { status: "CANCELED", finished: Date.now() });
      for (const id of state.jobs ?? []) {
        const job = this.jobs.get(run.member, id);
        if (job) this.jobs.cancel(job);
      }
    }
    this.log.info({ run: run.id, status, error }, "workflow run %s %s", run.id, status);
    this.#save(run);
  }

  #save(run: RunRecord): void {
    this.#measure(run);
    this.store
      .save(run)
      .catch((err: unknown) =>
        this.log.error({ err: describeError(err), run: run.id }, "saving a run failed"),
      );
  }
}
