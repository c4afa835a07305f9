/**
 * The job log of earlier versions, `<dir>/jobs.jsonl` (one `{"put":record}` or `{"del":id}` per
 * line, the last line for an id winning), imported once into the database at start and then
 * renamed `jobs.jsonl.imported`. A record's inline `body` becomes a body written apart.
 */
import { createReadStream, existsSync } from "node:fs";
import { rename } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Logger } from "../../log.ts";
import type { StoredRecord } from "./types.ts";

/** A write the import hands to the store. */
export type ImportOp = { kind: "save"; record: StoredRecord; body?: Buffer };

type LogLine = { put: StoredRecord & { body?: unknown } } | { del: string };

async function readLog(
  path: string,
  log: Logger,
): Promise<Map<string, StoredRecord & { body?: unknown }>> {
  const live = new Map<string, StoredRecord & { body?: unknown }>();
  let line = 0;
  const input = createReadStream(path, { encoding: "utf8" });
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line++;
    if (text === "") continue;
    let entry: LogLine;
    try {
      entry = JSON.parse(text) as LogLine;
    } catch {
      log.warn({ path, line }, "skipping an unreadable line of the old job log (torn write?)");
      continue;
    }
    if ("put" in entry && typeof entry.put.id === "string") live.set(entry.put.id, entry.put);
    else if ("del" in entry) live.delete(entry.del);
  }
  return live;
}

/**
 * Imports `<dir>/jobs.jsonl` when there is one: `commit` writes every record in one
 * transaction (and throws if it cannot), then the log is renamed so it is read only once.
 */
export async function importJsonLog(
  dir: string,
  log: Logger,
  commit: (ops: ImportOp[]) => void,
): Promise<void> {
  const path = join(dir, "jobs.jsonl");
  if (!existsSync(path)) return;
  const live = await readLog(path, log);
  const ops = [...live.values()].map((full): ImportOp => {
    const { body, ...record } = full;
    if (record.kind !== "job" || body === undefined) return { kind: "save", record };
    const bytes = Buffer.from(JSON.stringify(body));
    const job = { ...record, body_bytes: bytes.length } as StoredRecord;
    // A PROCESSED job's body is dropped, as the queue would have.
    if ((record as { status?: unknown }).status === "PROCESSED")
      return { kind: "save", record: { ...job, body_dropped: true } as StoredRecord };
    return { kind: "save", record: job, body: bytes };
  });
  commit(ops);
  await rename(path, `${path}.imported`);
  log.info(
    { path, records: ops.length },
    "imported %d record(s) from the old job log %s",
    ops.length,
    path,
  );
}
