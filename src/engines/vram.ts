/**
 * Each GPU's VRAM budget (the owner's `vramBudgetMiB`, else detected total − `vramReserveMiB`)
 * and the eviction that keeps engines within it: before an engine starts, the least recently
 * used idle engines on its GPUs are stopped until it fits. Engines with requests in flight are
 * never stopped for another; when nothing can be freed the start is refused with 503.
 */
import { EngineUnavailable } from "./errors.ts";
import type { EngineSettings } from "./schema.ts";
import type { Supervisor } from "./supervisor.ts";

export interface VramOptions {
  settings: EngineSettings;
  /** Detected VRAM of a GPU in MiB, or null when unknown. */
  total: (gpu: number) => number | null;
  engines: () => readonly Supervisor[];
  /** Called for each engine stopped to make room. */
  onEvict?: (victim: Supervisor, forEngine: Supervisor) => void;
}

export class VramBudget {
  readonly #opts: VramOptions;
  /** One decision at a time: two cold engines must not both count on the same free memory. */
  #queue: Promise<void> = Promise.resolve();

  constructor(options: VramOptions) {
    this.#opts = options;
  }

  /** The budget of a GPU in MiB; null when neither set nor detected (no accounting then). */
  budget(gpu: number): number | null {
    const set = this.#opts.settings.budgetMiB[String(gpu)];
    if (set !== undefined) return set;
    const total = this.#opts.total(gpu);
    return total === null ? null : Math.max(0, total - this.#opts.settings.reserveMiB);
  }

  /** MiB an engine counts for on a GPU: declared or measured, else the whole budget (alone). */
  #need(e: Supervisor, budget: number): number {
    return e.vramMiB ?? budget;
  }

  /** Used MiB of a GPU by the engines admitted on it, other than `except`. */
  used(gpu: number, except?: Supervisor): number {
    const budget = this.budget(gpu) ?? 0;
    let sum = 0;
    for (const e of this.#opts.engines())
      if (e !== except && e.admitted && e.spec.gpus.includes(gpu)) sum += this.#need(e, budget);
    return sum;
  }

  /** Frees room for `engine` on each of its GPUs, then admits it; or throws 503. */
  makeRoom(engine: Supervisor): Promise<void> {
    const run = this.#queue.then(() => this.#makeRoom(engine));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #makeRoom(engine: Supervisor): Promise<void> {
    for (const gpu of engine.spec.gpus) {
      const budget = this.budget(gpu);
      if (budget === null) continue;
      const need = this.#need(engine, budget);
      if (need > budget)
        throw new EngineUnavailable(
          "engine_too_large",
          `${engine.name} needs ${need} MiB on GPU ${gpu}, more than its budget of ${budget} MiB (vramBudgetMiB, vramReserveMiB)`,
          60,
        );
      while (this.used(gpu, engine) + need > budget) {
        const victim = this.#opts
          .engines()
          .filter((e) => e !== engine && e.admitted && e.idle && e.spec.gpus.includes(gpu))
          .sort((a, b) => (a.lastUsedAt ?? 0) - (b.lastUsedAt ?? 0))[0];
        if (!victim) {
          const busy = this.#opts
            .engines()
            .filter((e) => e !== engine && e.admitted && e.spec.gpus.includes(gpu))
            .map((e) => `${e.name} (${e.inFlight} running)`);
          throw new EngineUnavailable(
            "engine_no_room",
            `GPU ${gpu} has no room for ${engine.name} (${need} MiB of ${budget}): in use by ${busy.join(", ")}`,
            10,
          );
        }
        // stop() marks the victim stopping at once, so no request leases it meanwhile.
        const stopped = victim.stop("evicted");
        this.#opts.onEvict?.(victim, engine);
        await stopped;
      }
    }
    engine.admitted = true;
  }
}
