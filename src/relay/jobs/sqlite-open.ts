/**
 * Opening the job database `<dir>/jobs.db`: WAL with `synchronous=FULL`, SQLite's own exclusive
 * lock (held until the process ends, released by the kernel when it dies), the schema
 * migrated, and checks that refuse a damaged or cut-short database instead of starting
 * without acknowledged jobs. `<dir>/jobs.db-acked` holds the number of commits acknowledged so
 * far: a database that holds fewer lost some (a truncated WAL looks like a clean one).
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { UserError } from "../../errors.ts";
import { migrate } from "./migrations.ts";

/** SQLite's primary result codes we tell apart (`errcode & 0xff`). */
export const SQLITE = {
  BUSY: 5,
  LOCKED: 6,
  CORRUPT: 11,
  FULL: 13,
  CANTOPEN: 14,
  CONSTRAINT: 19,
  NOTADB: 26,
};

/** The primary SQLite result code of an error thrown by `node:sqlite`, or undefined. */
export function sqliteCode(err: unknown): number | undefined {
  const code = (err as { errcode?: unknown } | null)?.errcode;
  return typeof code === "number" ? code & 0xff : undefined;
}

/** An open job database and its acknowledgement counter. */
export interface OpenDatabase {
  db: DatabaseSync;
  path: string;
  /** Commits made so far (the `meta` row), as of opening. */
  commits: number;
  /** Records `commits` as acknowledged (after the commit, before any answer goes out). */
  acked(commits: number): void;
  close(): void;
}

const WITNESS_WIDTH = 20;

function damaged(path: string, what: string): UserError {
  return new UserError(
    "store_damaged",
    `the job database ${path} is damaged (${what}). Nothing was changed. Stop here and keep a copy of the data directory; then restore jobs.db and jobs.db-wal from a backup, or salvage what is left with \`sqlite3 ${path} .recover | sqlite3 ${path}.recovered\` and move jobs.db.recovered to jobs.db (and remove jobs.db-acked), or move jobs.db away to start with no jobs`,
  );
}

/** `node:sqlite`'s database class, loaded by the caller only when a store is opened. */
export type DatabaseClass = typeof DatabaseSync;

/** Creates an empty, migrated database under a temporary name and renames it into place. */
function create(Database: DatabaseClass, dir: string, path: string): void {
  const tmp = `${path}.new`;
  rmSync(tmp, { force: true });
  const db = new Database(tmp);
  try {
    migrate(db, tmp);
  } finally {
    db.close();
  }
  const fd = openSync(tmp, "r+");
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
  const dirFd = openSync(dir, "r");
  fsyncSync(dirFd);
  closeSync(dirFd);
}

function readWitness(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(WITNESS_WIDTH + 1);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const text = buf.subarray(0, n).toString("latin1");
    return /^\d{20}\n$/.test(text) ? Number(text.trim()) : undefined;
  } finally {
    closeSync(fd);
  }
}

function lockAndCheck(db: DatabaseSync, dir: string, path: string): void {
  try {
    // Exclusive before the first access: no shared-memory index, the lock is held until close.
    db.exec("PRAGMA locking_mode = EXCLUSIVE");
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("BEGIN EXCLUSIVE; COMMIT");
  } catch (err) {
    const code = sqliteCode(err);
    if (code === SQLITE.BUSY || code === SQLITE.LOCKED)
      throw new UserError(
        "data_dir_locked",
        `another relay is using ${dir}: stop it, or give this relay its own --data-dir`,
        { cause: err },
      );
    if (code === SQLITE.NOTADB || code === SQLITE.CORRUPT)
      throw damaged(path, (err as Error).message);
    throw err;
  }
  let problems: string[];
  try {
    const rows = db.prepare("PRAGMA quick_check(5)").all() as { quick_check: string }[];
    problems = rows.map((r) => r.quick_check).filter((r) => r !== "ok");
  } catch (err) {
    problems = [(err as Error).message];
  }
  if (problems.length > 0) throw damaged(path, problems.join("; "));
}

/**
 * Opens (creating) `<dir>/jobs.db`, holding it exclusively. Throws a `UserError` when another
 * relay holds it, when it is damaged, or when it holds fewer commits than were acknowledged.
 * @example
 * const { DatabaseSync } = await import("node:sqlite");
 * const { db, acked, close } = openDatabase(DatabaseSync, "/var/lib/club-provider/relay");
 */
export function openDatabase(Database: DatabaseClass, dir: string): OpenDatabase {
  const path = join(dir, "jobs.db");
  // The pid-file lock of earlier versions: SQLite's lock replaces it.
  rmSync(join(dir, "relay.lock"), { force: true });
  if (!existsSync(path)) create(Database, dir, path);
  // Created by rename, a jobs.db is never legitimately shorter than its first page.
  const size = statSync(path).size;
  if (size < 512) throw damaged(path, `it is ${size} bytes long, shorter than one page`);
  const db = new Database(path, { timeout: 0 });
  try {
    lockAndCheck(db, dir, path);
    migrate(db, path);
    const row = db.prepare("SELECT value FROM meta WHERE key = 'commits'").get() as
      { value: number } | undefined;
    const commits = row?.value ?? 0;
    const witnessFile = join(dir, "jobs.db-acked");
    const witness = readWitness(witnessFile);
    if (witness !== undefined && witness > commits)
      throw damaged(
        path,
        `it holds ${commits} commits but ${witness} were acknowledged to clients, so acknowledged jobs are missing: its write-ahead log jobs.db-wal or the file itself was cut short or replaced by an older copy. If you restored it from a backup on purpose, remove ${witnessFile} to start with what it holds`,
      );
    const fd = openSync(witnessFile, existsSync(witnessFile) ? "r+" : "w", 0o600);
    const acked = (n: number): void => {
      writeSync(fd, `${String(n).padStart(WITNESS_WIDTH, "0")}\n`, 0, "latin1");
    };
    acked(commits);
    return {
      db,
      path,
      commits,
      acked,
      close() {
        db.close();
        closeSync(fd);
      },
    };
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * `node:sqlite`, loaded without its "SQLite is an experimental feature" warning: Node 22 and 24
 * print it on first load, where it reads to an operator as if something were wrong. Any other
 * warning still goes out as usual.
 */
export async function loadSqlite(): Promise<typeof import("node:sqlite")> {
  const emit = process.emitWarning.bind(process);
  const quiet = (warning: string | Error, ...rest: unknown[]): void => {
    const text = typeof warning === "string" ? warning : warning.message;
    const type =
      typeof rest[0] === "string" ? rest[0] : (rest[0] as { type?: string } | null)?.type;
    const name = typeof warning === "string" ? type : warning.name;
    if (name === "ExperimentalWarning" && /SQLite/i.test(text)) return;
    (emit as (...args: unknown[]) => void)(warning, ...rest);
  };
  process.emitWarning = quiet;
  try {
    return await import("node:sqlite");
  } finally {
    process.emitWarning = emit;
  }
}
