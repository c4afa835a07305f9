/**
 * Batches: up to 256 requests submitted together, checked up front (all or none), one job each.
 * A batch's status and counts are derived from its jobs; cancelling it cancels those not done.
 */
import type { Logger } from "../../log.ts";
import { describeError } from "../../errors.ts";
import { newId, nextSeq } from "./ids.ts";
import { MemberRecords } from "./records.ts";
import type { JobSystem } from "./jobs.ts";
import { jobRequest, type JobRequest } from "./request.ts";
import { makeRoom } from "./retention.ts";
import type { JobStore } from "./store.ts";
import {
  JOB_STATUSES,
  MAX_BATCH,
  isTerminal,
  type BatchRecord,
  type JobLimits,
  type JobRecord,
  type JobStatus,
} from "./types.ts";
import { seconds } from "./view.ts";
import { HttpError } from "../../http/error.ts";

/** The items of a batch submission, or a 400 naming every bad one. */
export function batchRequests(
  body: Record<string, unknown>,
  maxBodyBytes: number,
): { requests: JobRequest[]; customIds: (string | null)[] } {
  const items = body.requests;
  if (!Array.isArray(items) || items.length === 0 || items.length > MAX_BATCH)
    throw new HttpError(
      400,
      "invalid_request_error",
      `"requests" must be a list of 1 to ${MAX_BATCH} {"endpoint", "body"} objects`,
    );
  const problems: string[] = [];
  const requests: JobRequest[] = [];
  const customIds: (string | null)[] = [];
  items.forEach((item: unknown, i) => {
    const {
      endpoint,
      body: itemBody,
      custom_id: customId,
    } = (item ?? {}) as Record<string, unknown>;
    const checked = jobRequest(endpoint, itemBody, maxBodyBytes);
    if (typeof checked === "string") problems.push(`requests[${i}]: ${checked}`);
    else requests.push(checked);
    if (customId !== undefined && (typeof customId !== "string" || customId.length > 128))
      problems.push(`requests[${i}]: "custom_id" must be a string of at most 128 characters`);
    customIds.push(typeof customId === "string" ? customId : null);
  });
  if (problems.length > 0) {
    const shown = problems.slice(0, 20).join("; ");
    const more = problems.length > 20 ? ` (and ${problems.length - 20} more)` : "";
    throw new HttpError(
      400,
      "invalid_request_error",
      `the batch was refused, nothing was queued: ${shown}${more}`,
    );
  }
  return { requests, customIds };
}

/**
 * The batches of the relay's members, kept in the store beside their jobs.
 * @example
 * const { batch } = await batches.submit("alice", { requests: [{ endpoint: "/v1/chat/completions", body }] });
 */
export class Batches {
  readonly #batches = new MemberRecords<BatchRecord>();

  constructor(
    private readonly jobs: JobSystem,
    private readonly store: JobStore,
    private readonly limits: JobLimits,
    private readonly log: Logger,
  ) {}

  load(batches: BatchRecord[]): void {
    this.#batches.load(batches);
  }

  /** Lets go of batches another instance of the club has taken over. */
  release(ids: ReadonlySet<string>): void {
    this.#batches.release(ids);
  }

