/**
 * The club's providers across instances, kept in PostgreSQL. Each instance writes a row for
 * every provider whose tunnel it holds (manifest, pauses, drain, load) and `NOTIFY`s the change;
 * every other instance `LISTEN`s and mirrors the row as a `RemoteProvider` in its registry, so a
 * request landing anywhere finds any provider. Instances keep a heartbeat row; one that stops
 * beating for longer than the expiry is deleted by the others, and with it its providers (their
 * daemons reconnect to a live instance).
 */
import pg from "pg";
import type { Logger } from "../../log.ts";
import { describeError } from "../../errors.ts";
import { migrate } from "../pg/migrate.ts";
import type { ProviderLink } from "../provider-link.ts";
import type { Registry } from "../registry.ts";
import { Peers, RemoteProvider, type ProviderRow } from "./remote.ts";

/** The channel changes are announced on: payload `INSTANCE CONNECTION`, or `INSTANCE *`. */
export const CHANNEL = "club_registry";

export const CLUSTER_MIGRATIONS = [
  `CREATE TABLE cluster_instances (
     id text PRIMARY KEY,
     url text NOT NULL,
     started_at timestamptz NOT NULL DEFAULT now(),
     seen_at timestamptz NOT NULL DEFAULT now())`,
  `CREATE TABLE cluster_providers (
     conn_id text PRIMARY KEY,
     instance_id text NOT NULL REFERENCES cluster_instances (id) ON DELETE CASCADE,
     member text NOT NULL,
     name text NOT NULL,
     version text NOT NULL,
     connected_at bigint NOT NULL,
     manifest jsonb NOT NULL,
     pause jsonb,
     draining boolean NOT NULL DEFAULT false,
     load integer NOT NULL DEFAULT 0,
     updated_at timestamptz NOT NULL DEFAULT now())`,
  `CREATE INDEX cluster_providers_instance ON cluster_providers (instance_id)`,
];

export interface ClusterOptions {
  pool: pg.Pool;
  registry: Registry;
  /** This instance's name in the tables, unique in the club. */
  instanceId: string;
  /** The URL of this instance's internal listener, as the other instances reach it. */
  instanceUrl: string;
  /** The operator's shared secret for internal streams. */
  secret: string;
  /** How often this instance says it is alive (default 5 s). */
  heartbeatMs?: number;
  /** An instance silent this long is dropped with its providers (default 15 s). */
  expiryMs?: number;
  log: Logger;
}

const SELECT_ROWS = `
  SELECT p.conn_id, p.instance_id, i.url AS instance_url, p.member, p.name, p.version,
         p.connected_at, p.manifest, p.pause, p.draining, p.load
    FROM cluster_providers p JOIN cluster_instances i ON i.id = p.instance_id`;

export class ClusterDirectory {
  readonly peers: Peers;
  readonly #o: ClusterOptions & { heartbeatMs: number; expiryMs: number };
  readonly #log: Logger;
  /** Local changes not written yet, by connection id (the latest wins). */
  readonly #pending = new Map<string, { link: ProviderLink; gone: boolean }>();
  #flushing: Promise<void> | undefined;
  /** Remote refreshes run one after another, so an older row never overwrites a newer one. */
  #refreshes: Promise<void> = Promise.resolve();
  #listener: pg.Client | undefined;
  #timer: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  /** Called when another instance leaves the club (it stopped, or was expired). */
  readonly #gone = new Set<() => void>();
  /** Called when this instance finds it was expired by the others, once it is back. */
  readonly #expired = new Set<() => void>();
  /** The others expired this instance (it was told, or its row was gone at a heartbeat). */
  #wasExpired = false;
  /** A write failed, or this instance was expired: write every local provider again. */
  #stale = false;
  #closed = false;

  private constructor(o: ClusterOptions) {
    this.#o = { heartbeatMs: 5_000, expiryMs: 15_000, ...o };
    this.#log = o.log.child({ component: "cluster", instance: o.instanceId });
    this.peers = new Peers(o.secret, o.log);
  }

  static async start(o: ClusterOptions): Promise<ClusterDirectory> {
    const d = new ClusterDirectory(o);
    await migrate(o.pool, "cluster", CLUSTER_MIGRATIONS);
    await d.#register(true);
    d.#unsubscribe = o.registry.listen((link, gone) => d.#queue(link, gone));
    await d.#listen();
    d.#timer = setInterval(() => void d.#beat(), d.#o.heartbeatMs);
    d.#timer.unref();
    return d;
  }

  get instanceId(): string {
    return this.#o.instanceId;
  }

