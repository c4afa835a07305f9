/**
 * The job queue: the jobs and their states. Submission (with per-member idempotency and
 * bounds), cancel and retry, retries with backoff when an attempt fails, and what a relay stop
 * does to running jobs; `dispatcher.ts` decides when and where they run. Every state change is
 * saved to the store; `settled` is emitted when a job reaches a terminal state (workflows listen).
 */
import { EventEmitter } from "node:events";
import type { Logger } from "../../log.ts";
import { describeError } from "../../errors.ts";
import type { ProviderState } from "../provider-state.ts";
import type { Registry } from "../registry.ts";
import type { Attempt, Outcome } from "./attempt.ts";
import { Dispatcher } from "./dispatcher.ts";
import { retainBodies } from "./bodies.ts";
import { seenSeq } from "./ids.ts";
import { newJob, type JobOrigin, type JobRequest } from "./request.ts";
import { dropResult } from "./results.ts";
import type { JobStore } from "./store.ts";
import type { UsageSink } from "../usage-meter.ts";
import {
  isTerminal,
  type JobError,
  type JobLimits,
  type JobRecord,
  type JobStatus,
} from "./types.ts";
import { conflict } from "./work-error.ts";
import { HttpError } from "../../http/error.ts";

/** The queue's inputs: where jobs are kept, who serves them, and the bounds. */
export interface JobSystemOptions {
  store: JobStore;
  registry: Registry;
  limits: JobLimits;
  log: Logger;
  /** Where attempts book what their answers used. */
  usage?: UsageSink;
  /**
   * An instance of a club: jobs may run on providers other instances hold, and byte results
   * are kept in the shared tables too (`cluster/work.ts`).
   */
  shared?: {
    keepResult(jobId: string, path: string): Promise<void>;
    dropResult(jobId: string): Promise<void>;
  };
}

/**
 * The relay's async jobs. Events: `settled` (a job reached PROCESSED, FAILED or CANCELED).
 * @example
 * jobs.checkRoom("alice", 1);
 * const { jobs: [job], saved } = jobs.enqueue("alice", [request]);
 */
export class JobSystem extends EventEmitter<{ settled: [JobRecord] }> {
  readonly #o: JobSystemOptions;
  readonly #jobs = new Map<string, JobRecord>();
  /** QUEUED jobs in the order they (re)entered the queue. */
  readonly #queue = new Set<JobRecord>();
  readonly #keys = new Map<string, string>();
  /** Each member's jobs in submission order. */
  readonly #byMember = new Map<string, Set<JobRecord>>();
  /** The last save of each job, for answers that must wait until it is durable. */
  readonly #saving = new WeakMap<JobRecord, Promise<void>>();
  /**
   * Queued jobs whose submission is not durable yet: they count against the member's room but
   * are not dispatched, so a submission the store refuses never reaches a provider.
   */
  readonly #unacked = new WeakSet<JobRecord>();
  /** Each member's jobs on other instances (queued or running, and in all), as last counted. */
  readonly #elsewhere = new Map<string, { active: number; stored: number }>();
  readonly #dispatcher: Dispatcher;

