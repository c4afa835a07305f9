/**
 * Which request bodies the store keeps once a job ends. A PROCESSED job's body goes at once; a
 * FAILED or CANCELED job keeps it so `retry` works, as long as the member's kept bodies stay
 * under `maxRetainedBodyBytesPerMember`: beyond it the bodies of the jobs that ended first go.
 * (CANCELED keeps its body like FAILED because the API lets a canceled job be retried.)
 */
import type { JobLimits, JobRecord } from "./types.ts";

const keepsBody = (j: JobRecord): boolean =>
  (j.status === "FAILED" || j.status === "CANCELED") && j.body_dropped !== true;

/**
 * The jobs whose bodies should be dropped now that `job` ended: `job` itself when it was
 * PROCESSED, else the oldest-ended of the member's kept bodies that pass the quota.
 * @example
 * for (const j of retainBodies(job, jobs.ofMember(job.member), limits)) store.dropBody(j.id);
 */
export function retainBodies(
  job: JobRecord,
  mine: Iterable<JobRecord>,
  limits: Pick<JobLimits, "maxRetainedBodyBytesPerMember">,
): JobRecord[] {
  if (job.body_dropped) return [];
  if (job.status === "PROCESSED") return [job];
  if (!keepsBody(job)) return [];
  const kept = [...mine].filter(keepsBody);
  let bytes = kept.reduce((sum, j) => sum + j.body_bytes, 0);
  const max = limits.maxRetainedBodyBytesPerMember;
  if (bytes <= max) return [];
  const dropped: JobRecord[] = [];
  for (const j of kept.sort((a, b) => (a.finished ?? 0) - (b.finished ?? 0) || a.seq - b.seq)) {
    if (bytes <= max) break;
    dropped.push(j);
    bytes -= j.body_bytes;
  }
  return dropped;
}