  /** Every batch's id (what an instance checks it still owns). */
  ids(): string[] {
    return [...this.#batches.values()].map((b) => b.id);
  }

  /** Queues a batch; a repeated idempotency key gets the existing batch (`replayed`). */
  async submit(
    member: string,
    body: Record<string, unknown>,
    key?: string,
  ): Promise<{ batch: BatchRecord; replayed: boolean }> {
    const { requests, customIds } = batchRequests(body, this.limits.maxBodyBytes);
    const bytes = requests.reduce((sum, r) => sum + r.body.length, 0);
    await makeRoom(this.jobs, member, requests.length, this.limits, bytes);
    // From here on nothing awaits until the batch is known, so a repeated key cannot slip in.
    const existing = this.#batches.byKey(member, key);
    if (existing) return { batch: existing, replayed: true };
    this.jobs.checkRoom(member, requests.length);
    const id = newId("batch");
    const { jobs, saved } = this.jobs.enqueue(member, requests, { batchId: id });
    const batch: BatchRecord = {
      kind: "batch",
      id,
      seq: nextSeq(),
      member,
      created: Date.now(),
      jobs: jobs.map((j) => j.id),
      custom_ids: customIds,
      ...(key === undefined ? {} : { idempotency_key: key }),
    };
    this.#batches.add(batch);
    try {
      await Promise.all([saved, this.store.save(batch)]);
    } catch (err) {
      // Not stored, so not acknowledged: the batch goes (its jobs go in `enqueue`).
      this.#batches.remove(batch);
      await this.jobs.withdraw(jobs);
      await this.store.remove(id).catch(() => undefined);
      throw err;
    }
    this.log.info(
      { batch: id, member, jobs: jobs.length },
      "batch %s queued %d job(s)",
      id,
      jobs.length,
    );
    return { batch, replayed: false };
  }

  get(member: string, id: string): BatchRecord | undefined {
    return this.#batches.get(member, id);
  }

  /** The member's batches, newest first. */
  list(member: string): BatchRecord[] {
    return this.#batches.list(member);
  }

  /** Cancels every job of the batch that has not finished; resolves to how many. */
  async cancel(batch: BatchRecord): Promise<number> {
    let canceled = 0;
    const jobs = this.#jobsOf(batch);
    for (const job of jobs) if (this.jobs.cancel(job)) canceled++;
    batch.canceled = Date.now();
    await Promise.all([this.store.save(batch), ...jobs.map((j) => this.jobs.saved(j))]);
    return canceled;
  }

  /** The public shape: status, counts by job state, and (`detail`) each job's id and state. */
  view(
    batch: BatchRecord,
    detail: boolean,
    elsewhere?: ReadonlyMap<string, JobRecord>,
  ): Record<string, unknown> {
    const jobs = this.#jobsOf(batch, elsewhere);
    const counts = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    let finished = 0;
    for (const job of jobs) {
      counts[job.status]++;
      finished = Math.max(finished, job.finished ?? 0);
    }
    const active = counts.QUEUED + counts.PROCESSING;
    const status =
      active > 0
        ? "RUNNING"
        : counts.PROCESSED === jobs.length
          ? "DONE"
          : counts.PROCESSED > 0
            ? "PARTIAL"
            : batch.canceled === undefined
              ? "FAILED"
              : "CANCELED";
    return {
      id: batch.id,
      object: "inference.batch",
      status,
      created: seconds(batch.created),
      finished_at: active > 0 ? null : seconds(finished || batch.created),
      canceled_at: seconds(batch.canceled),
      total: batch.jobs.length,
      counts,
      ...(detail
        ? {
            jobs: jobs.map((j) => ({
              id: j.id,
              custom_id: batch.custom_ids[batch.jobs.indexOf(j.id)] ?? null,
              status: j.status,
              endpoint: j.endpoint,
              model: j.model,
            })),
          }
        : {}),
    };
  }

  /** Deletes batches (and their jobs) finished longer than the retention ago. */
  async prune(now: number): Promise<void> {
    for (const batch of this.#batches.values()) {
      const jobs = this.#jobsOf(batch);
      if (jobs.some((j) => !isTerminal(j.status))) continue;
      const finished = Math.max(batch.created, ...jobs.map((j) => j.finished ?? 0));
      if (now - finished < this.limits.retainMs) continue;
      this.#batches.remove(batch);
      await Promise.all(jobs.map((j) => this.jobs.forget(j)))
        .then(() => this.store.remove(batch.id))
        .catch((err: unknown) =>
          this.log.error({ err: describeError(err) }, "pruning a batch failed"),
        );
    }
  }

  /** The batch's jobs: here, or (a batch another instance keeps) in `elsewhere`. */
  #jobsOf(batch: BatchRecord, elsewhere?: ReadonlyMap<string, JobRecord>): JobRecord[] {
    return batch.jobs
      .map((id) => this.jobs.get(batch.member, id) ?? elsewhere?.get(id))
      .filter((j): j is JobRecord => j !== undefined);
  }
}
