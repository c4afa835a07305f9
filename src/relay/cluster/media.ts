/**
 * The media library across the instances of a club. Each instance keeps its own library (files
 * and index under its data directory) and copies every stored item into PostgreSQL when it is
 * committed, before its URL is given out: the item's row in `media_items` and its bytes in
 * `media_chunks` (1 MiB rows). A token another instance made is then served by any instance
 * from those rows (whole or a byte range, one chunk in memory at a time), and outlives the
 * instance that made it. Changes (visibility, collection, pin) and deletions are written through
 * before they are answered, so a URL made PRIVATE or deleted stops working everywhere at once.
 * SECRET results are never stored, here as on one relay: their one fetch works only at the
 * instance that made them.
 */
import { Readable } from "node:stream";
import type pg from "pg";
import { migrate } from "../pg/migrate.ts";
import { pgStoreError } from "../pg/store.ts";
import { inTransaction } from "../pg/transaction.ts";
import { CHUNK_BYTES, readChunk, writeChunks } from "../pg/chunks.ts";
import type { MediaItem } from "../media/types.ts";

/** Migrations of component `media`. */
export const MEDIA_MIGRATIONS: readonly string[] = [
  `CREATE TABLE media_items (
     id text PRIMARY KEY,
     token text NOT NULL UNIQUE,
     member text NOT NULL,
     owner text NOT NULL,
     created bigint NOT NULL,
     visibility text NOT NULL,
     item jsonb NOT NULL);
   CREATE INDEX media_items_member ON media_items (member, created);
   CREATE INDEX media_items_public ON media_items (created) WHERE visibility = 'PUBLIC';
   CREATE TABLE media_chunks (
     id text NOT NULL,
     seq integer NOT NULL,
     chunk bytea NOT NULL,
     PRIMARY KEY (id, seq))`,
];

/** See the file comment. */
export class MediaMirror {
  readonly instanceId: string;
  readonly #pool: pg.Pool;

  private constructor(pool: pg.Pool, instanceId: string) {
    this.#pool = pool;
    this.instanceId = instanceId;
  }

  static async open(pool: pg.Pool, instanceId: string): Promise<MediaMirror> {
    await migrate(pool, "media", MEDIA_MIGRATIONS);
    return new MediaMirror(pool, instanceId);
  }

  /** Copies a committed item and its bytes (from `path`), in one transaction. */
  async put(item: MediaItem, path: string): Promise<void> {
    await inTransaction(this.#pool, async (client) => {
      await writeChunks(client, "media_chunks", item.id, path);
      await client.query(
        `INSERT INTO media_items (id, token, member, owner, created, visibility, item)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET visibility = EXCLUDED.visibility, item = EXCLUDED.item`,
        [item.id, item.token, item.member, this.instanceId, item.created, item.visibility, item],
      );
    });
  }

  /** Bytes of the member's stored items, whichever instance made them. */
  async bytesOf(member: string): Promise<number> {
    const { rows } = await this.#query<{ n: number | null }>(
      "SELECT sum((item->>'bytes')::bigint)::float8 AS n FROM media_items WHERE member = $1",
      [member],
    );
    return rows[0]?.n ?? 0;
  }

  /** Writes an item's changed fields (visibility, collection, pin). */
  async update(item: MediaItem): Promise<void> {
    await this.#query("UPDATE media_items SET visibility = $2, item = $3 WHERE id = $1", [
      item.id,
      item.visibility,
      item,
    ]);
  }

  /** Deletes an item and its bytes. */
  async remove(id: string): Promise<void> {
    await this.#query(
      "WITH c AS (DELETE FROM media_chunks WHERE id = $1) DELETE FROM media_items WHERE id = $1",
      [id],
    );
  }

  /** The stored item a token names, whichever instance made it. */
  async byToken(token: string): Promise<MediaItem | undefined> {
    const { rows } = await this.#query<{ item: MediaItem }>(
      "SELECT item FROM media_items WHERE token = $1",
      [token],
    );
    return rows[0]?.item;
  }

  /** The member's stored item `id`, whichever instance made it. */
  async own(member: string, id: string): Promise<MediaItem | undefined> {
    const { rows } = await this.#query<{ item: MediaItem }>(
      "SELECT item FROM media_items WHERE id = $1 AND member = $2",
      [id, member],
    );
    return rows[0]?.item;
  }

  /** Items any instance made: the member's, or (no member) every PUBLIC one; newest first. */
  async list(member: string | undefined, limit: number): Promise<MediaItem[]> {
    const { rows } = await this.#query<{ item: MediaItem }>(
      member === undefined
        ? `SELECT item FROM media_items WHERE visibility = 'PUBLIC' ORDER BY created DESC LIMIT $1`
        : `SELECT item FROM media_items WHERE member = $2 ORDER BY created DESC LIMIT $1`,
      member === undefined ? [limit] : [limit, member],
    );
    return rows.map((r) => r.item);
  }

  /**
   * Deletes unpinned items created before `before` (any instance's; none when undefined), and
   * returns those ids together with the ids of `local` no longer in the database (deleted
   * through another instance): the files this instance should remove.
   */
  async prune(before: number | undefined, local: string[]): Promise<string[]> {
    const old =
      before === undefined
        ? []
        : (
            await this.#query<{ id: string }>(
              `WITH d AS (
                 DELETE FROM media_items
                  WHERE created < $1 AND NOT coalesce((item->>'pinned')::boolean, false)
                  RETURNING id),
               c AS (DELETE FROM media_chunks WHERE id IN (SELECT id FROM d))
               SELECT id FROM d`,
              [before],
            )
          ).rows.map((r) => r.id);
    const { rows } = await this.#query<{ id: string }>(
      `SELECT l.id FROM unnest($1::text[]) AS l(id)
        WHERE NOT EXISTS (SELECT 1 FROM media_items m WHERE m.id = l.id)`,
      [local],
    );
    return [...new Set([...old, ...rows.map((r) => r.id)])];
  }

  /** A stored item's bytes `start`-`end` (inclusive), read a chunk ahead of what is sent. */
  read(item: MediaItem, range?: { start: number; end: number }): Readable {
    const start = range?.start ?? 0;
    const end = range?.end ?? item.bytes - 1;
    const pool = this.#pool;
    const chunk = (seq: number): Promise<Buffer | undefined> => {
      const asked = readChunk(pool, "media_chunks", item.id, seq);
      // A fetch abandoned mid-way leaves the chunk read ahead unawaited.
      asked.catch(() => undefined);
      return asked;
    };
    async function* bytes(): AsyncGenerator<Buffer> {
      const first = Math.floor(start / CHUNK_BYTES);
      // The next chunk is asked for while this one is sent: two in memory at most.
      let next = first * CHUNK_BYTES <= end ? chunk(first) : undefined;
      for (let seq = first; next; seq++) {
        const data = await next;
        next = (seq + 1) * CHUNK_BYTES <= end ? chunk(seq + 1) : undefined;
        if (!data) throw new Error(`media ${item.id} has no chunk ${seq} in the database`);
        const base = seq * CHUNK_BYTES;
        yield data.subarray(Math.max(0, start - base), Math.min(data.length, end - base + 1));
      }
    }
    return Readable.from(bytes(), { objectMode: false });
  }

  async #query<R extends pg.QueryResultRow>(
    sql: string,
    params: unknown[],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.#pool.query<R>(sql, params);
    } catch (err) {
      throw pgStoreError(err);
    }
  }
}