  constructor(options: JobSystemOptions) {
    super();
    this.#o = options;
    const { registry, limits, log, store } = options;
    this.#dispatcher = new Dispatcher({
      registry,
      limits,
      log,
      resultsDir: store.resultsDir,
      ...(options.usage ? { usage: options.usage } : {}),
      ...(options.shared
        ? { anywhere: true, keepResult: options.shared.keepResult.bind(options.shared) }
        : {}),
      body: (job) => store.body(job.id),
      hooks: {
        queue: () => this.#dispatchable(),
        started: (job, link, attempt) => this.#started(job, link, attempt),
        settled: (job, outcome) => this.#settled(job, outcome),
        expired: (job) =>
          this.#finish(job, "FAILED", {
            type: "no_provider",
            message: `no online provider served model ${JSON.stringify(job.model)} for ${job.endpoint} within ${Math.round(limits.noProviderTimeoutMs / 1000)} s`,
          }),
      },
    });
  }

  /**
   * Takes stored jobs: at start, and when this instance takes over a dead one's. Jobs that were
   * running are queued again; the interrupted attempt does not count after this relay's own
   * stop (it was saved back), and counts when `interrupted` says it was cut by a crash.
   */
  load(jobs: JobRecord[], interrupted: "stop" | "crash" = "stop"): void {
    for (const job of jobs.sort((a, b) => a.seq - b.seq)) {
      seenSeq(job.seq);
      this.#add(job);
      if (job.status === "PROCESSING") {
        job.status = "QUEUED";
        // A relay's stop was not the job's fault; an instance's crash counts, as any cut attempt.
        if (interrupted === "stop") job.attempts = Math.max(0, job.attempts - 1);
        job.queued = Date.now();
        this.#save(job);
      }
      if (job.status === "QUEUED") this.#queue.add(job);
    }
    this.kick();
  }

  /**
   * The member's job with this id; another member's is as absent as one that never was. Every
   * lookup by id goes through here (routes, batches, workflow steps and `{{….result}}`), so no id
   * a member writes can reach another member's job.
   */
  get(member: string, id: string): JobRecord | undefined {
    const job = this.#jobs.get(id);
    return job?.member === member ? job : undefined;
  }

  /** Every job's id (what an instance checks it still owns). */
  ids(): string[] {
    return [...this.#jobs.keys()];
  }

  /** Every job, for pruning. */
  all(): IterableIterator<JobRecord> {
    return this.#jobs.values();
  }

  /** The member's jobs, oldest first. */
  ofMember(member: string): Iterable<JobRecord> {
    return this.#byMember.get(member) ?? [];
  }

  /** Resolves once the job's last save is durable; rejects with the store's error if it failed. */
  saved(job: JobRecord): Promise<void> {
    return this.#saving.get(job) ?? Promise.resolve();
  }

  /** The job an idempotency key already made for this member, if any. */
  replay(member: string, key: string | undefined): JobRecord | undefined {
    const id = key === undefined ? undefined : this.#keys.get(`${member}\n${key}`);
    return id === undefined ? undefined : this.#jobs.get(id);
  }

  /** Notes how many of the member's jobs other instances of the club hold: active, and in all. */
  noteElsewhere(member: string, counts: { active: number; stored: number }): void {
    if (counts.stored > 0) this.#elsewhere.set(member, counts);
    else this.#elsewhere.delete(member);
  }

  /** The member's jobs other instances store, as last noted (0 on a lone relay). */
  storedElsewhere(member: string): number {
    return this.#elsewhere.get(member)?.stored ?? 0;
  }

  /**
   * Throws a 429 `HttpError` unless `member` may queue `count` more jobs: those here and, on an
   * instance of a club, those other instances hold (`noteElsewhere`).
   */
  checkRoom(member: string, count: number): void {
    const { maxActivePerMember: max } = this.#o.limits;
    let active = this.#elsewhere.get(member)?.active ?? 0;
    for (const job of this.#queue) if (job.member === member) active++;
    active += this.#dispatcher.running.count(member);
    if (active + count > max)
      throw new HttpError(
        429,
        "rate_limit_error",
        `${active} of your jobs are queued or running and ${count} more would pass the limit of ${max}: wait for some to finish`,
      );
  }

  /**
   * Queues checked requests at once and starts saving them: `jobs` are known (and count against
   * the member's room) before `saved` resolves; they are dispatched only once it has.
   */
  enqueue(
    member: string,
    requests: JobRequest[],
    origin: JobOrigin = {},
  ): { jobs: JobRecord[]; saved: Promise<unknown> } {
    const jobs = requests.map((r) => newJob(member, r, origin));
    const saved = Promise.all(jobs.map((job, i) => this.#o.store.save(job, requests[i]?.body)));
    for (const job of jobs) {
      this.#add(job);
      this.#queue.add(job);
      this.#unacked.add(job);
    }
    void saved.then(
      () => {
        for (const job of jobs) this.#unacked.delete(job);
        this.kick();
      },
      // Not stored, so never acknowledged: the jobs go as if they had not been submitted.
      () => this.withdraw(jobs),
    );
    return { jobs, saved };
  }

  /** Takes back jobs whose submission could not be acknowledged (the store refused it). */
  async withdraw(jobs: JobRecord[]): Promise<void> {
    for (const job of jobs) {
      this.#dispatcher.abort(job.id);
      this.#dispatcher.forget(job.id);
      this.#queue.delete(job);
      this.#drop(job);
    }
    await Promise.all(jobs.map((j) => this.#o.store.remove(j.id))).catch((err: unknown) =>
      this.#o.log.warn({ err: describeError(err) }, "removing withdrawn jobs failed"),
    );
  }

  /** Cancels a queued or running job (a running one's stream is reset); false when finished. */
  cancel(job: JobRecord): boolean {
    if (isTerminal(job.status)) return false;
    this.#dispatcher.abort(job.id);
    this.#finish(job, "CANCELED");
    return true;
  }

  /** Queues a FAILED or CANCELED job again with its attempts reset. */
  async retry(job: JobRecord): Promise<void> {
    if (job.status !== "FAILED" && job.status !== "CANCELED")
      throw conflict(`job ${job.id} is ${job.status}: only FAILED or CANCELED jobs can be retried`);
    if (job.body_dropped)
      throw conflict(
        `job ${job.id} cannot be retried: its request body was dropped to keep your failed and canceled jobs' bodies under ${this.#o.limits.maxRetainedBodyBytesPerMember} bytes (maxRetainedBodyBytesPerMember); submit the request again`,
      );
    this.checkRoom(job.member, 1);
    await dropResult(this.#o.store.resultsDir, job.id);
    await this.#o.shared?.dropResult(job.id);
    delete job.error;
    delete job.result;
    delete job.started;
    delete job.finished;
    delete job.not_before;
    delete job.provider;
    Object.assign(job, { status: "QUEUED", attempts: 0, queued: Date.now() });
    this.#save(job);
    await this.saved(job);
    this.#queue.add(job);
    this.kick();
  }

  /** Deletes a finished job and its result (retention). */
  async forget(job: JobRecord): Promise<void> {
    if (!isTerminal(job.status)) return;
    this.#drop(job);
    // The row first: a crash in between leaves a file without a row, swept at the next start.
    await this.#o.store.remove(job.id);
    await dropResult(this.#o.store.resultsDir, job.id);
  }

  /** Looks at the queue soon: after submissions, finished attempts and ticks. */
  kick(): void {
    this.#dispatcher.kick();
  }

  /**
   * Lets go of jobs another instance of the club has taken over: a running one is reset at its
   * provider, and none is saved again here.
   */
  release(ids: ReadonlySet<string>): void {
    for (const id of ids) {
      const job = this.#jobs.get(id);
      if (!job) continue;
      this.#queue.delete(job);
      this.#drop(job);
      this.#dispatcher.abort(id);
      this.#dispatcher.forget(id);
    }
  }

  /** Stops dispatching; running jobs are reset at their providers and saved as QUEUED. */
  async close(): Promise<void> {
    await this.#dispatcher.close((id) => {
      const job = this.#jobs.get(id);
      if (job?.status !== "PROCESSING") return;
      // The relay's stop is not the job's fault: the attempt does not count.
      Object.assign(job, { status: "QUEUED", attempts: job.attempts - 1, queued: Date.now() });
      this.#save(job);
    });
  }

  *#dispatchable(): Generator<JobRecord> {
    for (const job of this.#queue) if (!this.#unacked.has(job)) yield job;
  }

  #started(job: JobRecord, link: ProviderState, attempt: Attempt): void {
    this.#queue.delete(job);
    delete job.not_before;
    Object.assign(job, {
      status: "PROCESSING",
      attempts: job.attempts + 1,
      started: Date.now(),
      provider: link.name,
      request_id: attempt.requestId,
    });
    this.#save(job);
  }

  #settled(job: JobRecord, outcome: Outcome): void {
    // Canceled meanwhile, or the relay is stopping: the job's state is decided already.
    if (outcome.kind === "aborted" || job.status !== "PROCESSING") return;
    const { limits, log } = this.#o;
    if (outcome.kind === "done") {
      job.result = outcome.result;
      this.#finish(job, "PROCESSED");
    } else if (outcome.retry && job.attempts < limits.maxAttempts && !this.#dispatcher.closed) {
      const delay = Math.min(limits.backoffMs * 2 ** (job.attempts - 1), limits.backoffMaxMs);
      Object.assign(job, { status: "QUEUED", queued: Date.now(), not_before: Date.now() + delay });
      job.error = outcome.error;
      log.warn({ job: job.id, error: outcome.error, delay }, "job attempt failed; retrying");
      this.#save(job);
      this.#queue.add(job);
    } else this.#finish(job, "FAILED", outcome.error);
  }

  #finish(job: JobRecord, status: JobStatus, error?: JobError): void {
    this.#queue.delete(job);
    this.#dispatcher.forget(job.id);
    job.status = status;
    job.finished = Date.now();
    delete job.not_before;
    if (error) job.error = error;
    else if (status === "PROCESSED") delete job.error;
    const dropped = retainBodies(job, this.ofMember(job.member), this.#o.limits);
    for (const other of dropped) {
      this.#dropBody(other);
      if (other !== job) this.#save(other);
    }
    this.#o.log.info(
      { job: job.id, member: job.member, model: job.model, status, error },
      "job %s %s",
      job.id,
      status,
    );
    this.#save(job);
    this.emit("settled", job);
  }

  #add(job: JobRecord): void {
    this.#jobs.set(job.id, job);
    if (job.idempotency_key) this.#keys.set(`${job.member}\n${job.idempotency_key}`, job.id);
    let mine = this.#byMember.get(job.member);
    if (!mine) this.#byMember.set(job.member, (mine = new Set()));
    mine.add(job);
  }

  #drop(job: JobRecord): void {
    this.#jobs.delete(job.id);
    if (job.idempotency_key) this.#keys.delete(`${job.member}\n${job.idempotency_key}`);
    const mine = this.#byMember.get(job.member);
    mine?.delete(job);
    if (mine?.size === 0) this.#byMember.delete(job.member);
  }

  #dropBody(job: JobRecord): void {
    job.body_dropped = true;
    this.#o.store
      .dropBody(job.id)
      .catch((err: unknown) =>
        this.#o.log.error({ err: describeError(err), job: job.id }, "dropping a job body failed"),
      );
  }

  #save(job: JobRecord): void {
    const saving = this.#o.store.save(job);
    this.#saving.set(job, saving);
    saving.catch((err: unknown) =>
      this.#o.log.error({ err: describeError(err), job: job.id }, "saving a job failed"),
    );
  }
}
