/**
 * The job database's schema, as numbered migrations applied in order at start. The version
 * reached is `PRAGMA user_version`; migration N takes the database from N-1 to N. Add a new
 * entry at the end; never edit one that has shipped.
 */
import type { DatabaseSync } from "node:sqlite";
import { UserError } from "../../errors.ts";

/**
 * One table per kind: jobs, batches and runs have different states and their own idempotency
 * namespaces, so `UNIQUE (member, idempotency_key)` holds per table as the API means it. Each
 * row has the listed and filtered fields as columns and the whole record as JSON in `data`.
 * Request bodies are a table of their own, written once.
 */
const V1 = `
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  member TEXT NOT NULL,
  seq INTEGER NOT NULL,
  created INTEGER NOT NULL,
  status TEXT NOT NULL,
  finished INTEGER,
  idempotency_key TEXT,
  result_file TEXT,
  data TEXT NOT NULL
) STRICT;
CREATE INDEX jobs_member_seq ON jobs (member, seq);
CREATE INDEX jobs_member_status_seq ON jobs (member, status, seq);
CREATE UNIQUE INDEX jobs_member_key ON jobs (member, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

CREATE TABLE job_bodies (
  id TEXT PRIMARY KEY,
  member TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  body BLOB NOT NULL
) STRICT;

CREATE TABLE batches (
  id TEXT PRIMARY KEY,
  member TEXT NOT NULL,
  seq INTEGER NOT NULL,
  created INTEGER NOT NULL,
  status TEXT,
  finished INTEGER,
  idempotency_key TEXT,
  data TEXT NOT NULL
) STRICT;
CREATE INDEX batches_member_seq ON batches (member, seq);
CREATE UNIQUE INDEX batches_member_key ON batches (member, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

CREATE TABLE runs (
  id TEXT PRIMARY KEY,
  member TEXT NOT NULL,
  seq INTEGER NOT NULL,
  created INTEGER NOT NULL,
  status TEXT NOT NULL,
  finished INTEGER,
  idempotency_key TEXT,
  data TEXT NOT NULL
) STRICT;
CREATE INDEX runs_member_seq ON runs (member, seq);
CREATE INDEX runs_member_status_seq ON runs (member, status, seq);
CREATE UNIQUE INDEX runs_member_key ON runs (member, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
INSERT INTO meta (key, value) VALUES ('commits', 0);
`;

/**
 * What each member used, per rig, model and UTC day (`usage-book.ts`): one row per key, its
 * counters raised by batched upserts. Read by member (the key's prefix) or by owner and day.
 */
const V2 = `
CREATE TABLE usage (
  member TEXT NOT NULL,
  provider TEXT NOT NULL,
  owner TEXT NOT NULL,
  model TEXT NOT NULL,
  day TEXT NOT NULL,
  requests INTEGER NOT NULL,
  errors INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  audio_seconds REAL NOT NULL,
  images INTEGER NOT NULL,
  videos INTEGER NOT NULL,
  bytes_out INTEGER NOT NULL,
  PRIMARY KEY (member, provider, owner, model, day)
) STRICT, WITHOUT ROWID;
CREATE INDEX usage_owner_day ON usage (owner, day);
CREATE INDEX usage_day ON usage (day);
`;

/**
 * The media library (`src/relay/media/`): one row per stored result, the bytes in
 * `<dir>/media/<id>`; `token` is the unguessable part of its URL. Voice samples are the
 * member's clips for voice cloning, the bytes in `<dir>/voices/<id>`.
 */
const V3 = `
CREATE TABLE media (
  id TEXT PRIMARY KEY,
  token TEXT NOT NULL UNIQUE,
  member TEXT NOT NULL,
  created INTEGER NOT NULL,
  model TEXT NOT NULL,
  kind TEXT NOT NULL,
  content_type TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  visibility TEXT NOT NULL,
  collection TEXT,
  pinned INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX media_member_created ON media (member, created);

CREATE TABLE voice_samples (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  member TEXT NOT NULL,
  created INTEGER NOT NULL,
  name TEXT NOT NULL,
  transcript TEXT NOT NULL,
  content_type TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  visibility TEXT NOT NULL
) STRICT;
CREATE INDEX voice_samples_member ON voice_samples (member, id);
`;

/** The migrations, in order: index 0 is version 1. */
export const MIGRATIONS: readonly string[] = [V1, V2, V3];

/** Brings `db` to the latest version, one transaction per step; refuses a newer database. */
export function migrate(db: DatabaseSync, path: string): void {
  const row = db.prepare("PRAGMA user_version").get() as { user_version: number };
  const from = row.user_version;
  if (from > MIGRATIONS.length)
    throw new UserError(
      "store_too_new",
      `${path} has schema version ${from}, newer than this relay knows (${MIGRATIONS.length}): run the club-provider version that wrote it, or a newer one`,
    );
  for (let v = from; v < MIGRATIONS.length; v++) {
    db.exec("BEGIN");
    try {
      db.exec(MIGRATIONS[v] ?? "");
      db.exec(`PRAGMA user_version = ${v + 1}`);
      db.exec("COMMIT");
    } catch (err) {
      db.exec("ROLLBACK");
      throw err;
    }
  }
}
