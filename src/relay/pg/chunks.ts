/**
 * Bytes kept in PostgreSQL as rows of `(id, seq, chunk bytea)`: byte results (`job_results`)
 * and the media library's items (`media_chunks`) of a club's instances. Written from a file one
 * chunk at a time (parameters go in binary); read one row per query, as base64 text.
 */
import { createReadStream } from "node:fs";
import type pg from "pg";
import { pgStoreError } from "./store.ts";

/** Bytes per row. */
export const CHUNK_BYTES = 1024 * 1024;

/** The tables that hold chunks. */
export type ChunkTable = "job_results" | "media_chunks";

/** Replaces `id`'s chunks in `table` with the bytes of the file at `path`, inside `client`'s transaction. */
export async function writeChunks(
  client: pg.PoolClient,
  table: ChunkTable,
  id: string,
  path: string,
): Promise<void> {
  await client.query(`DELETE FROM ${table} WHERE id = $1`, [id]);
  let seq = 0;
  const file = createReadStream(path, { highWaterMark: CHUNK_BYTES });
  for await (const chunk of file as AsyncIterable<Buffer>)
    await client.query(`INSERT INTO ${table} (id, seq, chunk) VALUES ($1, $2, $3)`, [
      id,
      seq++,
      chunk,
    ]);
}

/** Chunk `seq` of `id`, or undefined when there is none. */
export async function readChunk(
  pool: pg.Pool,
  table: ChunkTable,
  id: string,
  seq: number,
): Promise<Buffer | undefined> {
  // node-postgres has no binary results: bytea comes as hex text, twice its size. Base64 is a
  // third more than the bytes, and Node decodes it (line breaks and all) as fast.
  const config = {
    text: `SELECT encode(chunk, 'base64') AS chunk FROM ${table} WHERE id = $1 AND seq = $2`,
    values: [id, seq],
  };
  try {
    const { rows } = await pool.query<{ chunk: string }>(config);
    const text = rows[0]?.chunk;
    return text === undefined ? undefined : Buffer.from(text, "base64");
  } catch (err) {
    throw pgStoreError(err);
  }
}
