/**
 * One managed engine's life: stopped → starting → ready → stopping → stopped, or failed. A
 * request acquires it (starting it once for any number of concurrent cold requests) and holds
 * a lease while it runs; an engine with leases is never stopped for another. A crash is noticed
 * when the process ends; the next request starts it again, after a backoff that grows while it
 * keeps failing; after `maxFailures` failures in a row its models are withdrawn.
 */
import { EventEmitter } from "node:events";
import { createServer } from "node:net";
import type { Adapter, DiscoveredModel, Upstream } from "../../adapters/adapter.ts";
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { SERVICE_TYPE_MODALITIES } from "../protocol/manifest.ts";
import { EngineUnavailable } from "./errors.ts";
import { LogRing } from "./log-ring.ts";
import { EngineProcess, describeExit, type ExitInfo } from "./process.ts";
import { fillPlaceholders, type EngineSettings, type EngineSpec } from "./schema.ts";
import { sleep, waitFor } from "./wait.ts";

import type { EngineState } from "../protocol/manifest.ts";
export { ENGINE_STATES, type EngineState } from "../protocol/manifest.ts";

/** Why an engine was stopped, as metrics count it. */
export type StopReason = "idle" | "evicted" | "owner" | "shutdown";

export interface SupervisorOptions {
  spec: EngineSpec;
  adapter: Adapter;
  settings: EngineSettings;
  log: Logger;
  /** Frees VRAM for this engine (stopping idle ones) or throws {@link EngineUnavailable}. */
  makeRoom?: (engine: Supervisor) => Promise<void>;
  /** The environment engines start from; `CLUB_*` variables are never passed on. */
  baseEnv?: NodeJS.ProcessEnv;
}

/** A lease on a ready engine: call once the request is over. */
export type EngineLease = () => void;

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** Delay before the next start after `n` failures that count: base, 2 × base, … at most 60 s. */
export function retryDelay(n: number, baseMs: number): number {
  return n <= 0 ? 0 : Math.min(60_000, baseMs * 2 ** (n - 1));
}

function toModel(m: EngineSpec["models"][number]): DiscoveredModel {
  const modalities = SERVICE_TYPE_MODALITIES[m.type];
  return {
    id: m.id,
    servedId: m.servedId,
    type: m.type,
    inputModalities: modalities.input,
    outputModalities: modalities.output,
    features: m.features,
    contextLength: m.contextLength,
  };
}

/**
 * Events: `change` (state, reason or VRAM changed), `ready` (cold start ms), `idle` (its last
 * request ended while ready), `drained` (its last request ended, in any state), `stopped`
 * (StopReason), `crash` (ExitInfo).
 */
export class Supervisor extends EventEmitter {
  readonly spec: EngineSpec;
  readonly adapter: Adapter;
  readonly logs: LogRing;
  /** Where the engine listens; its URL changes when a start picks a new port. */
  readonly upstream: Upstream = { url: "http://127.0.0.1:0" };
  /** The models it serves; refined by the adapter's own description once it runs. */
  models: DiscoveredModel[];
  state: EngineState = "stopped";
  reason: string | undefined;
  inFlight = 0;
  lastUsedAt: number | null = null;
  starts = 0;
  failures = 0;
  /** Failures since the last request that went through. */
  streak = 0;
  /** Counted by {@link StopReason}. */
  readonly stops: Record<StopReason, number> = { idle: 0, evicted: 0, owner: 0, shutdown: 0 };
  /** Seconds of the last cold starts (at most 1000), first request (or `engines start`) to healthy. */
  readonly coldStarts: number[] = [];
  /** Every cold start since the daemon started, and their seconds together (metrics). */
  coldStartCount = 0;
  coldStartSeconds = 0;
  /** VRAM on each of its GPUs: declared, else measured on a run, else unknown. */
  vramMiB: number | undefined;
  /** Where {@link vramMiB} comes from: the owner's setting, or a measurement of a run. */
  vramSource: "declared" | "measured" | undefined;
  /** Slots the engine reports (llama.cpp); null when it does not say. */
  reportedConcurrency: number | null = null;
  /** It passed the VRAM check and counts against its GPUs until it stops. */
  admitted = false;
  /** Replaced or removed by a reload: it finishes its requests and takes no new one. */
  retired = false;
  readonly #opts: SupervisorOptions;
  #proc: EngineProcess | null = null;
  #starting: Promise<void> | null = null;
  #startAbort: AbortController | null = null;
  #stopping: Promise<void> | null = null;
  #idleTimer: NodeJS.Timeout | null = null;
  #retryAt = 0;

