/**
 * Serves the pages' built assets (`dist/ui/`, see build.ts) and writes their HTML shell. Assets
 * are named by their content's hash, so they are sent with `Cache-Control: immutable`; the shell
 * changes with every build and with the state it shows, so it is sent `no-cache`.
 */
import { existsSync, readFileSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { join, resolve } from "node:path";

/** Where asset URLs live on both servers. */
export const ASSET_PREFIX = "/ui/assets/";

const TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

/** The built assets' folder: `dist/ui` of a checkout, or of the installed package. */
export function defaultAssetDir(): string {
  const here = import.meta.dirname;
  // src/ui in a checkout, dist/src/ui in the package: both have dist/ui two folders up.
  const checkout = resolve(here, "../../dist/ui");
  const installed = resolve(here, "../../ui");
  return existsSync(join(installed, "manifest.json")) ? installed : checkout;
}

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c,
  );
}

export interface ShellOptions {
  title: string;
  /** The bundle to run: `rig.js` or `club.js`. */
  script: string;
  /** Server-rendered HTML shown before (or without) the script. */
  body: string;
  /** Values the script reads from `<meta name=... content=...>`. */
  meta?: Record<string, string>;
}

/**
 * The built assets, read once. Missing assets (a checkout that has not run `npm run build`)
 * leave the pages working without JavaScript and say how to build them.
 */
export class UiAssets {
  readonly #files = new Map<string, { type: string; body: Buffer }>();
  readonly #manifest: Record<string, string> = {};

  constructor(readonly dir = defaultAssetDir()) {
    try {
      Object.assign(
        this.#manifest,
        JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as Record<string, string>,
      );
    } catch {
      return;
    }
    for (const name of Object.values(this.#manifest)) {
      const type = TYPES[name.slice(name.lastIndexOf("."))];
      if (type) this.#files.set(name, { type, body: readFileSync(join(dir, name)) });
    }
  }

  /** Whether the bundles were built. */
  get built(): boolean {
    return this.#files.size > 0;
  }

  /** The URL of a bundle by its plain name (`rig.js`), or undefined when not built. */
  url(name: string): string | undefined {
    const file = this.#manifest[name];
    return file && this.#files.has(file) ? ASSET_PREFIX + file : undefined;
  }

  /** Answers `GET /ui/assets/<name>`; false when `path` is not an asset path. */
  serve(path: string, res: ServerResponse): boolean {
    if (!path.startsWith(ASSET_PREFIX)) return false;
    const file = this.#files.get(path.slice(ASSET_PREFIX.length));
    if (!file) {
      res
        .writeHead(404, { "content-type": "application/json", "cache-control": "no-store" })
        .end(JSON.stringify({ error: { message: `no asset ${path}`, type: "not_found_error" } }));
      return true;
    }
    res
      .writeHead(200, {
        "content-type": file.type,
        "content-length": file.body.length,
        "cache-control": "public, max-age=31536000, immutable",
        "x-content-type-options": "nosniff",
      })
      .end(file.body);
    return true;
  }

  /** The HTML shell of a page. */
  shell(options: ShellOptions): string {
    const css = this.url("style.css");
    const js = this.url(options.script);
    const meta = Object.entries(options.meta ?? {})
      .map(([k, v]) => `<meta name="${escapeHtml(k)}" content="${escapeHtml(v)}">`)
      .join("");
    const notBuilt = js
      ? ""
      : '<p class="note" role="status">The live page is not built in this checkout: run <code>npm run build</code>. What follows is a snapshot.</p>';
    return (
      `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
      `<meta name="viewport" content="width=device-width, initial-scale=1">` +
      // No icon: a browser would otherwise ask for /favicon.ico and log the 404.
      `<title>${escapeHtml(options.title)}</title><link rel="icon" href="data:,">${meta}` +
      (css ? `<link rel="stylesheet" href="${css}">` : "") +
      (js ? `<script type="module" src="${js}"></script>` : "") +
      `</head><body>${notBuilt}<main id="app">${options.body}</main></body></html>`
    );
  }
}

/** Security headers of both pages' HTML: no framing, no foreign scripts, no referrer. */
export const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-cache",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
};