  /**
   * Writes this instance's row and every local provider. At start, what a previous run under the
   * same id left is deleted first; later (a write failed, or others expired this instance while
   * it could not reach the database) the row is brought back and the providers written again.
   */
  async #register(fresh: boolean): Promise<void> {
    const { pool, instanceId, instanceUrl, registry } = this.#o;
    if (fresh)
      await pool.query(
        `WITH d AS (DELETE FROM cluster_instances WHERE id = $1)
         SELECT pg_notify($2, $1 || ' *')`,
        [instanceId, CHANNEL],
      );
    await pool.query(
      `INSERT INTO cluster_instances (id, url) VALUES ($1, $2)
       ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, seen_at = now()`,
      [instanceId, instanceUrl],
    );
    const local = registry.all().filter((l) => l.manifest);
    await pool.query(
      `WITH d AS (
         DELETE FROM cluster_providers WHERE instance_id = $1 AND NOT (conn_id = ANY($2::text[]))
         RETURNING conn_id)
       SELECT pg_notify($3, $1 || ' ' || d.conn_id) FROM d`,
      [instanceId, local.map((l) => l.id), CHANNEL],
    );
    this.#stale = false;
    for (const link of local) this.#queue(link, false);
  }

  #queue(link: ProviderLink, gone: boolean): void {
    if (this.#closed || (!gone && !link.manifest)) return;
    this.#pending.set(link.id, { link, gone });
    this.#flushing ??= this.#flush().finally(() => (this.#flushing = undefined));
  }

  /** Writes pending changes, each with its NOTIFY in the same statement. */
  async #flush(): Promise<void> {
    const { pool, instanceId } = this.#o;
    for (const [id, { link, gone }] of this.#pending) {
      this.#pending.delete(id);
      try {
        if (gone)
          await pool.query(
            `WITH d AS (DELETE FROM cluster_providers WHERE conn_id = $1)
             SELECT pg_notify($2, $3 || ' ' || $1)`,
            [id, CHANNEL, instanceId],
          );
        else
          await pool.query(
            `WITH u AS (
               INSERT INTO cluster_providers
                 (conn_id, instance_id, member, name, version, connected_at, manifest, pause,
                  draining, load, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
               ON CONFLICT (conn_id) DO UPDATE SET
                 manifest = EXCLUDED.manifest, pause = EXCLUDED.pause, name = EXCLUDED.name,
                 version = EXCLUDED.version, draining = EXCLUDED.draining, load = EXCLUDED.load,
                 updated_at = now())
             SELECT pg_notify($11, $2 || ' ' || $1)`,
            [
              id,
              instanceId,
              link.member,
              link.name,
              link.version,
              link.connectedAt,
              JSON.stringify(link.manifest),
              JSON.stringify(link.pause ?? {}),
              link.draining,
              link.inFlight,
              CHANNEL,
            ],
          );
      } catch (err) {
        this.#stale = true;
        this.#log.warn(
          { err: describeError(err), provider: link.name },
          "could not publish provider %s to the cluster; retrying at the next heartbeat",
          link.name,
        );
      }
    }
  }

  /** The dedicated LISTEN connection; reconnects (and mirrors everything again) when it drops. */
  async #listen(): Promise<void> {
    const client = new pg.Client(this.#o.pool.options);
    client.on("notification", (n) => {
      if (n.channel === CHANNEL && n.payload) this.#onNotice(n.payload);
    });
    const lost = (why: string): void => {
      if (this.#listener !== client) return;
      this.#listener = undefined;
      client.end().catch(() => undefined);
      if (this.#closed) return;
      this.#log.warn({ why }, "cluster LISTEN connection lost; reconnecting");
      this.#retry = setTimeout(() => void this.#relisten(), 1_000);
      this.#retry.unref();
    };
    client.on("error", (err) => lost(err.message));
    client.on("end", () => lost("ended"));
    await client.connect();
    this.#listener = client;
    await client.query(`LISTEN ${CHANNEL}`);
    await this.#syncAll();
  }

  async #relisten(): Promise<void> {
    try {
      await this.#listen();
      this.#log.info("cluster LISTEN connection back");
    } catch (err) {
      if (this.#closed) return;
      this.#log.debug({ err: describeError(err) }, "cluster LISTEN reconnect failed");
      this.#retry = setTimeout(() => void this.#relisten(), 2_000);
      this.#retry.unref();
    }
  }

  #onNotice(payload: string): void {
    const [instance, conn] = payload.split(" ");
    if (!instance || !conn) return;
    if (instance === this.#o.instanceId) {
      // Another instance expired this one (it could not reach the database for a while).
      if (conn === "*" && !this.#closed) this.#stale = this.#wasExpired = true;
      return;
    }
    this.#refreshes = this.#refreshes.then(() =>
      conn === "*" ? this.#dropInstance(instance) : this.#refresh(conn),
    );
  }

  #dropInstance(instance: string): void {
    for (const p of this.#o.registry.remote())
      if (p instanceof RemoteProvider && p.instanceId === instance)
        this.#o.registry.removeRemote(p.id);
    for (const listener of this.#gone) listener();
  }

  /**
   * Calls `listener` when this instance was expired by the others (what it owned may have been
   * taken over) and has registered again; returns the unsubscribe.
   */
  onExpired(listener: () => void): () => void {
    this.#expired.add(listener);
    return () => this.#expired.delete(listener);
  }

  /** Calls `listener` each time another instance leaves the club; returns the unsubscribe. */
  onInstanceGone(listener: () => void): () => void {
    this.#gone.add(listener);
    return () => this.#gone.delete(listener);
  }

  async #refresh(conn: string): Promise<void> {
    try {
      const { rows } = await this.#o.pool.query<ProviderRow>(`${SELECT_ROWS} WHERE conn_id = $1`, [
        conn,
      ]);
      const row = rows[0];
      if (row) this.#mirror(row);
      else this.#o.registry.removeRemote(conn);
    } catch (err) {
      this.#log.warn({ err: describeError(err) }, "could not read provider %s", conn);
    }
  }

  #mirror(row: ProviderRow): void {
    if (row.instance_id === this.#o.instanceId) return;
    const known = this.#o.registry.getRemote(row.conn_id);
    if (known instanceof RemoteProvider) known.update(row);
    else this.#o.registry.setRemote(new RemoteProvider(row, this.peers));
  }

  /** Mirrors every other instance's providers, dropping what is gone. */
  async #syncAll(): Promise<void> {
    const { rows } = await this.#o.pool.query<ProviderRow>(
      `${SELECT_ROWS} WHERE p.instance_id <> $1`,
      [this.#o.instanceId],
    );
    const seen = new Set(rows.map((r) => r.conn_id));
    for (const p of this.#o.registry.remote())
      if (!seen.has(p.id)) this.#o.registry.removeRemote(p.id);
    for (const row of rows) this.#mirror(row);
  }

  /** This instance is alive; expired instances go; loads are published. */
  async #beat(): Promise<void> {
    const { pool, instanceId, instanceUrl, expiryMs, registry } = this.#o;
    try {
      const seen = await pool.query(
        "UPDATE cluster_instances SET seen_at = now(), url = $2 WHERE id = $1",
        [instanceId, instanceUrl],
      );
      if (seen.rowCount === 0) this.#wasExpired = true;
      if (seen.rowCount === 0 || this.#stale) await this.#register(false);
      if (this.#wasExpired) {
        this.#wasExpired = false;
        this.#log.warn("the other instances expired this one while it was cut off; it is back");
        for (const listener of this.#expired) listener();
      }
      await pool.query(
        `WITH d AS (
           DELETE FROM cluster_instances
            WHERE id <> $1 AND seen_at < now() - $2 * interval '1 millisecond' RETURNING id)
         SELECT pg_notify($3, d.id || ' *') FROM d`,
        [instanceId, expiryMs, CHANNEL],
      );
      const links = registry.all().filter((l) => l.manifest);
      if (links.length > 0)
        await pool.query(
          `UPDATE cluster_providers p SET load = v.load
             FROM unnest($1::text[], $2::int[]) AS v(id, load)
            WHERE p.conn_id = v.id AND p.load <> v.load`,
          [links.map((l) => l.id), links.map((l) => l.inFlight)],
        );
    } catch (err) {
      this.#stale = true;
      this.#log.warn({ err: describeError(err) }, "cluster heartbeat failed");
    }
  }

  /** Removes this instance (and so its providers) from the club's tables. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    clearInterval(this.#timer);
    clearTimeout(this.#retry);
    await this.#flushing;
    await this.#o.pool
      .query(
        `WITH d AS (DELETE FROM cluster_instances WHERE id = $1)
         SELECT pg_notify($2, $1 || ' *')`,
        [this.#o.instanceId, CHANNEL],
      )
      .catch((err: unknown) =>
        this.#log.warn({ err: describeError(err) }, "could not leave the cluster's tables"),
      );
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.end().catch(() => undefined);
    this.peers.close();
  }
}