  constructor(options: SupervisorOptions) {
    super();
    this.#opts = options;
    this.spec = options.spec;
    this.adapter = options.adapter;
    this.logs = new LogRing(options.settings.logLines);
    this.models = options.spec.models.map(toModel);
    this.vramMiB = options.spec.vramMiB;
    this.vramSource = options.spec.vramMiB === undefined ? undefined : "declared";
  }

  get name(): string {
    return this.spec.name;
  }

  /** Failed too often in a row: its models are withdrawn until the owner starts it. */
  get withdrawn(): boolean {
    return this.state === "failed" && this.streak >= this.#opts.settings.maxFailures;
  }

  /** The pid of the engine's process group, while it runs. */
  get pid(): number | null {
    return this.#proc?.running ? this.#proc.pid : null;
  }

  #set(state: EngineState, reason?: string): void {
    this.state = state;
    this.reason = reason;
    this.emit("change");
  }

  /**
   * Waits until the engine is ready (starting it if needed) within `waitMs`, and leases it.
   * Rejects with {@link EngineUnavailable} (503) when it cannot serve in time, or with the
   * signal's reason when the caller left.
   */
  async acquire(signal: AbortSignal, waitMs: number): Promise<EngineLease> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      signal.throwIfAborted();
      if (this.retired)
        throw new EngineUnavailable("engine_retired", `${this.name} was reloaded: retry`, 1);
      if (this.state === "ready") return this.#lease();
      if (this.withdrawn)
        throw new EngineUnavailable(
          "engine_withdrawn",
          `${this.name} failed ${this.streak} times in a row and is withdrawn (${this.reason ?? "no reason"}); ` +
            `its owner can retry with \`club-provider engines start ${this.name}\``,
          60,
        );
      const left = deadline - Date.now();
      if (left <= 0)
        throw new EngineUnavailable(
          "engine_starting",
          `${this.name} is still ${this.state === "stopping" ? "stopping" : "starting"} after ${Math.round(waitMs / 1000)} s: retry shortly`,
          Math.min(30, Math.max(1, this.spec.startMs / 10000)),
        );
      const step = this.#stopping ?? this.#ensureStarted();
      try {
        await waitFor(step, left, signal);
      } catch (err) {
        // A start cut short by a stop is no answer: look again (retired, stopped, failed).
        if (err instanceof EngineUnavailable || signal.aborted) throw err;
      }
    }
  }

  #lease(): EngineLease {
    this.inFlight++;
    this.lastUsedAt = Date.now();
    this.#clearIdle();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.inFlight--;
      this.lastUsedAt = Date.now();
      if (this.state === "ready") {
        this.streak = 0;
        if (this.inFlight === 0) {
          this.#armIdle();
          this.emit("idle");
        }
      }
      if (this.inFlight === 0) this.emit("drained");
    };
  }

  /**
   * Whether the engine's process has ended, waiting up to `ms` for its exit to be seen: a
   * crashed engine refuses connections a moment before that. False while it still runs.
   */
  async exitSeen(ms: number, signal: AbortSignal): Promise<boolean> {
    const proc = this.#proc;
    if (!proc?.running) return true;
    await waitFor(
      proc.exited.then(() => undefined),
      ms,
      signal,
    ).catch(() => {});
    return !proc.running;
  }

  /** Marks it replaced or removed by a reload: no new request, no new start. */
  retire(): void {
    this.retired = true;
    this.#clearIdle();
  }

  /** Starts the engine unless it is starting or ready; resolves once it is ready. */
  start(): Promise<void> {
    if (this.state === "ready") return Promise.resolve();
    if (this.retired)
      return Promise.reject(
        new EngineUnavailable("engine_retired", `${this.name} was reloaded`, 1),
      );
    // The owner's start clears a withdrawal: it is a fresh try.
    if (this.withdrawn) this.streak = 0;
    return this.#ensureStarted();
  }

  #ensureStarted(): Promise<void> {
    this.#starting ??= this.#start().finally(() => (this.#starting = null));
    return this.#starting;
  }

  async #start(): Promise<void> {
    if (this.#stopping) await this.#stopping;
    const abort = new AbortController();
    this.#startAbort = abort;
    const before = this.state === "failed" ? "failed" : "stopped";
    const t0 = performance.now();
    try {
      const wait = this.#retryAt - Date.now();
      this.#set(
        "starting",
        wait > 0 ? `retrying in ${Math.ceil(wait / 1000)} s after: ${this.reason}` : undefined,
      );
      if (wait > 0) await sleep(wait, abort.signal);
      await this.#opts.makeRoom?.(this);
      await this.#launch(abort.signal);
    } catch (err) {
      await this.#proc?.kill();
      this.#proc = null;
      this.admitted = false;
      if (abort.signal.aborted) {
        this.#set("stopped", describeError(abort.signal.reason));
        throw err;
      }
      // No room on the GPU is not the engine's fault: it stays as it was.
      if (err instanceof EngineUnavailable) {
        this.#set(before, this.reason);
        throw err;
      }
      const message = describeError(err);
      this.failures++;
      this.streak++;
      const retry = retryDelay(this.streak, this.#opts.settings.retryBaseMs);
      this.#retryAt = Date.now() + retry;
      this.#set("failed", message);
      this.#opts.log.warn({ engine: this.name, reason: message }, "engine failed to start");
      throw new EngineUnavailable(
        "engine_failed",
        `${this.name} failed to start: ${message}`,
        retry / 1000,
        {
          cause: err,
        },
      );
    } finally {
      this.#startAbort = null;
    }
    const seconds = (performance.now() - t0) / 1000;
    this.coldStarts.push(seconds);
    this.coldStartCount++;
    this.coldStartSeconds += seconds;
    if (this.coldStarts.length > 1000) this.coldStarts.shift();
    await this.#describe();
    this.#set("ready");
    this.#opts.log.info({ engine: this.name, seconds: +seconds.toFixed(3) }, "engine ready");
    this.emit("ready", seconds);
    if (this.inFlight === 0) this.#armIdle();
  }

  async #launch(signal: AbortSignal): Promise<void> {
    const port = this.spec.port ?? (await freePort());
    this.upstream.url = `http://127.0.0.1:${port}`;
    const gpus = this.spec.gpus;
    const env: NodeJS.ProcessEnv = {};
    // The rig's club key and settings are not the engine's business.
    for (const [k, v] of Object.entries(this.#opts.baseEnv ?? process.env))
      if (!k.startsWith("CLUB_")) env[k] = v;
    for (const [k, v] of Object.entries(this.spec.env)) env[k] = fillPlaceholders(v, port, gpus);
    const command = this.spec.command.map((a) => fillPlaceholders(a, port, gpus));
    this.logs.push(`$ ${command.join(" ")}`);
    const proc = new EngineProcess({
      command,
      env,
      ...(this.spec.cwd ? { cwd: this.spec.cwd } : {}),
      onLine: (line) => this.logs.push(line),
    });
    this.#proc = proc;
    this.starts++;
    void proc.exited.then((exit) => this.#exited(proc, exit));
    const deadline = Date.now() + this.spec.startMs;
    for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
      signal.throwIfAborted();
      if (!proc.running)
        throw new Error(
          `it ended during start (${describeExit(await proc.exited)}): ${this.logs.tail(3)}`,
        );
      const health = await this.#health(signal);
      if (health === true) return;
      if (Date.now() > deadline)
        throw new Error(
          `not healthy after ${Math.round(this.spec.startMs / 1000)} s (startSeconds): ${health}`,
        );
      await Promise.race([sleep(delay, signal), proc.exited]);
    }
  }

  /** True once the engine serves; otherwise what the last check saw. */
  async #health(signal: AbortSignal): Promise<true | string> {
    const probe = AbortSignal.any([signal, AbortSignal.timeout(2000)]);
    try {
      if (this.spec.health) {
        const res = await fetch(this.upstream.url + this.spec.health, { signal: probe });
        await res.body?.cancel();
        return res.ok || `${this.spec.health} answered ${res.status}`;
      }
      const result = await this.adapter.probe(this.upstream, probe);
      return result.status === "ready" || result.reason;
    } catch (err) {
      return describeError(err);
    }
  }

  /** Takes the adapter's own ids and facts where they match a declared model. */
  async #describe(): Promise<void> {
    try {
      const info = await this.adapter.describe(this.upstream, AbortSignal.timeout(5000));
      this.reportedConcurrency = info.maxConcurrent;
      this.models = this.spec.models.map((m) => {
        const found = info.models.find((d) => d.servedId === m.servedId || d.id === m.id);
        return found
          ? {
              ...found,
              id: m.id,
              type: m.type,
              features: m.features,
              contextLength: m.contextLength ?? found.contextLength,
            }
          : toModel(m);
      });
    } catch (err) {
      this.logs.push(`(club-provider: describe failed: ${describeError(err)})`);
    }
  }

  #exited(proc: EngineProcess, exit: ExitInfo): void {
    if (proc !== this.#proc) return;
    this.#proc = null;
    this.admitted = false;
    this.#clearIdle();
    // A stop or a failing start handles its own end; only a ready engine crashes.
    if (this.state !== "ready") return;
    const message = `crashed (${describeExit(exit)}): ${this.logs.tail(3)}`;
    this.failures++;
    this.streak++;
    // The first crash restarts on the next request at once; a crash loop backs off.
    this.#retryAt = Date.now() + retryDelay(this.streak - 1, this.#opts.settings.retryBaseMs);
    this.#set("failed", message);
    this.#opts.log.warn(
      { engine: this.name, reason: message, inFlight: this.inFlight },
      "engine crashed",
    );
    this.emit("crash", exit);
  }

  #armIdle(): void {
    this.#clearIdle();
    if (this.spec.idleMs <= 0) return;
    this.#idleTimer = setTimeout(() => {
      if (this.state === "ready" && this.inFlight === 0) void this.stop("idle");
    }, this.spec.idleMs);
    this.#idleTimer.unref();
  }

  #clearIdle(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
  }

  /** Idle: ready with no request in flight, so it may be stopped for another engine. */
  get idle(): boolean {
    return this.state === "ready" && this.inFlight === 0;
  }

  /** Stops the engine gracefully (SIGTERM, `stopSeconds`, SIGKILL of the group). */
  stop(reason: StopReason): Promise<void> {
    this.#stopping ??= this.#stop(reason).finally(() => (this.#stopping = null));
    return this.#stopping;
  }

  async #stop(reason: StopReason): Promise<void> {
    this.#clearIdle();
    this.#startAbort?.abort(new Error(`stopped (${reason}) while starting`));
    if (this.#starting) await this.#starting.catch(() => {});
    const proc = this.#proc;
    if (!proc) {
      if (this.state === "failed" && reason === "owner") this.#set("stopped");
      return;
    }
    this.#set("stopping", reason);
    this.#proc = null;
    const exit = await proc.stop(this.#opts.settings.stopMs);
    this.admitted = false;
    this.stops[reason]++;
    this.logs.push(`(club-provider: stopped, ${reason}: ${describeExit(exit)})`);
    this.#set("stopped", reason === "idle" ? `idle for ${this.spec.idleMs / 1000} s` : reason);
    this.#opts.log.info({ engine: this.name, reason }, "engine stopped");
    this.emit("stopped", reason);
  }
}
