/**
 * The voice library: members' short clips with their transcripts, for voice cloning. Each has
 * an integer id (the club's `speakers` values); the clip is a file `<dir>/<id>`, the rest a row
 * of the job database's `voice_samples` table (or memory, without a data directory). A sample
 * is PRIVATE (its owner's alone, the default) or PUBLIC (any member may clone it).
 */
import { readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";

/** One voice sample. */
export interface VoiceSample {
  id: number;
  member: string;
  created: number;
  name: string;
  transcript: string;
  contentType: string;
  bytes: number;
  durationMs: number;
  visibility: "PRIVATE" | "PUBLIC";
}

interface Row {
  id: number;
  member: string;
  created: number;
  name: string;
  transcript: string;
  content_type: string;
  bytes: number;
  duration_ms: number;
  visibility: string;
}

export class VoiceLibrary {
  readonly #samples = new Map<number, VoiceSample>();
  #next = 1;

  private constructor(
    readonly dir: string,
    readonly db: DatabaseSync | undefined,
  ) {}

  /** Loads the samples and removes clips no sample points at. */
  static async open(dir: string, db?: DatabaseSync): Promise<VoiceLibrary> {
    const lib = new VoiceLibrary(dir, db);
    const rows = (db?.prepare("SELECT * FROM voice_samples ORDER BY id").all() ??
      []) as unknown as Row[];
    for (const r of rows)
      lib.#samples.set(r.id, {
        id: r.id,
        member: r.member,
        created: r.created,
        name: r.name,
        transcript: r.transcript,
        contentType: r.content_type,
        bytes: r.bytes,
        durationMs: r.duration_ms,
        visibility: r.visibility === "PUBLIC" ? "PUBLIC" : "PRIVATE",
      });
    lib.#next = Math.max(0, ...lib.#samples.keys()) + 1;
    const stale = (await readdir(dir)).filter((n) => !lib.#samples.has(Number(n)));
    await Promise.all(stale.map((n) => rm(join(dir, n), { force: true })));
    return lib;
  }

  /** `member`'s samples, oldest first. */
  list(member: string): VoiceSample[] {
    return [...this.#samples.values()].filter((s) => s.member === member);
  }

  /** A sample `member` may use: their own, or a PUBLIC one. */
  usable(member: string, id: number): VoiceSample | undefined {
    const s = this.#samples.get(id);
    return s && (s.member === member || s.visibility === "PUBLIC") ? s : undefined;
  }

  /** One of `member`'s own samples. */
  own(member: string, id: number): VoiceSample | undefined {
    const s = this.#samples.get(id);
    return s?.member === member ? s : undefined;
  }

  /** Keeps a new sample; resolves with it, its id given. */
  async add(
    clip: Buffer,
    meta: Omit<VoiceSample, "id" | "created" | "bytes">,
  ): Promise<VoiceSample> {
    const created = Date.now();
    let id = this.#next;
    if (this.db) {
      const r = this.db
        .prepare(
          `INSERT INTO voice_samples (member, created, name, transcript, content_type, bytes, duration_ms, visibility)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          meta.member,
          created,
          meta.name,
          meta.transcript,
          meta.contentType,
          clip.length,
          meta.durationMs,
          meta.visibility,
        );
      id = Number(r.lastInsertRowid);
    }
    this.#next = id + 1;
    const sample: VoiceSample = { ...meta, id, created, bytes: clip.length };
    try {
      await writeFile(join(this.dir, String(id)), clip, { mode: 0o600 });
    } catch (err) {
      this.db?.prepare("DELETE FROM voice_samples WHERE id = ?").run(id);
      throw err;
    }
    this.#samples.set(id, sample);
    return sample;
  }

  /** A sample's clip. */
  clip(sample: VoiceSample): Promise<Buffer> {
    return readFile(join(this.dir, String(sample.id)));
  }

  /** Removes a sample: its row, then its clip. */
  async remove(sample: VoiceSample): Promise<void> {
    this.db?.prepare("DELETE FROM voice_samples WHERE id = ?").run(sample.id);
    this.#samples.delete(sample.id);
    await rm(join(this.dir, String(sample.id)), { force: true });
  }
}
