/**
 * The PostgreSQL schema of the job store (`store.ts`), component `jobs` of `migrate.ts`: the
 * same tables as the SQLite store's (`jobs/migrations.ts`), the listed and filtered fields as
 * columns and the whole record as JSON text in `data`, plus the holder row that keeps one relay
 * per database. Add new entries at the end; never edit one that has shipped.
 */

/**
 * Jobs, batches and runs, one table per kind (their idempotency keys are separate namespaces);
 * request bodies apart, written once; usage per member, rig, model and UTC day; and
 * `relay_holder`, the one row naming the relay that holds the database, its lease and its epoch.
 */
const V1 = `
CREATE TABLE relay_holder (
  id integer PRIMARY KEY CHECK (id = 1),
  epoch bigint NOT NULL,
  instance text NOT NULL,
  renewed_at timestamptz NOT NULL
);

CREATE TABLE jobs (
  id text PRIMARY KEY,
  member text NOT NULL,
  seq bigint NOT NULL,
  created bigint NOT NULL,
  status text NOT NULL,
  finished bigint,
  idempotency_key text,
  result_file text,
  data text NOT NULL
);
CREATE INDEX jobs_member_seq ON jobs (member, seq);
CREATE UNIQUE INDEX jobs_member_key ON jobs (member, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

CREATE TABLE job_bodies (
  id text PRIMARY KEY,
  member text NOT NULL,
  bytes integer NOT NULL,
  body bytea NOT NULL
);

CREATE TABLE batches (
  id text PRIMARY KEY,
  member text NOT NULL,
  seq bigint NOT NULL,
  created bigint NOT NULL,
  status text,
  finished bigint,
  idempotency_key text,
  data text NOT NULL
);
CREATE INDEX batches_member_seq ON batches (member, seq);
CREATE UNIQUE INDEX batches_member_key ON batches (member, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

CREATE TABLE runs (
  id text PRIMARY KEY,
  member text NOT NULL,
  seq bigint NOT NULL,
  created bigint NOT NULL,
  status text NOT NULL,
  finished bigint,
  idempotency_key text,
  data text NOT NULL
);
CREATE INDEX runs_member_seq ON runs (member, seq);
CREATE UNIQUE INDEX runs_member_key ON runs (member, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

CREATE TABLE usage (
  member text NOT NULL,
  provider text NOT NULL,
  owner text NOT NULL,
  model text NOT NULL,
  day text NOT NULL,
  requests bigint NOT NULL,
  errors bigint NOT NULL,
  prompt_tokens bigint NOT NULL,
  completion_tokens bigint NOT NULL,
  audio_seconds double precision NOT NULL,
  images bigint NOT NULL,
  videos bigint NOT NULL,
  bytes_out bigint NOT NULL,
  PRIMARY KEY (member, provider, owner, model, day)
);
CREATE INDEX usage_owner_day ON usage (owner, day);
CREATE INDEX usage_day ON usage (day);
`;

/**
 * Several relay instances sharing the tables (`--internal-listen`): each record names the
 * instance that keeps it in memory and runs it (`owner`, NULL for a lone relay), and byte results
 * are kept here too, in chunks, so a job's result outlives the instance that ran it.
 */
const V2 = `
ALTER TABLE jobs ADD COLUMN owner text;
ALTER TABLE batches ADD COLUMN owner text;
ALTER TABLE runs ADD COLUMN owner text;
CREATE INDEX jobs_owner ON jobs (owner) WHERE owner IS NOT NULL;
CREATE INDEX batches_owner ON batches (owner) WHERE owner IS NOT NULL;
CREATE INDEX runs_owner ON runs (owner) WHERE owner IS NOT NULL;
CREATE INDEX jobs_member_active ON jobs (member) WHERE status IN ('QUEUED', 'PROCESSING');

CREATE TABLE job_results (
  id text NOT NULL,
  seq integer NOT NULL,
  chunk bytea NOT NULL,
  PRIMARY KEY (id, seq)
);
`;

/** The migrations of component `jobs`, in order: index 0 is version 1. */
export const PG_JOB_MIGRATIONS: readonly string[] = [V1, V2];
