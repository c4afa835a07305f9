/**
 * The daemon's managed engines: one supervisor each, the VRAM budget between them, the services
 * the catalog advertises for them (while stopped, too), and what `/engines` reports.
 */
import { EventEmitter, once } from "node:events";
import type { Adapter } from "../../adapters/adapter.ts";
import { findAdapter } from "../../adapters/index.ts";
import type { Service } from "../discovery/catalog.ts";
import { UserError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { MANIFEST_ENGINES, type ManifestEngine } from "../protocol/manifest.ts";
import { EngineUnavailable } from "./errors.ts";
import type { EngineSettings, EngineSpec } from "./schema.ts";
import { waitFor } from "./wait.ts";
import { Supervisor, type EngineLease, type EngineState } from "./supervisor.ts";
import { VramBudget } from "./vram.ts";
import { viewOf, type EngineView } from "./view.ts";
import { learnVram } from "./vram-learn.ts";
import type { VramMeter } from "./vram-meter.ts";
import type { VramStore } from "./vram-store.ts";

export type { EngineView } from "./view.ts";

export interface EngineManagerOptions {
  specs: readonly EngineSpec[];
  settings: EngineSettings;
  log: Logger;
  /** Detected VRAM of a GPU in MiB (null: unknown). */
  gpuTotal?: (gpu: number) => number | null;
  baseEnv?: NodeJS.ProcessEnv;
  /** Measures the VRAM of engines that declare none (nvidia-smi, rocm-smi); none: not measured. */
  meter?: VramMeter;
  /** Remembered measurements (loaded), read at construction and written on each new figure. */
  vramStore?: VramStore;
  /** Least time between two measurements of one engine (default 30 s). */
  remeasureMs?: number;
}

/** What {@link EngineManager.apply} did: engine names added, removed and changed. */
export interface EngineChanges {
  added: string[];
  removed: string[];
  changed: string[];
}

/** How long a refused request waits for the engine's exit to be seen before it is a 502. */
export const EXIT_WAIT_MS = 5000;

const unknownAdapter = (spec: EngineSpec): UserError =>
  new UserError(
    "engine_adapter_unknown",
    `engine ${spec.name}: unknown adapter ${JSON.stringify(spec.adapter)} (llamacpp, vllm, whispercpp, kokoro, comfyui, openai, …)`,
  );

/** Events: `change` (an engine's state changed, or engines came or went: the manifest may have). */
export class EngineManager extends EventEmitter {
  readonly engines: Supervisor[] = [];
  readonly settings: EngineSettings;
  readonly vram: VramBudget;
  /** Requests sent again to an engine restarted after it refused them while crashing. */
  refusalRetries = 0;
  /** Engines stopped to make room for another, by the evicted engine's name. */
  readonly evictions = new Map<string, number>();
  /** One Service object per engine name, kept: the gateway holds it across starts and reloads. */
  readonly #services = new Map<string, Service>();
  /**
   * Engines removed or changed by a reload, by name: they finish their requests, then stop.
   * Each resolves once its engine is stopped; they still count against their GPUs until then.
   */
  readonly #retiring = new Map<string, { engine: Supervisor; done: Promise<void> }>();
  readonly #opts: EngineManagerOptions;

  constructor(options: EngineManagerOptions) {
    super();
    this.#opts = options;
    this.settings = options.settings;
    this.vram = new VramBudget({
      settings: options.settings,
      total: options.gpuTotal ?? (() => null),
      engines: () => [...this.engines, ...[...this.#retiring.values()].map((r) => r.engine)],
      onEvict: (victim, forEngine) => {
        this.evictions.set(victim.name, (this.evictions.get(victim.name) ?? 0) + 1);
        options.log.info({ engine: victim.name, for: forEngine.name }, "engine evicted");
      },
    });
    const bad = options.specs.find((spec) => !findAdapter(spec.adapter));
    if (bad) throw unknownAdapter(bad);
    for (const spec of options.specs) this.engines.push(this.#supervise(spec));
  }

  #supervise(spec: EngineSpec): Supervisor {
    const options = this.#opts;
    const adapter = findAdapter(spec.adapter) as Adapter;
    const engine = new Supervisor({
      spec,
      adapter,
      settings: this.settings,
      log: options.log.child({ engine: spec.name }),
      makeRoom: (e) => this.vram.makeRoom(e),
      ...(options.baseEnv ? { baseEnv: options.baseEnv } : {}),
    });
    if (options.meter)
      learnVram(engine, {
        meter: options.meter,
        store: options.vramStore,
        log: options.log,
        ...(options.remeasureMs !== undefined ? { everyMs: options.remeasureMs } : {}),
      });
    engine.on("change", () => this.emit("change", engine));
    // A changed engine keeps its predecessor's Service until that one has stopped.
    if (!this.#services.has(spec.name)) this.#services.set(spec.name, this.#service(engine));
    return engine;
  }

  get(name: string): Supervisor | undefined {
    return this.engines.find((e) => e.name === name);
  }

  /**
   * Applies a new `engines` setting (SIGHUP): new engines are added (stopped, advertised), removed
   * ones finish their requests and stop, changed ones (command, models, anything) restart once
   * their requests are done; requests meanwhile wait for the new one. `settings` replace the
   * shared limits in place. Throws before changing anything when an adapter is unknown.
   */
  apply(specs: readonly EngineSpec[], settings?: EngineSettings): EngineChanges {
    const bad = specs.find((spec) => !findAdapter(spec.adapter));
    if (bad) throw unknownAdapter(bad);
    if (settings) Object.assign(this.settings, settings);
    const changes: EngineChanges = { added: [], removed: [], changed: [] };
    const next = new Map(specs.map((s) => [s.name, s]));
    for (const old of [...this.engines]) {
      const spec = next.get(old.name);
      if (spec && JSON.stringify(spec) === JSON.stringify(old.spec)) continue;
      (spec ? changes.changed : changes.removed).push(old.name);
      this.engines.splice(this.engines.indexOf(old), 1);
      this.#retire(old);
    }
    for (const spec of specs) {
      if (this.get(spec.name)) continue;
      if (!changes.changed.includes(spec.name)) changes.added.push(spec.name);
      this.engines.push(this.#supervise(spec));
    }
    // The order of the setting is the order of the list.
    this.engines.sort(
      (a, b) =>
        specs.findIndex((s) => s.name === a.name) - specs.findIndex((s) => s.name === b.name),
    );
    this.emit("change");
    return changes;
  }

  /** Resolves once every engine a reload removed or changed has finished and stopped. */
  async reloaded(): Promise<void> {
    while (this.#retiring.size) await Promise.all([...this.#retiring.values()].map((r) => r.done));
  }

  /** Lets `old` finish its requests, then stops it; then its successor, if any, takes over. */
  #retire(old: Supervisor): void {
    old.retire();
    const before = this.#retiring.get(old.name)?.done ?? Promise.resolve();
    const done = (async () => {
      await before;
      while (old.inFlight > 0) await once(old, "drained");
      await old.stop("owner");
      this.#opts.log.info({ engine: old.name }, "engine reloaded: the old one stopped");
    })()
      .catch((err: unknown) => this.#opts.log.warn({ engine: old.name, err }, "engine reload"))
      .finally(() => {
        if (this.#retiring.get(old.name)?.done !== done) return;
        this.#retiring.delete(old.name);
        const successor = this.get(old.name);
        if (successor) Object.assign(this.#services.get(old.name) ?? {}, this.#service(successor));
        else this.#services.delete(old.name);
        this.emit("change");
      });
    this.#retiring.set(old.name, { engine: old, done });
  }

  #service(engine: Supervisor): Service {
    const known = (MANIFEST_ENGINES as readonly string[]).includes(engine.adapter.name);
    return {
      name: engine.name,
      adapter: engine.adapter,
      upstream: engine.upstream,
      info: {
        engine: (known ? engine.adapter.name : "other") as ManifestEngine,
        label: `${engine.adapter.displayName} (managed)`,
        maxConcurrent: null,
        models: engine.models,
      },
      status: "ready",
      reason: "managed: started on demand",
      maxConcurrent: engine.spec.maxConcurrent ?? 1,
    };
  }

  /**
   * The services of the managed engines, as the catalog lists them: advertised while stopped;
   * an engine that keeps failing is `down` (withdrawn) with the reason.
   */
  services(): Service[] {
    return this.engines.flatMap((engine) => {
      const s = this.#services.get(engine.name);
      if (!s) return [];
      if (s.info) s.info.models = engine.models;
      s.maxConcurrent = engine.spec.maxConcurrent ?? engine.reportedConcurrency ?? 1;
      s.status = engine.withdrawn ? "down" : "ready";
      s.engineState = engine.state;
      s.reason = engine.withdrawn
        ? `withdrawn after ${engine.streak} failures: ${engine.reason ?? ""}`
        : `managed, ${engine.state}`;
      return [s];
    });
  }

  /** The state of the engine serving a service, for the manifest. */
  state(serviceName: string): EngineState | undefined {
    return this.get(serviceName)?.state;
  }

  /** Leases the engine behind a service, starting it; undefined for a service not managed. */
  acquire(serviceName: string, signal: AbortSignal): Promise<EngineLease> | undefined {
    if (!this.get(serviceName) && !this.#retiring.has(serviceName)) return undefined;
    return this.#acquire(serviceName, signal, Date.now() + this.settings.waitMs);
  }

  /**
   * The engine refused a connection: if its process ended (its exit seen within
   * {@link EXIT_WAIT_MS}), leases it again, starting it, so the call it never received can be
   * sent once more; undefined when it still runs (a refusal of its own: the caller's 502).
   */
  async afterRefusal(serviceName: string, signal: AbortSignal): Promise<EngineLease | undefined> {
    const engine = this.get(serviceName);
    if (!engine || !(await engine.exitSeen(EXIT_WAIT_MS, signal))) return undefined;
    this.refusalRetries++;
    this.#opts.log.info(
      { engine: serviceName },
      "engine refused a request as it crashed: starting it again",
    );
    return this.acquire(serviceName, signal);
  }

  /** Waits out a reload of the engine (its predecessor finishing), then leases the current one. */
  async #acquire(name: string, signal: AbortSignal, deadline: number): Promise<EngineLease> {
    for (;;) {
      const engine = this.get(name);
      if (!engine)
        throw new EngineUnavailable(
          "engine_removed",
          `${name} is no longer one of this rig's engines`,
          60,
        );
      const retiring = this.#retiring.get(name);
      if (!retiring) {
        try {
          return await engine.acquire(signal, deadline - Date.now());
        } catch (err) {
          // Replaced by a reload while this request waited for it: wait for its successor.
          if ((err as EngineUnavailable).code === "engine_retired" && this.get(name) !== engine)
            continue;
          throw err;
        }
      }
      await waitFor(retiring.done, deadline - Date.now(), signal);
      if (this.#retiring.get(name) === retiring && Date.now() >= deadline)
        throw new EngineUnavailable(
          "engine_restarting",
          `${name} restarts with its new settings once its running requests end: retry shortly`,
          5,
        );
    }
  }

  list(): EngineView[] {
    return this.engines.map(viewOf);
  }

  /** What the status server's `/engines` endpoints call (`EngineControl`). */
  control() {
    const view = (name: string) => this.list().find((e) => e.name === name);
    return {
      list: () => this.list(),
      start: (name: string) => {
        const engine = this.get(name);
        if (!engine) return undefined;
        // The start goes on after the answer; a failure is in the engine's state and reason.
        engine.start().catch(() => {});
        return view(name);
      },
      stop: async (name: string) => {
        const engine = this.get(name);
        if (!engine) return undefined;
        await engine.stop("owner");
        return view(name);
      },
      logs: (name: string) => this.get(name)?.logs.lines(),
    };
  }

  /** Stops every engine (the daemon is stopping). */
  async stopAll(): Promise<void> {
    const retiring = [...this.#retiring.values()].map((r) => r.engine);
    await Promise.all([...this.engines, ...retiring].map((e) => e.stop("shutdown")));
  }
}
