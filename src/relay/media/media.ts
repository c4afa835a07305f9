/**
 * The media library put together for the relay: its directory (`<data dir>/media`, or a
 * temporary one removed at close), its index (the job database's `media` table, or memory),
 * the planner `route` uses for results, the routes, and the hourly age pruning.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import type { Logger } from "../../log.ts";
import { describeError } from "../../errors.ts";
import { MediaLibrary } from "./library.ts";
import { MediaPlanner } from "./plan.ts";
import { filesRoutes, openMediaRoutes } from "./routes.ts";
import type { MediaMirror } from "../cluster/media.ts";
import { memoryRows, sqliteRows } from "./rows.ts";
import { DEFAULT_MEDIA_LIMITS, type MediaLimits } from "./types.ts";
import { resolveSpeakers, voiceRoutes } from "./voice-routes.ts";
import { VoiceLibrary } from "./voices.ts";

/** What `createMedia` needs. */
export interface MediaOptions {
  /** The relay's data directory; without it the library lives in a temporary directory. */
  dataDir?: string;
  /** The job database, when there is one: the index is its `media` table. */
  database?: DatabaseSync;
  limits?: Partial<MediaLimits>;
  maxJsonBytes: number;
  log: Logger;
  /** An instance of a club: stored items are copied to, and looked up in, PostgreSQL. */
  mirror?: MediaMirror;
}

/** The library as the public API uses it. */
export interface Media {
  library: MediaLibrary;
  planner: MediaPlanner;
  /** `/v1/media/{token}` and `/v1/gallery`: `member` when a valid key came along. */
  open(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    member: string | undefined,
  ): Promise<void>;
  /** The member's `/v1/files` routes. */
  files(req: IncomingMessage, res: ServerResponse, url: URL, member: string): Promise<void>;
  /** The voice library's routes (`voice-routes.ts`). */
  voices(req: IncomingMessage, res: ServerResponse, url: URL, member: string): Promise<void>;
  /**
   * A JSON call's body as the provider gets it: a `voice/generations` call's sample ids
   * resolved (throws an `HttpError` for a bad or unknown one); others as they are.
   */
  prepare(
    path: string,
    member: string,
    json: Record<string, unknown>,
  ): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

const PRUNE_EVERY_MS = 3_600_000;

/**
 * Opens the library and starts its pruning.
 * @example
 * const media = await createMedia({ dataDir, database: work.database, maxJsonBytes, log });
 */
export async function createMedia(o: MediaOptions): Promise<Media> {
  const limits: MediaLimits = { ...DEFAULT_MEDIA_LIMITS, ...o.limits };
  const temporary = o.dataDir === undefined;
  const dir = o.dataDir ? join(o.dataDir, "media") : await mkdtemp(join(tmpdir(), "club-media-"));
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const rows = o.database ? sqliteRows(o.database) : memoryRows;
  const library = await MediaLibrary.open(dir, rows, limits, o.log, o.mirror);
  const planner = new MediaPlanner(library, o.log);
  const voiceDir = o.dataDir
    ? join(o.dataDir, "voices")
    : join(dir, "..", `${dir.split("/").pop() ?? ""}-voices`);
  await mkdir(voiceDir, { recursive: true, mode: 0o700 });
  const voices = await VoiceLibrary.open(voiceDir, o.database);
  const prune = (): void => {
    library
      .prune()
      .then((n) => {
        if (n > 0) o.log.info({ removed: n }, "removed %d media result(s) past their age", n);
      })
      .catch((err: unknown) => o.log.error({ err: describeError(err) }, "pruning media failed"));
  };
  prune();
  const timer = setInterval(prune, PRUNE_EVERY_MS);
  timer.unref();
  return {
    library,
    planner,
    open: (req, res, url, member) => openMediaRoutes(library, req, res, url, member),
    files: (req, res, url, member) => filesRoutes(library, req, res, url, member, o.maxJsonBytes),
    voices: (req, res, url, member) => voiceRoutes(voices, limits, req, res, url, member),
    prepare: (path, member, json) =>
      path === "/v1/voice/generations"
        ? resolveSpeakers(voices, member, json)
        : Promise.resolve(json),
    async close() {
      clearInterval(timer);
      await library.close();
      if (temporary) {
        await rm(dir, { recursive: true, force: true });
        await rm(voiceDir, { recursive: true, force: true });
      }
    },
  };
}
