/**
 * The durable `JobStore`: an append-only JSON-lines log, `<dir>/jobs.jsonl`, one line per save
 * (`{"put":record}`) or removal (`{"del":id}`); the last line for an id wins. When the log holds
 * more than twice the lines it needs, it is rewritten (to a temporary file, synced, renamed over).
 * A torn last line (a crash mid-write) is skipped on load. Byte results live in `<dir>/results/`.
 */
import { createReadStream } from "node:fs";
import { mkdir, open, rename, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Logger } from "../../log.ts";
import { lockDir } from "./lock.ts";
import type { JobStore } from "./store.ts";
import type { StoredRecord } from "./types.ts";

/** Compaction waits for at least this many lines, so a small log is never rewritten. */
const COMPACT_MIN_LINES = 1000;

type LogLine = { put: StoredRecord } | { del: string };

async function readLog(
  path: string,
  log: Logger,
): Promise<{ live: Map<string, StoredRecord>; lines: number }> {
  const live = new Map<string, StoredRecord>();
  let lines = 0;
  const input = createReadStream(path, { encoding: "utf8" });
  const missing = new Promise<boolean>((resolve) => {
    input.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ENOENT"));
    input.once("open", () => resolve(false));
  });
  if (await missing) return { live, lines };
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    if (text === "") continue;
    lines++;
    let entry: LogLine;
    try {
      entry = JSON.parse(text) as LogLine;
    } catch {
      log.warn({ path, line: lines }, "skipping an unreadable line of the job log (torn write?)");
      continue;
    }
    if ("put" in entry) live.set(entry.put.id, entry.put);
    else live.delete(entry.del);
  }
  return { live, lines };
}

/**
 * Opens (creating) the store in `dir`, taking the directory's lock.
 * @example
 * const store = await openFileStore("/var/lib/club-provider/relay", log);
 * const records = await store.load();
 */
export async function openFileStore(dir: string, log: Logger): Promise<JobStore> {
  await mkdir(join(dir, "results"), { recursive: true, mode: 0o700 });
  const unlock = await lockDir(dir);
  const path = join(dir, "jobs.jsonl");
  let live: Map<string, StoredRecord>;
  let lines: number;
  let fh: FileHandle;
  try {
    ({ live, lines } = await readLog(path, log));
    fh = await open(path, "a", 0o600);
  } catch (err) {
    await unlock();
    throw err;
  }
  let pending: { text: string; done: (err?: Error) => void }[] = [];
  let busy = false;

  async function compact(): Promise<void> {
    const tmp = `${path}.tmp`;
    const out = await open(tmp, "w", 0o600);
    try {
      let chunk = "";
      for (const record of live.values()) {
        chunk += `${JSON.stringify({ put: record })}\n`;
        if (chunk.length > 1 << 20) {
          await out.write(chunk);
          chunk = "";
        }
      }
      await out.write(chunk);
      await out.sync();
    } finally {
      await out.close();
    }
    await fh.close();
    await rename(tmp, path);
    fh = await open(path, "a", 0o600);
    lines = live.size;
  }

  const needsCompaction = (): boolean => lines > COMPACT_MIN_LINES && lines > 2 * live.size;

  // Writes what is pending, in order, one write per batch; no await between the last check and
  // `busy = false`, so a line queued meanwhile is never stranded.
  async function drain(): Promise<void> {
    try {
      while (pending.length > 0) {
        const batch = pending;
        pending = [];
        try {
          await fh.write(batch.map((p) => p.text).join(""));
          lines += batch.length;
          for (const p of batch) p.done();
        } catch (err) {
          for (const p of batch) p.done(err instanceof Error ? err : new Error(String(err)));
        }
        if (needsCompaction())
          await compact().catch((err: unknown) =>
            log.error({ err }, "compacting the job log failed"),
          );
      }
    } finally {
      busy = false;
    }
  }

  function append(entry: LogLine): Promise<void> {
    const text = `${JSON.stringify(entry)}\n`;
    return new Promise((resolve, reject) => {
      pending.push({ text, done: (err) => (err === undefined ? resolve() : reject(err)) });
      if (busy) return;
      busy = true;
      void drain();
    });
  }

  if (needsCompaction()) await compact();
  return {
    resultsDir: join(dir, "results"),
    load: () => Promise.resolve([...live.values()]),
    save(record) {
      live.set(record.id, record);
      return append({ put: record });
    },
    remove(id) {
      if (!live.delete(id)) return Promise.resolve();
      return append({ del: id });
    },
    async close() {
      while (busy || pending.length > 0) await new Promise((r) => setImmediate(r));
      await fh.close();
      await unlock();
    },
  };
}
