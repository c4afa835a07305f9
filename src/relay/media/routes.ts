/**
 * The library's routes: `/v1/media/{token}` (the URLs results are fetched by, no key needed
 * except for PRIVATE), `GET /v1/gallery` (PUBLIC results, no key), and the member's own
 * `GET /v1/files`, `GET`/`PATCH`/`DELETE /v1/files/{id}`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { parseJsonObject, readBody } from "../../http/body.ts";
import { baseUrl } from "../jobs/http.ts";
import { sendJson } from "../../http/respond.ts";
import type { MediaLibrary } from "./library.ts";
import { mediaPath } from "./plan.ts";
import { serveMedia } from "./serve.ts";
import { readCollection, readVisibility } from "./sharing.ts";
import { type MediaItem } from "./types.ts";
import { HttpError } from "../../http/error.ts";

/** Whether a path is one of the routes a caller may use without a key. */
export function isOpenMediaPath(path: string): boolean {
  return path.startsWith("/v1/media/") || path === "/v1/gallery" || path === "/v1/gallery/";
}

/** Whether a path is one of the member's library routes. */
export function isFilesPath(path: string): boolean {
  return path === "/v1/files" || path.startsWith("/v1/files/");
}

const MAX_PAGE = 100;

/** An item as its owner sees it (`own`) or as the gallery shows it. */
function view(item: MediaItem, base: string, own: boolean) {
  return {
    id: item.id,
    object: "file",
    model: item.model,
    kind: item.kind,
    created: Math.floor(item.created / 1000),
    size: item.bytes,
    content_type: item.contentType,
    url: base + mediaPath(item.token),
    ...(own
      ? { visibility: item.visibility, collection: item.collection, pinned: item.pinned }
      : {}),
  };
}

/** A page of `items` after the cursor `after` (an id), `limit` long (1-100, default 20). */
function page(items: MediaItem[], url: URL): { data: MediaItem[]; has_more: boolean } {
  const raw = url.searchParams.get("limit");
  const limit = raw === null ? 20 : Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
    throw new HttpError(
      400,
      "invalid_request_error",
      `"limit" must be an integer from 1 to ${MAX_PAGE}; got ${JSON.stringify(raw)}`,
    );
  const after = url.searchParams.get("after");
  let from = 0;
  if (after !== null) {
    const at = items.findIndex((i) => i.id === after);
    if (at < 0)
      throw new HttpError(
        400,
        "invalid_request_error",
        `"after" names no item in this list: ${JSON.stringify(after.slice(0, 60))}`,
      );
    from = at + 1;
  }
  const data = items.slice(from, from + limit);
  return { data, has_more: from + limit < items.length };
}

/** Answers `/v1/media/…` and `/v1/gallery`; `member` is whose key came, if any. */
export async function openMediaRoutes(
  library: MediaLibrary,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  member: string | undefined,
): Promise<void> {
  const method = req.method ?? "GET";
  req.resume();
  if (method !== "GET" && method !== "HEAD")
    throw new HttpError(
      405,
      "invalid_request_error",
      `${method} is not allowed on ${url.pathname}`,
    );
  if (url.pathname.startsWith("/v1/media/")) {
    const token = url.pathname.slice("/v1/media/".length);
    await serveMedia(library, req, res, token, member);
    return;
  }
  const base = baseUrl(req);
  const { data, has_more } = page(await library.gallery(), url);
  sendJson(res, 200, { object: "list", data: data.map((i) => view(i, base, false)), has_more });
}

/** Answers the member's `/v1/files` routes. */
export async function filesRoutes(
  library: MediaLibrary,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  member: string,
  maxJsonBytes: number,
): Promise<void> {
  const method = req.method ?? "GET";
  const base = baseUrl(req);
  const rest = url.pathname.slice("/v1/files".length).replace(/^\//, "").replace(/\/$/, "");
  if (rest === "") {
    req.resume();
    if (method !== "GET")
      throw new HttpError(405, "invalid_request_error", `${method} is not allowed on /v1/files`);
    const collection = readCollection(url.searchParams.get("collection") ?? undefined) ?? undefined;
    const { data, has_more } = page(await library.list(member, collection), url);
    sendJson(res, 200, { object: "list", data: data.map((i) => view(i, base, true)), has_more });
    return;
  }
  const item = await library.own(member, rest);
  if (!item) {
    req.resume();
    throw new HttpError(
      404,
      "not_found_error",
      `no file ${JSON.stringify(rest.slice(0, 80))} in your library`,
    );
  }
  if (method === "GET") {
    req.resume();
    sendJson(res, 200, view(item, base, true));
  } else if (method === "DELETE") {
    req.resume();
    await library.remove(item);
    sendJson(res, 200, { id: item.id, object: "file", deleted: true });
  } else if (method === "PATCH") {
    const body = parseJsonObject(await readBody(req, maxJsonBytes));
    const visibility = readVisibility(body.visibility, false);
    const collection = readCollection(body.collection);
    if (body.pinned !== undefined && typeof body.pinned !== "boolean")
      throw new HttpError(400, "invalid_request_error", `"pinned" must be true or false`);
    const unknown = Object.keys(body).filter(
      (k) => !["visibility", "collection", "pinned"].includes(k),
    );
    if (unknown.length > 0)
      throw new HttpError(
        400,
        "invalid_request_error",
        `unknown field "${unknown[0]?.slice(0, 60)}": a file takes visibility, collection and pinned`,
      );
    const next = await library.update(item, {
      ...(visibility ? { visibility } : {}),
      ...(collection !== undefined ? { collection } : {}),
      ...(typeof body.pinned === "boolean" ? { pinned: body.pinned } : {}),
    });
    sendJson(res, 200, view(next, base, true));
  } else {
    req.resume();
    throw new HttpError(405, "invalid_request_error", `${method} is not allowed on /v1/files/{id}`);
  }
}
