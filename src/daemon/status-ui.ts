/**
 * The rig's page on the status server: `GET /` (the HTML shell with a server-rendered
 * snapshot), `GET /events` (Server-Sent Events: a `status` event whenever the snapshot changes)
 * and `GET /ui/assets/*` (the built bundles). At most `maxStreams` pages are live at once; a
 * stream whose reader stops reading is closed rather than buffered without bound.
 *
 * The page's actions (`POST /pause`, `/resume`, the engines' start and stop) carry the CSRF
 * token the shell holds: only a page served from this loopback origin can read it.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { PAGE_HEADERS, UiAssets } from "../ui/assets.ts";
import type { ManagedEngine, RigSnapshot } from "../ui/browser/rig-types.ts";
import { renderRigHtml } from "./status-html.ts";
import type { RigView } from "./rig-view.ts";

/** Default of `--page-streams`: live rig pages at once. */
export const DEFAULT_PAGE_STREAMS = 8;
/** The header the page's actions carry the token in. */
export const CSRF_HEADER = "x-club-csrf";
/** Bytes a stream may have waiting for its reader before it is closed. */
const MAX_STREAM_BACKLOG = 1024 * 1024;
/** How often the snapshot is compared with the last one sent. */
const TICK_MS = 1000;
/** A comment at least this often keeps proxies and the browser from giving up. */
const KEEPALIVE_MS = 15_000;
/** How often the managed engines are asked for while a page is open. */
const ENGINES_MS = 3000;
/** Largest `GET /engines` answer read. */
const MAX_ENGINES_BYTES = 1024 * 1024;

/**
 * Asks this status server's own `GET /engines` (the managed engines, where the daemon has
 * them): the page shows that panel only when it answers, whatever serves it.
 */
function askEngines(port: number): Promise<ManagedEngine[] | null> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/engines", timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
        if (body.length > MAX_ENGINES_BYTES) req.destroy();
      });
      res.on("end", () => {
        try {
          const parsed = JSON.parse(body) as { engines?: unknown };
          resolve(
            res.statusCode === 200 && Array.isArray(parsed.engines)
              ? (parsed.engines as ManagedEngine[])
              : null,
          );
        } catch {
          resolve(null);
        }
      });
      res.on("error", () => resolve(null));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(null));
  });
}

export interface RigPageOptions {
  view: RigView;
  maxStreams?: number;
  assets?: UiAssets;
  /** Change the tick (tests of the stream limit leave it as is). */
  tickMs?: number;
}

/** Serialises JSON for an inline `<script type="application/json">`. */
export function inlineJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c");
}

export class RigPage {
  /** Made fresh at every start; the shell carries it to the page. */
  readonly token = randomBytes(24).toString("base64url");
  readonly maxStreams: number;
  readonly #view: RigView;
  readonly #assets: UiAssets;
  readonly #streams = new Set<ServerResponse>();
  readonly #tickMs: number;
  #timer: NodeJS.Timeout | null = null;
  #last = "";
  #lastSent = 0;
  #port = 0;
  #engines: ManagedEngine[] | null = null;
  #enginesAsked = 0;

  constructor(options: RigPageOptions) {
    this.#view = options.view;
    this.#assets = options.assets ?? new UiAssets();
    this.maxStreams = options.maxStreams ?? DEFAULT_PAGE_STREAMS;
    this.#tickMs = options.tickMs ?? TICK_MS;
  }

  /** Whether `value` is this start's token (compared in constant time). */
  checkToken(value: string | string[] | undefined): boolean {
    if (typeof value !== "string") return false;
    const a = Buffer.from(value);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** Live streams now. */
  get streams(): number {
    return this.#streams.size;
  }

  /** Answers the page's GETs; false when `path` is not one of them. */
  handle(path: string, req: IncomingMessage, res: ServerResponse): boolean {
    if (this.#assets.serve(path, res)) return true;
    this.#port = req.socket.localPort ?? this.#port;
    if (path === "/") {
      void this.#refreshEngines().then(() => this.#shell(res));
      return true;
    }
    if (path === "/events") {
      this.#open(req, res);
      return true;
    }
    return false;
  }

  async #refreshEngines(): Promise<void> {
    if (this.#port === 0) return;
    this.#enginesAsked = Date.now();
    this.#engines = await askEngines(this.#port);
  }

  #snapshot(): RigSnapshot {
    return { ...this.#view.snapshot(), engines: this.#engines };
  }

  #shell(res: ServerResponse): void {
    {
      const snapshot = this.#snapshot();
      const body =
        renderRigHtml(snapshot) +
        `<script type="application/json" id="snapshot">${inlineJson(snapshot)}</script>`;
      res.writeHead(200, PAGE_HEADERS).end(
        this.#assets.shell({
          title: `${snapshot.name}: club-provider`,
          script: "rig.js",
          body,
          meta: { csrf: this.token },
        }),
      );
    }
  }

  #open(req: IncomingMessage, res: ServerResponse): void {
    if (this.#streams.size >= this.maxStreams) {
      res.writeHead(503, { "content-type": "application/json", "retry-after": "5" }).end(
        JSON.stringify({
          error: {
            message: `${this.maxStreams} rig pages are open already; close one, or raise --page-streams`,
            type: "overloaded_error",
          },
        }),
      );
      return;
    }
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    });
    this.#streams.add(res);
    const drop = (): void => {
      this.#streams.delete(res);
      if (this.#streams.size === 0) this.#stopTicking();
    };
    req.on("close", drop);
    res.on("close", drop);
    res.write(`retry: 3000\n`);
    this.#send(res, this.#snapshotJson(this.#snapshot()));
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#tick(), this.#tickMs);
      this.#timer.unref();
    }
  }

  #snapshotJson(snapshot: RigSnapshot): string {
    return JSON.stringify(snapshot);
  }

  #send(res: ServerResponse, data: string): void {
    if (res.writableLength > MAX_STREAM_BACKLOG) {
      res.destroy();
      return;
    }
    res.write(`event: status\ndata: ${data}\n\n`);
  }

  #tick(): void {
    if (Date.now() - this.#enginesAsked >= ENGINES_MS) void this.#refreshEngines();
    const snapshot = this.#snapshot();
    // The clock moves every second; what the page shows does not always.
    const key = JSON.stringify({ ...snapshot, now: 0 });
    const now = Date.now();
    if (key !== this.#last) {
      this.#last = key;
      this.#lastSent = now;
      const data = this.#snapshotJson(snapshot);
      for (const res of this.#streams) this.#send(res, data);
    } else if (now - this.#lastSent >= KEEPALIVE_MS) {
      this.#lastSent = now;
      for (const res of this.#streams) res.write(`: keepalive\n\n`);
    }
  }

  #stopTicking(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#last = "";
  }

  /** Ends every stream (the daemon stops). */
  close(): void {
    for (const res of this.#streams) res.end();
    this.#streams.clear();
    this.#stopTicking();
  }
}
