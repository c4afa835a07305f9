/**
 * When and where queued jobs run: in queue order, as the relay's, the member's and each
 * provider service's capacity allow (`capacity.ts`), skipping jobs in retry backoff, and
 * reporting jobs whose model no provider served within the deadline. What becomes of a job is
 * the queue's business (`jobs.ts`), told through the hooks.
 */
import type { Logger } from "../../log.ts";
import { describeError } from "../../errors.ts";
import { findEndpoint } from "../../protocol/index.ts";
import type { Registry } from "../registry.ts";
import { startAttempt, type Attempt, type Outcome } from "./attempt.ts";
import { pickForJob, serviceSlot } from "./capacity.ts";
import { RunningAttempts } from "./running.ts";
import type { JobLimits, JobRecord } from "./types.ts";
import type { UsageSink } from "../usage-meter.ts";
import type { ProviderState } from "../provider-state.ts";

/** What the dispatcher asks of, and tells, the queue. */
export interface DispatchHooks {
  /** The QUEUED jobs, in queue order. */
  queue(): Iterable<JobRecord>;
  /** An attempt was started on `link`: the job is running. */
  started(job: JobRecord, link: ProviderState, attempt: Attempt): void;
  /** An attempt ended, however. */
  settled(job: JobRecord, outcome: Outcome): void;
  /** No provider served the job's model within `noProviderTimeoutMs`. */
  expired(job: JobRecord): void;
}

/** The dispatcher's inputs. */
export interface DispatcherOptions {
  registry: Registry;
  limits: JobLimits;
  log: Logger;
  resultsDir: string;
  /** A job's request body, from the store (undefined once dropped). */
  body: (job: JobRecord) => Promise<Buffer | undefined>;
  hooks: DispatchHooks;
  /** Where attempts book what their answers used. */
  usage?: UsageSink;
  /** Jobs may run on providers other instances of the club hold (`pickForJob`). */
  anywhere?: boolean;
  /** Keeps a committed byte result beyond this instance, before the job is saved PROCESSED. */
  keepResult?: (jobId: string, path: string) => Promise<void>;
}

/**
 * Runs queued jobs on providers; `kick()` after anything that may let one start.
 * @example
 * const dispatcher = new Dispatcher({ registry, limits, log, resultsDir, hooks });
 * dispatcher.kick();
 */
export class Dispatcher {
  readonly running = new RunningAttempts();
  readonly #o: DispatcherOptions;
  /** When each queued job first found no provider serving its model. */
  readonly #waiting = new Map<string, number>();
  #kicked = false;
  #closed = false;

  constructor(options: DispatcherOptions) {
    this.#o = options;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Looks at the queue soon (coalesced): after submissions, finished attempts and ticks. */
  kick(): void {
    if (this.#kicked || this.#closed) return;
    this.#kicked = true;
    setImmediate(() => {
      this.#kicked = false;
      if (!this.#closed) this.#dispatch();
    });
  }

  /** The job left the queue: forget how long it waited for a provider. */
  forget(jobId: string): void {
    this.#waiting.delete(jobId);
  }

  /** Cancels a running attempt: its HTTP/2 stream is reset. */
  abort(jobId: string): void {
    this.running.get(jobId)?.abort();
  }

  /** Stops for good: `interrupted` is called for each running job, then its attempt is aborted. */
  async close(interrupted: (jobId: string) => void): Promise<void> {
    this.#closed = true;
    const attempts = this.running.entries().map(([id, attempt]) => {
      interrupted(id);
      attempt.abort();
      return attempt.done;
    });
    await Promise.allSettled(attempts);
  }

  #dispatch(): void {
    const { limits, registry, hooks } = this.#o;
    const now = Date.now();
    for (const job of hooks.queue()) {
      if (this.running.size >= limits.maxRunning) return;
      if (job.not_before !== undefined && job.not_before > now) continue;
      if (this.running.count(job.member) >= limits.maxRunningPerMember) continue;
      const type = findEndpoint("POST", job.endpoint)?.serviceType ?? "llm";
      const link = pickForJob(
        registry,
        this.running.slots,
        job.member,
        job.model,
        type,
        this.#o.anywhere,
      );
      if (link === "busy") this.#waiting.delete(job.id);
      else if (link) this.#start(job, link, serviceSlot(link, job.model, type)?.key);
      else {
        const since = this.#waiting.get(job.id) ?? now;
        this.#waiting.set(job.id, since);
        if (now - since >= limits.noProviderTimeoutMs) hooks.expired(job);
      }
    }
  }

  #start(job: JobRecord, link: ProviderState, slot: string | undefined): void {
    const { limits, log, resultsDir, hooks } = this.#o;
    this.#waiting.delete(job.id);
    const body = this.#o.body(job);
    const { usage, keepResult } = this.#o;
    const attempt = startAttempt({
      job,
      body,
      link,
      resultsDir,
      limits,
      log,
      ...(usage ? { usage } : {}),
      ...(keepResult ? { keepResult } : {}),
    });
    this.running.add(job.id, job.member, attempt, slot);
    hooks.started(job, link, attempt);
    attempt.done
      .catch((err: unknown): Outcome => {
        const error = { type: "server_error", message: describeError(err) };
        return { kind: "failed", retry: true, error };
      })
      .then((outcome) => {
        this.running.remove(job.id);
        this.kick();
        hooks.settled(job, outcome);
      })
      .catch((err: unknown) =>
        log.error({ err: describeError(err), job: job.id }, "job settle failed"),
      );
  }
}
