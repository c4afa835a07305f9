/**
 * Bounds on what is kept: finished jobs go after the retention period, and a member at the
 * stored-jobs limit loses their oldest finished ones first. Jobs of a batch or a workflow run
 * go with it (`Batches.prune`, `Workflows.prune`), never alone.
 */
import type { JobSystem } from "./jobs.ts";
import { isTerminal, type JobLimits, type JobRecord } from "./types.ts";
import { HttpError } from "../../http/error.ts";

const standalone = (j: JobRecord): boolean =>
  isTerminal(j.status) && j.batch_id === undefined && j.run_id === undefined;

/** Deletes standalone jobs finished longer than `retainMs` ago. */
export async function pruneJobs(jobs: JobSystem, now: number, limits: JobLimits): Promise<void> {
  const old = [...jobs.all()].filter(
    (j) => standalone(j) && now - (j.finished ?? now) >= limits.retainMs,
  );
  for (const job of old) await jobs.forget(job);
}

/** Bytes a job holds in the store: its body until dropped, plus its result. */
export function storedBytes(j: JobRecord): number {
  return (j.body_dropped ? 0 : j.body_bytes) + (j.result?.bytes ?? 0);
}

/**
 * The oldest finished standalone jobs of `member` to drop so that `count` more jobs carrying
 * `bytes` of request bodies fit; throws a 429 naming the limit when only jobs of batches, runs
 * or unfinished ones are left.
 */
export function roomFor(
  jobs: JobSystem,
  member: string,
  count: number,
  limits: JobLimits,
  bytes = 0,
): JobRecord[] {
  const mine = [...jobs.ofMember(member)];
  const held = mine.reduce((sum, j) => sum + storedBytes(j), 0);
  // Jobs other instances of a club store count too; only this instance's can make room.
  const theirs = jobs.storedElsewhere(member);
  let extraJobs = theirs + mine.length + count - limits.maxStoredPerMember;
  let extraBytes = held + bytes - limits.maxStoredBytesPerMember;
  if (extraJobs <= 0 && extraBytes <= 0) return [];
  const oldest: JobRecord[] = [];
  for (const job of mine) {
    if (extraJobs <= 0 && extraBytes <= 0) break;
    if (!standalone(job)) continue;
    oldest.push(job);
    extraJobs--;
    extraBytes -= storedBytes(job);
  }
  if (extraJobs > 0)
    throw new HttpError(
      429,
      "rate_limit_error",
      `you have ${mine.length + theirs} stored jobs; the limit is ${limits.maxStoredPerMember} (maxStoredPerMember): wait for batches and runs to finish`,
    );
  if (extraBytes > 0)
    throw new HttpError(
      429,
      "rate_limit_error",
      `your stored jobs hold ${held} bytes and these ${bytes} more would pass the limit of ${limits.maxStoredBytesPerMember} bytes (maxStoredBytesPerMember): wait for batches and runs to finish, or send smaller requests`,
    );
  return oldest;
}

/** Drops what `roomFor` names, so that `count` more jobs of `member` fit. */
export async function makeRoom(
  jobs: JobSystem,
  member: string,
  count: number,
  limits: JobLimits,
  bytes = 0,
): Promise<void> {
  for (const job of roomFor(jobs, member, count, limits, bytes)) await jobs.forget(job);
}
