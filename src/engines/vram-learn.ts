/**
 * Learns the VRAM of engines whose owner declared none: measured when the engine becomes ready
 * and again when its requests end (at most once per `everyMs`: some engines, ComfyUI first,
 * load their weights on the first request), the most seen kept and remembered in the
 * {@link VramStore}. The figure counts for the budget at once, and from the next start on.
 */
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Supervisor } from "./supervisor.ts";
import type { VramMeter } from "./vram-meter.ts";
import { vramKey, type VramStore } from "./vram-store.ts";

export interface VramLearnOptions {
  meter: VramMeter;
  store?: VramStore | undefined;
  log: Logger;
  /** Least time between two measurements of one engine (default 30 s). */
  everyMs?: number;
}

/** Takes the remembered figure, then measures the engine on each of its runs. */
export function learnVram(engine: Supervisor, options: VramLearnOptions): void {
  if (engine.vramSource === "declared" || engine.spec.gpus.length === 0) return;
  const key = vramKey(engine.spec);
  const known = options.store?.get(key);
  if (known) {
    engine.vramMiB = known.vramMiB;
    engine.vramSource = "measured";
  }
  const everyMs = options.everyMs ?? 30_000;
  let last = 0;
  let running = false;
  const measure = async (): Promise<void> => {
    const pid = engine.pid;
    if (pid === null || running || Date.now() - last < everyMs) return;
    running = true;
    last = Date.now();
    try {
      const reading = await options.meter(pid, engine.spec.gpus);
      // Stopped or restarted meanwhile: the figure is of a process that is gone.
      if (engine.pid !== pid || engine.state !== "ready") return;
      if ("problem" in reading) {
        engine.logs.push(`(club-provider: VRAM not measured: ${reading.problem})`);
        return;
      }
      if (engine.vramSource === "measured" && (engine.vramMiB ?? 0) >= reading.mib) return;
      engine.vramMiB = reading.mib;
      engine.vramSource = "measured";
      engine.logs.push(`(club-provider: measured ${reading.mib} MiB of VRAM)`);
      options.log.info({ engine: engine.name, vramMiB: reading.mib }, "engine VRAM measured");
      const saved = options.store?.remember(key, reading.mib);
      engine.emit("change");
      await saved;
      if (options.store?.problem) options.log.warn(options.store.problem);
    } catch (err) {
      engine.logs.push(`(club-provider: VRAM not measured: ${describeError(err)})`);
    } finally {
      running = false;
    }
  };
  const onReady = (): void => {
    last = 0;
    void measure();
  };
  const onIdle = (): void => void measure();
  engine.on("ready", onReady);
  engine.on("idle", onIdle);
}
