/**
 * Where the library's index is kept: the `media` table of the job database (migration 2 in
 * `jobs/migrations.ts`) when the relay has a data directory, nowhere otherwise. The library
 * keeps its index in memory and writes each change through, synchronously: `node:sqlite` is
 * synchronous and the job store's group commits run whole within one turn of the event loop,
 * so a write here never lands inside one of its transactions.
 */
import type { DatabaseSync } from "node:sqlite";
import type { MediaItem } from "./types.ts";

/** The index's persistence: every item at start, then each change. */
export interface MediaRows {
  all(): MediaItem[];
  put(item: MediaItem): void;
  remove(id: string): void;
}

interface Row {
  id: string;
  token: string;
  member: string;
  created: number;
  model: string;
  kind: string;
  content_type: string;
  bytes: number;
  visibility: string;
  collection: string | null;
  pinned: number;
}

/** Rows in the job database's `media` table. */
export function sqliteRows(db: DatabaseSync): MediaRows {
  const put = db.prepare(
    `INSERT INTO media (id, token, member, created, model, kind, content_type, bytes, visibility, collection, pinned)
     VALUES (:id, :token, :member, :created, :model, :kind, :content_type, :bytes, :visibility, :collection, :pinned)
     ON CONFLICT (id) DO UPDATE SET visibility = excluded.visibility,
       collection = excluded.collection, pinned = excluded.pinned`,
  );
  const remove = db.prepare("DELETE FROM media WHERE id = ?");
  return {
    all() {
      const rows = db.prepare("SELECT * FROM media ORDER BY created, id").all() as unknown as Row[];
      return rows.map((r) => ({
        id: r.id,
        token: r.token,
        member: r.member,
        created: r.created,
        model: r.model,
        kind: r.kind as MediaItem["kind"],
        contentType: r.content_type,
        bytes: r.bytes,
        visibility: r.visibility as MediaItem["visibility"],
        collection: r.collection,
        pinned: r.pinned === 1,
      }));
    },
    put(item) {
      put.run({
        id: item.id,
        token: item.token,
        member: item.member,
        created: item.created,
        model: item.model,
        kind: item.kind,
        content_type: item.contentType,
        bytes: item.bytes,
        visibility: item.visibility,
        collection: item.collection,
        pinned: item.pinned ? 1 : 0,
      });
    },
    remove(id) {
      remove.run(id);
    },
  };
}

/** No persistence: a relay without a data directory forgets its library when it stops. */
export const memoryRows: MediaRows = {
  all: () => [],
  put: () => undefined,
  remove: () => undefined,
};
