/**
 * The ComfyUI fake's execution queue, in ComfyUI's shapes (server.py, comms messages): prompts
 * run one at a time; their client hears `execution_start`, `executing`, `progress` (one step
 * per gate of the fake), then `executing {node: null}` and `execution_success`, or
 * `execution_error` / `execution_interrupted`; `/history` gets the entry a moment after the
 * socket says done (as in ComfyUI, where the two race). `/queue` deletes pending prompts and
 * `/interrupt` stops the running one.
 */
import { randomUUID } from "node:crypto";
import type { RecordedRequest } from "./fake-server.ts";

/** A node of the graph a prompt carries. */
export type FakeNode = {
  class_type: string;
  inputs: Record<string, unknown>;
  _meta?: { title?: string };
};

export interface Job {
  id: string;
  number: number;
  clientId: string;
  graph: Record<string, FakeNode>;
  request: RecordedRequest;
  state: "pending" | "running" | "done" | "failed" | "cancelled";
}

/** What the queue needs from the fake around it. */
export interface QueueHost {
  send(clientId: string, type: string, data: Record<string, unknown>): void;
  beforeToken(): Promise<void>;
  /** A job started running (1) or stopped (-1). */
  running(delta: number): void;
  /** A job was deleted or interrupted: the client went away. */
  cancelled(job: Job): void;
  /** The output files of a finished job, as `/history` lists them. */
  outputs(job: Job): Record<string, unknown>;
  /** When set, the next job fails at its sampler with this message. */
  takeFailure(): string | undefined;
}

export const STEPS = 4;

/** Read through a function: a job's state changes while its run awaits. */
const running = (job: Job): boolean => job.state === "running";

export class JobQueue {
  readonly jobs: Job[] = [];
  readonly history = new Map<string, Record<string, unknown>>();
  #number = 0;
  #running = false;

  constructor(private readonly host: QueueHost) {}

  add(graph: Record<string, FakeNode>, clientId: string, request: RecordedRequest): Job {
    const job: Job = {
      id: randomUUID(),
      number: this.#number++,
      clientId,
      graph,
      request,
      state: "pending",
    };
    this.jobs.push(job);
    void this.#drain();
    return job;
  }

  /** `GET /queue`: ComfyUI lists entries as `[number, prompt_id, prompt, extra, outputs]`. */
  queue(): { queue_running: unknown[]; queue_pending: unknown[] } {
    const entry = (j: Job): unknown[] => [j.number, j.id, j.graph, { client_id: j.clientId }, []];
    return {
      queue_running: this.jobs.filter((j) => j.state === "running").map(entry),
      queue_pending: this.jobs.filter((j) => j.state === "pending").map(entry),
    };
  }

  delete(ids: unknown[]): void {
    for (const job of this.jobs.filter((j) => j.state === "pending" && ids.includes(j.id))) {
      job.state = "cancelled";
      this.host.cancelled(job);
    }
  }

  interrupt(promptId: unknown): void {
    const job = this.jobs.find((j) => j.state === "running");
    if (!job || (promptId !== undefined && promptId !== job.id)) return;
    job.state = "cancelled";
    this.host.running(-1);
    this.host.send(job.clientId, "execution_interrupted", { prompt_id: job.id, node_id: "3" });
    this.host.cancelled(job);
  }

  /** A restart: every unfinished prompt is gone, with no history and no message. */
  forget(): void {
    for (const job of this.jobs) {
      if (job.state === "running") this.host.running(-1);
      if (job.state === "running" || job.state === "pending") job.state = "cancelled";
    }
  }

  async #drain(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      for (let job = this.#next(); job; job = this.#next()) await this.#run(job);
    } finally {
      this.#running = false;
    }
  }

  #next(): Job | undefined {
    return this.jobs.find((j) => j.state === "pending");
  }

  async #run(job: Job): Promise<void> {
    const say = (type: string, data: Record<string, unknown>): void =>
      this.host.send(job.clientId, type, { ...data, prompt_id: job.id });
    job.state = "running";
    this.host.running(1);
    say("execution_start", { timestamp: Date.now() });
    const sampler =
      Object.keys(job.graph).find((id) =>
        /^(KSampler|SamplerCustom\w*)$/.test(job.graph[id]?.class_type ?? ""),
      ) ?? "3";
    say("executing", { node: sampler, display_node: sampler });
    const failure = this.host.takeFailure();
    for (let step = 1; step <= STEPS; step++) {
      await this.host.beforeToken();
      if (!running(job)) return; // interrupted while it waited at the gate
      say("progress", { value: step, max: STEPS, node: sampler });
      if (failure && step === 2) {
        job.state = "failed";
        this.host.running(-1);
        const error = { node_id: sampler, node_type: "KSampler", exception_message: failure };
        say("execution_error", error);
        this.history.set(
          job.id,
          this.#entry(job, {}, "error", [["execution_error", { ...error, prompt_id: job.id }]]),
        );
        return;
      }
    }
    const outputs = this.host.outputs(job);
    job.state = "done";
    this.host.running(-1);
    say("executing", { node: null });
    say("execution_success", { timestamp: Date.now() });
    setImmediate(() => this.history.set(job.id, this.#entry(job, outputs, "success", [])));
  }

  #entry(
    job: Job,
    outputs: Record<string, unknown>,
    status: string,
    messages: unknown[],
  ): Record<string, unknown> {
    return {
      prompt: [job.number, job.id, job.graph, { client_id: job.clientId }, []],
      outputs,
      status: { status_str: status, completed: status === "success", messages },
      meta: {},
    };
  }
}
