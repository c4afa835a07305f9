/**
 * The media library: results the relay delivered, kept as files in one directory with an
 * index in memory (written through to `rows.ts`), fetched by their unguessable token. SECRET
 * results are never indexed: a one-shot entry, held in memory only, deleted once fetched or at
 * its expiry. Sizes are counted per member against the operator's quota.
 *
 * On an instance of a club (`mirror`), every stored item is also copied into PostgreSQL when it
 * is committed (`cluster/media.ts`), and the database is the index: tokens, lists, the gallery,
 * changes and deletions are read and written there, so every instance answers the same; the
 * bytes are served from this instance's file when it made the item, else from the database.
 */
import { randomBytes } from "node:crypto";
import { createReadStream, type ReadStream } from "node:fs";
import { open, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../../log.ts";
import { describeError } from "../../errors.ts";
import type { Readable } from "node:stream";
import type { MediaMirror } from "../cluster/media.ts";
import type { MediaRows } from "./rows.ts";
import { type MediaItem, type MediaLimits, type Visibility } from "./types.ts";
import { HttpError } from "../../http/error.ts";

/** What a new result says about itself; the library adds id, token, size and time. */
export interface NewItem {
  member: string;
  model: string;
  kind: MediaItem["kind"];
  contentType: string;
  visibility: Visibility;
  collection: string | null;
}

/** Most items one list or the gallery reads from a club's database. */
const MAX_LISTED = 10_000;

/** Token: 18 random bytes (144 bits), URL-safe. */
const newToken = (): string => randomBytes(18).toString("base64url");
const newId = (): string => `file_${randomBytes(12).toString("hex")}`;

export class MediaLibrary {
  readonly #items = new Map<string, MediaItem>();
  readonly #byToken = new Map<string, MediaItem>();
  readonly #secrets = new Map<string, { item: MediaItem; timer: NodeJS.Timeout }>();

  private constructor(
    readonly dir: string,
    readonly limits: MediaLimits,
    readonly rows: MediaRows,
    readonly log: Logger,
    readonly mirror?: MediaMirror,
  ) {}

  /** Loads the index and removes files no item points at (part files, SECRET leftovers). */
  static async open(
    dir: string,
    rows: MediaRows,
    limits: MediaLimits,
    log: Logger,
    mirror?: MediaMirror,
  ): Promise<MediaLibrary> {
    const lib = new MediaLibrary(dir, limits, rows, log, mirror);
    for (const item of rows.all()) lib.#index(item);
    const stale = (await readdir(dir)).filter((name) => !lib.#items.has(name));
    await Promise.all(stale.map((name) => rm(join(dir, name), { force: true })));
    return lib;
  }

  #index(item: MediaItem): void {
    this.#items.set(item.id, item);
    this.#byToken.set(item.token, item);
  }

  /** In a club: what each member keeps in the club's database, as last counted. */
  readonly #counted = new Map<string, number>();

  /** In a club: counts what `member` keeps at every instance, for `checkQuota`. */
  async countUsage(member: string): Promise<void> {
    if (!this.mirror) return;
    const bytes = await this.mirror.bytesOf(member);
    if (bytes > 0) this.#counted.set(member, bytes);
    else this.#counted.delete(member);
  }

  /** Bytes `member` keeps in the library (in a club, in every instance's, as last counted). */
  usage(member: string): number {
    if (this.mirror) return this.#counted.get(member) ?? 0;
    let n = 0;
    for (const item of this.#items.values()) if (item.member === member) n += item.bytes;
    return n;
  }

  /** Refuses a new stored result for a member at or over quota (SECRET is never stored). */
  checkQuota(member: string, visibility: Visibility): void {
    if (visibility === "SECRET") return;
    const used = this.usage(member);
    if (used >= this.limits.maxBytesPerMember)
      throw new HttpError(
        403,
        "permission_error",
        `your media library holds ${used} bytes, at its limit of ${this.limits.maxBytesPerMember}: nothing new can be stored. Delete results (DELETE /v1/files/{id}) or send "visibility": "SECRET"`,
        { code: "media_quota_exceeded", expose: true },
      );
  }

  /** A fresh id and token, and the path the bytes are written to before `commit`. */
  reserve(): { id: string; token: string; part: string } {
    const id = newId();
    return { id, token: newToken(), part: join(this.dir, `${id}.part`) };
  }

  /** Makes a written part file an item: synced, renamed, indexed (SECRET: one fetch, then gone). */
  async commit(id: string, token: string, bytes: number, meta: NewItem): Promise<MediaItem> {
    const part = join(this.dir, `${id}.part`);
    const fh = await open(part, "r+");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(part, join(this.dir, id));
    const item: MediaItem = {
      ...meta,
      id,
      token,
      created: Date.now(),
      bytes,
      pinned: false,
    };
    if (item.visibility === "SECRET") {
      const timer = setTimeout(() => void this.#dropSecret(item.token), this.limits.secretTtlMs);
      timer.unref();
      this.#secrets.set(item.token, { item, timer });
      return item;
    }
    try {
      this.rows.put(item);
    } catch (err) {
      await rm(join(this.dir, id), { force: true });
      throw err;
    }
    try {
      // In a club the URL is given out only once every instance can serve it.
      await this.mirror?.put(item, join(this.dir, id));
    } catch (err) {
      this.rows.remove(id);
      await rm(join(this.dir, id), { force: true });
      throw err;
    }
    this.#index(item);
    return item;
  }

  /** Stores bytes held in memory (an image decoded from the provider's `b64_json`). */
  async store(data: Buffer, meta: NewItem): Promise<MediaItem> {
    const { id, token, part } = this.reserve();
    try {
      await writeFile(part, data, { mode: 0o600 });
      return await this.commit(id, token, data.length, meta);
    } catch (err) {
      await this.discard(id);
      throw err;
    }
  }

  /** Forgets a part file that never became an item. */
  async discard(id: string): Promise<void> {
    await rm(join(this.dir, `${id}.part`), { force: true });
  }

  /** The item a URL token names: a library item, or a SECRET one still waiting for its fetch. */
  byToken(token: string): { item: MediaItem; secret: boolean } | undefined {
    const item = this.#byToken.get(token);
    if (item) return { item, secret: false };
    const secret = this.#secrets.get(token);
    return secret ? { item: secret.item, secret: true } : undefined;
  }

  /** A SECRET item is taken by its one fetch: no second one, the bytes deleted after it. */
  takeSecret(token: string): MediaItem | undefined {
    const secret = this.#secrets.get(token);
    if (!secret) return undefined;
    clearTimeout(secret.timer);
    this.#secrets.delete(token);
    return secret.item;
  }

  async #dropSecret(token: string): Promise<void> {
    const item = this.takeSecret(token);
    if (item) await this.deleteFile(item.id);
  }

  /** Removes an item's bytes (a SECRET one's after its fetch). */
  async deleteFile(id: string): Promise<void> {
    await rm(join(this.dir, id), { force: true }).catch((err: unknown) =>
      this.log.warn({ err: describeError(err), id }, "could not remove a media file"),
    );
  }

  /**
   * The item a URL token names, as `byToken`; in a club, any instance's item, as the database
   * has it now (a change or deletion made at another instance counts at once).
   */
  async find(token: string): Promise<{ item: MediaItem; secret: boolean } | undefined> {
    if (!this.mirror) return this.byToken(token);
    const secret = this.#secrets.get(token);
    if (secret) return { item: secret.item, secret: true };
    const item = await this.mirror.byToken(token);
    return item && { item, secret: false };
  }

  /** An item's bytes, `start`-`end` inclusive, opened before it resolves. */
  read(item: MediaItem, range?: { start: number; end: number }): Promise<Readable> {
    // Another instance's item: from the database, one chunk at a time.
    if (this.mirror && !this.#items.has(item.id) && !this.#secrets.has(item.token))
      return Promise.resolve(this.mirror.read(item, range));
    const stream: ReadStream = createReadStream(join(this.dir, item.id), range);
    return new Promise((resolve, reject) => {
      stream.once("open", () => resolve(stream));
      stream.once("error", reject);
    });
  }

  /** One of `member`'s items (in a club, made at any instance). */
  async own(member: string, id: string): Promise<MediaItem | undefined> {
    if (this.mirror) return this.mirror.own(member, id);
    const item = this.#items.get(id);
    return item?.member === member ? item : undefined;
  }

  /** `member`'s items, newest first, in `collection` when given (in a club, every instance's). */
  async list(member: string, collection?: string): Promise<MediaItem[]> {
    const all = this.mirror ? await this.#everywhere(member) : this.#newest();
    return all.filter(
      (i) => i.member === member && (collection === undefined || i.collection === collection),
    );
  }

  /** Every PUBLIC item, newest first (in a club, every instance's). */
  async gallery(): Promise<MediaItem[]> {
    const all = this.mirror ? await this.#everywhere(undefined) : this.#newest();
    return all.filter((i) => i.visibility === "PUBLIC");
  }

  #newest(items: Iterable<MediaItem> = this.#items.values()): MediaItem[] {
    return [...items].sort((a, b) => b.created - a.created || (a.id < b.id ? 1 : -1));
  }

  /** In a club: every instance's items as the database has them now. */
  async #everywhere(member: string | undefined): Promise<MediaItem[]> {
    const mirror = this.mirror;
    if (!mirror) return this.#newest();
    return this.#newest(await mirror.list(member, MAX_LISTED));
  }

  /**
   * Changes an item's visibility, collection or pin (SECRET is for new results only); in a
   * club, in the database first, which every instance serves by.
   */
  async update(
    item: MediaItem,
    patch: Partial<Pick<MediaItem, "visibility" | "collection" | "pinned">>,
  ): Promise<MediaItem> {
    const next = { ...item, ...patch };
    await this.mirror?.update(next);
    if (this.mirror && !this.#items.has(item.id)) return next;
    this.rows.put(next);
    this.#index(next);
    return next;
  }

  /** Removes an item: row first (so it is never served again), then its bytes. */
  async remove(item: MediaItem): Promise<void> {
    await this.mirror?.remove(item.id);
    if (this.mirror && !this.#items.has(item.id)) return;
    this.rows.remove(item.id);
    this.#items.delete(item.id);
    this.#byToken.delete(item.token);
    await this.deleteFile(item.id);
  }

  /**
   * Removes unpinned items older than the age limit, oldest first; resolves to how many. In a
   * club, the database's copy decides (a pin set at another instance holds, and every instance
   * prunes what a dead one made), and local files whose item was deleted elsewhere go too.
   */
  async prune(now = Date.now()): Promise<number> {
    if (this.mirror) {
      const gone = await this.mirror.prune(
        this.limits.maxAgeMs > 0 ? now - this.limits.maxAgeMs : undefined,
        [...this.#items.keys()],
      );
      for (const id of gone) {
        const item = this.#items.get(id);
        if (!item) continue;
        this.rows.remove(id);
        this.#items.delete(id);
        this.#byToken.delete(item.token);
        await this.deleteFile(id);
      }
      return gone.length;
    }
    if (this.limits.maxAgeMs <= 0) return 0;
    const old = [...this.#items.values()]
      .filter((i) => !i.pinned && now - i.created > this.limits.maxAgeMs)
      .sort((a, b) => a.created - b.created);
    for (const item of old) await this.remove(item);
    return old.length;
  }

  /** Drops pending SECRET results (their bytes too). */
  async close(): Promise<void> {
    await Promise.all([...this.#secrets.keys()].map((t) => this.#dropSecret(t)));
  }
}
