/**
 * The ComfyUI fake's execution queue, in the shapes ComfyUI 0.3.64 sends (recorded in
 * shared/reference/comfyui-captures): prompts run one at a time, nodes in graph order; the
 * client hears `status` (queue count), `execution_start`, `execution_cached`, then per node
 * `progress_state`, `executing` and, for output nodes, `executed`; `progress` (one step per gate
 * of the fake) comes only from nodes with a progress bar (samplers, upscalers). A run ends with
 * `execution_success`, `status` and `executing {node: null}`, or `execution_error` /
 * `execution_interrupted` and `status`; `/history` gets the entry just after
 * `execution_success` (the two race in ComfyUI). `/queue` deletes pending prompts; `/interrupt`
 * stops the running one at its next node or progress step, leaving an `error` history entry.
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
  /** `/interrupt` asked for it; the run stops at its next node or progress step. */
  interrupting?: boolean;
}

/** What the queue needs from the fake around it. */
export interface QueueHost {
  send(clientId: string, type: string, data: Record<string, unknown>): void;
  /** A message to every socket (ComfyUI's `status`). */
  broadcast(type: string, data: Record<string, unknown>): void;
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

/** Classes that report `progress` (a progress bar in ComfyUI). */
const PROGRESS_NODES = /^(KSampler|KSamplerAdvanced|SamplerCustom\w*|ImageUpscaleWithModel)$/;
/** Classes that save files: their `executed` carries the `/history` outputs. */
export const OUTPUT_NODES = /^(SaveImage|PreviewImage|SaveVideo|SaveAnimatedWEBP)$/;

/** Read through a function: a job's state changes while its run awaits. */
const running = (job: Job): boolean => job.state === "running";

export class JobQueue {
  readonly jobs: Job[] = [];
  readonly history = new Map<string, Record<string, unknown>>();
  #number = 0;
  #running = false;
  /** Wakes a run waiting at the gate when `/interrupt` comes. */
  #wake: () => void = () => undefined;

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
    this.#status();
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
    this.#status();
  }

  /** Asks the running prompt (`promptId`, or whichever runs) to stop; it does at its next step. */
  interrupt(promptId: unknown): void {
    const job = this.jobs.find((j) => j.state === "running");
    if (!job || (promptId !== undefined && promptId !== job.id)) return;
    job.interrupting = true;
    this.#wake();
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

  #status(): void {
    const remaining = this.jobs.filter((j) => j.state === "pending" || j.state === "running");
    this.host.broadcast("status", { status: { exec_info: { queue_remaining: remaining.length } } });
  }

  /** The gate, cut short by an interrupt (a sampler notices it at its next step). */
  async #step(job: Job): Promise<void> {
    await Promise.race([
      this.host.beforeToken(),
      new Promise<void>((resolve) => (this.#wake = resolve)),
    ]);
    this.#wake = () => undefined;
    if (job.interrupting) throw new Interrupted();
  }

  async #run(job: Job): Promise<void> {
    const say = (type: string, data: Record<string, unknown>): void =>
      this.host.send(job.clientId, type, { ...data, prompt_id: job.id });
    job.state = "running";
    this.host.running(1);
    this.#status();
    say("execution_start", { timestamp: Date.now() });
    say("execution_cached", { nodes: [], timestamp: Date.now() });
    const failure = this.host.takeFailure();
    const executed: string[] = [];
    let outputs: Record<string, unknown> | undefined;
    let current = "";
    const stop = (state: "failed" | "cancelled", type: string, extra: Record<string, unknown>) => {
      job.state = state;
      this.host.running(-1);
      const node = job.graph[current];
      const data = {
        prompt_id: job.id,
        node_id: current,
        node_type: node?.class_type,
        executed: [...executed].reverse(),
        ...extra,
        timestamp: Date.now(),
      };
      say(type, data);
      this.history.set(
        job.id,
        this.#entry(job, {}, "error", [
          ["execution_start", { prompt_id: job.id, timestamp: Date.now() }],
          ["execution_cached", { nodes: [], prompt_id: job.id, timestamp: Date.now() }],
          [type, data],
        ]),
      );
      this.#status();
      if (state === "cancelled") this.host.cancelled(job);
    };
    try {
      for (const [id, node] of Object.entries(job.graph)) {
        current = id;
        if (job.interrupting) throw new Interrupted();
        const state = (s: string) => ({
          nodes: { [id]: { value: 0, max: 1, state: s, node_id: id, prompt_id: job.id } },
        });
        say("progress_state", state("running"));
        say("executing", { node: id, display_node: id });
        if (PROGRESS_NODES.test(node.class_type))
          for (let step = 1; step <= STEPS; step++) {
            await this.#step(job);
            if (!running(job)) return; // forgotten (a restart) while it waited
            say("progress", { value: step, max: STEPS, node: id });
            if (failure && step === 2) {
              stop("failed", "execution_error", {
                exception_message: failure,
                exception_type: "RuntimeError",
                traceback: [],
                current_inputs: {},
                current_outputs: {},
              });
              return;
            }
          }
        if (OUTPUT_NODES.test(node.class_type)) {
          outputs ??= this.host.outputs(job);
          say("executed", { node: id, display_node: id, output: outputs[id] ?? {} });
        }
        say("progress_state", state("finished"));
        executed.push(id);
      }
    } catch (err) {
      if (!(err instanceof Interrupted)) throw err;
      stop("cancelled", "execution_interrupted", {});
      return;
    }
    const files = outputs ?? this.host.outputs(job);
    job.state = "done";
    this.host.running(-1);
    say("execution_success", { timestamp: Date.now() });
    setImmediate(() => {
      const ran = [
        ["execution_start", { prompt_id: job.id, timestamp: Date.now() }],
        ["execution_cached", { nodes: [], prompt_id: job.id, timestamp: Date.now() }],
        ["execution_success", { prompt_id: job.id, timestamp: Date.now() }],
      ];
      this.history.set(job.id, this.#entry(job, files, "success", ran));
      this.#status();
      say("executing", { node: null });
    });
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

/** Thrown inside a run when an interrupt takes effect. */
class Interrupted extends Error {}
