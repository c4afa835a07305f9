/**
 * Bounds on what is kept: finished jobs go after the retention period, and a member at the
 * stored-jobs limit loses their oldest finished ones first. Jobs of a batch or a workflow run
 * go with it (`Batches.prune`, `Workflows.prune`), never alone.
 */
import type { JobSystem } from "./jobs.ts";
import { isTerminal, type JobLimits, type JobRecord } from "./types.ts";
import { WorkError } from "./work-error.ts";

const standalone = (j: JobRecord): boolean =>
  isTerminal(j.status) && j.batch_id === undefined && j.run_id === undefined;

/** Deletes standalone jobs finished longer than `retainMs` ago. */
export async function pruneJobs(jobs: JobSystem, now: number, limits: JobLimits): Promise<void> {
  const old = [...jobs.all()].filter(
    (j) => standalone(j) && now - (j.finished ?? now) >= limits.retainMs,
  );
  for (const job of old) await jobs.forget(job);
}

/** Makes room for `count` more jobs of `member`, or throws a 429 when only unfinished ones are left. */
export async function makeRoom(
  jobs: JobSystem,
  member: string,
  count: number,
  limits: JobLimits,
): Promise<void> {
  const mine = [...jobs.all()].filter((j) => j.member === member);
  const excess = mine.length + count - limits.maxStoredPerMember;
  if (excess <= 0) return;
  const oldest = mine
    .filter(standalone)
    .sort((a, b) => a.seq - b.seq)
    .slice(0, excess);
  if (oldest.length < excess)
    throw new WorkError(
      429,
      "rate_limit_error",
      `you have ${mine.length} stored jobs; the limit is ${limits.maxStoredPerMember}: wait for batches and runs to finish`,
    );
  for (const job of oldest) await jobs.forget(job);
}
