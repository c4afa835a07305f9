/**
 * The VRAM an engine was measured to use, remembered across restarts in a small JSON file in
 * the daemon's state directory (`engine-vram.json`). An entry is keyed by the engine's name
 * and a hash of its command, environment and directory, so a changed command (another model,
 * another context size) is measured afresh. Written atomically (a temporary file renamed over
 * it); at most {@link MAX_ENTRIES} entries, the oldest dropped; a file that is unreadable, too
 * large or not ours is ignored (and replaced at the next measurement).
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { EngineSpec } from "./schema.ts";
import { MAX_VRAM_MIB } from "./vram-meter.ts";

/** The file's name in the state directory. */
export const VRAM_FILE = "engine-vram.json";
/** Entries kept; past this the oldest measurement goes. */
export const MAX_ENTRIES = 256;
/** A larger file is not ours: it is ignored. */
export const MAX_FILE_BYTES = 256 * 1024;

/** One remembered measurement. */
export interface VramRecord {
  /** The most it held on one of its GPUs, MiB. */
  vramMiB: number;
  /** When it was measured (ms since the epoch). */
  measuredAt: number;
}

/** The key of an engine: its name, then a hash of what decides its memory. */
export function vramKey(spec: Pick<EngineSpec, "name" | "command" | "env" | "cwd">): string {
  const hash = createHash("sha256")
    .update(JSON.stringify([spec.command, spec.env, spec.cwd ?? null]))
    .digest("hex")
    .slice(0, 16);
  return `${spec.name} ${hash}`;
}

const valid = (r: unknown): r is VramRecord =>
  typeof r === "object" &&
  r !== null &&
  Number.isInteger((r as VramRecord).vramMiB) &&
  (r as VramRecord).vramMiB > 0 &&
  (r as VramRecord).vramMiB <= MAX_VRAM_MIB &&
  Number.isFinite((r as VramRecord).measuredAt);

/** Remembered VRAM figures; `load` once, then `get` and `remember`. */
export class VramStore {
  readonly path: string;
  #entries = new Map<string, VramRecord>();
  #writing: Promise<void> = Promise.resolve();
  /** Why the file was not read, when it was not (for the log). */
  problem: string | undefined;

  constructor(stateDir: string) {
    this.path = join(stateDir, VRAM_FILE);
  }

  /** Reads the file; a missing one is empty, a bad one is ignored with {@link problem} set. */
  async load(): Promise<this> {
    this.#entries.clear();
    try {
      const size = (await stat(this.path)).size;
      if (size > MAX_FILE_BYTES) throw new Error(`${size} bytes, more than ${MAX_FILE_BYTES}`);
      const body = JSON.parse(await readFile(this.path, "utf8")) as { engines?: unknown };
      const engines = body.engines;
      if (typeof engines !== "object" || engines === null) throw new Error("no engines in it");
      for (const [key, record] of Object.entries(engines))
        if (valid(record) && key.length <= 200)
          this.#entries.set(key, { vramMiB: record.vramMiB, measuredAt: record.measuredAt });
      this.#trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT")
        this.problem = `${this.path} ignored: ${(err as Error).message}`;
    }
    return this;
  }

  get(key: string): VramRecord | undefined {
    return this.#entries.get(key);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Records a measurement and writes the file; resolves once written (never rejects). */
  remember(key: string, vramMiB: number, now = Date.now()): Promise<void> {
    this.#entries.delete(key);
    this.#entries.set(key, { vramMiB, measuredAt: now });
    this.#trim();
    const body = JSON.stringify({ version: 1, engines: Object.fromEntries(this.#entries) });
    this.#writing = this.#writing.then(() => this.#write(body));
    return this.#writing;
  }

  /** Resolves once every figure remembered so far is written (or failed to be). */
  written(): Promise<void> {
    return this.#writing;
  }

  #trim(): void {
    if (this.#entries.size <= MAX_ENTRIES) return;
    const oldest = [...this.#entries].sort((a, b) => a[1].measuredAt - b[1].measuredAt);
    for (const [key] of oldest.slice(0, this.#entries.size - MAX_ENTRIES))
      this.#entries.delete(key);
  }

  async #write(body: string): Promise<void> {
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      await mkdir(dirname(this.path), { recursive: true });
      await writeFile(tmp, body + "\n", { mode: 0o600 });
      await rename(tmp, this.path);
      this.problem = undefined;
    } catch (err) {
      this.problem = `cannot write ${this.path}: ${(err as Error).message}`;
    }
  }
}
