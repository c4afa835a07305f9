/**
 * The requests in flight on this rig and how far their engines say they got, for the daemon's
 * `/status`. Long jobs (images, video, music, meshes) report through `EngineCall.progress`;
 * others are listed with `progress: null`.
 */

/** One request in flight, as `/status` shows it. */
export interface JobStatus {
  request_id: string;
  model: string;
  endpoint: string;
  service: string;
  /** Unix seconds when the gateway took the request. */
  started: number;
  /** In [0, 1], or null while the engine has not said. */
  progress: number | null;
  /** What the engine is doing, in a few words (`queued`, `KSampler 12/30`). */
  detail: string | null;
}

/** What the gateway holds for one request: report progress, then end it once. */
export interface JobHandle {
  readonly report: (fraction: number | null, detail?: string) => void;
  readonly end: () => void;
}

/**
 * The registry. `begin` lists a request until its handle's `end`.
 * @example
 * const job = registry.begin({ request_id: "req_1", model: "sdxl", endpoint, service });
 * job.report(0.5, "KSampler 15/30");
 * job.end();
 */
export class ProgressRegistry {
  readonly #jobs = new Map<number, JobStatus>();
  #next = 0;

  begin(info: Pick<JobStatus, "request_id" | "model" | "endpoint" | "service">): JobHandle {
    const key = this.#next++;
    const job: JobStatus = {
      ...info,
      started: Math.floor(Date.now() / 1000),
      progress: null,
      detail: null,
    };
    this.#jobs.set(key, job);
    return {
      report: (fraction, detail) => {
        job.progress = fraction === null ? null : Math.min(1, Math.max(0, fraction));
        if (detail !== undefined) job.detail = detail;
      },
      end: () => this.#jobs.delete(key),
    };
  }

  /** The requests in flight, oldest first. */
  list(): JobStatus[] {
    return [...this.#jobs.values()].map((job) => ({ ...job }));
  }
}
