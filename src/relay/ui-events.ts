/**
 * The club page's live stream, `GET /ui/api/events`: Server-Sent Events that tell a signed-in
 * member's page when to read its lists again. A `change` event names what changed: `work` (one
 * of the member's jobs, batches or workflow runs was saved) or `providers` (a rig connected,
 * changed what it serves, paused or left). The page reads the lists with its key, so the stream
 * carries no data of its own.
 *
 * The key travels as `Authorization`, as on every other request: the page reads the stream
 * with `fetch()`, not `EventSource` (which cannot send headers), so the key is never in a URL.
 * Each member may hold `maxPerMember` streams at once (429 beyond); a stream whose reader stops
 * reading is closed rather than buffered without bound.
 */
import type { ServerResponse } from "node:http";
import type { Work } from "./jobs/work.ts";
import type { Registry } from "./registry.ts";
import { sendError } from "../http/respond.ts";

/** Default of `--ui-streams`: live club pages one member may have open at once. */
export const DEFAULT_UI_STREAMS = 4;
/** Bytes a stream may have waiting for its reader before it is closed. */
const MAX_BACKLOG = 64 * 1024;
/** A comment at least this often keeps proxies and the browser from giving up on a stream. */
const KEEPALIVE_MS = 15_000;
/** Changes this close together go out as one event. */
const COALESCE_MS = 100;

type What = "work" | "providers";

interface Stream {
  res: ServerResponse;
  pending: Set<What>;
  timer: NodeJS.Timeout | null;
}

export interface UiEventsOptions {
  registry: Registry;
  work?: Work | undefined;
  /** Streams one member may hold at once (default `DEFAULT_UI_STREAMS`). */
  maxPerMember?: number;
  keepAliveMs?: number;
}

/**
 * The open streams, by member.
 * @example
 * const events = new UiEvents({ registry, work, maxPerMember: 4 });
 * events.open(res, "alice"); // GET /ui/api/events
 * events.close();
 */
export class UiEvents {
  readonly maxPerMember: number;
  readonly #byMember = new Map<string, Set<Stream>>();
  readonly #unsubscribe: (() => void)[] = [];
  readonly #keepAlive: NodeJS.Timeout;

  constructor(options: UiEventsOptions) {
    this.maxPerMember = options.maxPerMember ?? DEFAULT_UI_STREAMS;
    this.#unsubscribe.push(options.registry.listen(() => this.#tellAll("providers")));
    if (options.work)
      this.#unsubscribe.push(options.work.onChange((member) => this.#tell(member, "work")));
    this.#keepAlive = setInterval(() => {
      for (const streams of this.#byMember.values())
        for (const s of streams) this.#write(s, ": keepalive\n\n");
    }, options.keepAliveMs ?? KEEPALIVE_MS);
    this.#keepAlive.unref();
  }

  /** Streams open for `member` now. */
  count(member: string): number {
    return this.#byMember.get(member)?.size ?? 0;
  }

  /** Answers `GET /ui/api/events` for a member whose key was checked. */
  open(res: ServerResponse, member: string): void {
    const streams = this.#byMember.get(member) ?? new Set<Stream>();
    if (streams.size >= this.maxPerMember) {
      sendError(
        res,
        429,
        "rate_limit_error",
        `${member} has ${this.maxPerMember} live club pages open already: close one (the page then refreshes every few seconds instead), or the operator raises --ui-streams`,
        { "retry-after": "30" },
      );
      return;
    }
    this.#byMember.set(member, streams);
    const stream: Stream = { res, pending: new Set(), timer: null };
    streams.add(stream);
    const drop = (): void => {
      if (stream.timer) clearTimeout(stream.timer);
      streams.delete(stream);
      if (streams.size === 0 && this.#byMember.get(member) === streams)
        this.#byMember.delete(member);
    };
    // Not the request's "close": that fires once its (empty) body has been read.
    res.on("close", drop);
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      // nginx and others would hold the events back otherwise.
      "x-accel-buffering": "no",
    });
    this.#write(stream, `event: hello\ndata: {"member":${JSON.stringify(member)}}\n\n`);
  }

  #tell(member: string, what: What): void {
    for (const s of this.#byMember.get(member) ?? []) this.#queue(s, what);
  }

  #tellAll(what: What): void {
    for (const streams of this.#byMember.values()) for (const s of streams) this.#queue(s, what);
  }

  #queue(s: Stream, what: What): void {
    s.pending.add(what);
    s.timer ??= setTimeout(() => {
      s.timer = null;
      const data = JSON.stringify({ changed: [...s.pending] });
      s.pending.clear();
      this.#write(s, `event: change\ndata: ${data}\n\n`);
    }, COALESCE_MS);
  }

  #write(s: Stream, text: string): void {
    if (s.res.destroyed) return;
    if (s.res.writableLength > MAX_BACKLOG) {
      s.res.destroy();
      return;
    }
    s.res.write(text);
  }

  /** Ends every stream (the relay stops). */
  close(): void {
    clearInterval(this.#keepAlive);
    for (const u of this.#unsubscribe) u();
    for (const streams of this.#byMember.values())
      for (const s of streams) {
        if (s.timer) clearTimeout(s.timer);
        s.res.end();
      }
    this.#byMember.clear();
  }
}
