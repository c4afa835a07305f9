/**
 * The work API's route table: each route is a method, a pattern such as `/v1/jobs/:id/result`
 * and a handler. A request is matched once against the whole table; a path no pattern matches is
 * a 404, and a path that matches only under another method is a 405, both the shared answers of
 * `unknownEndpoint`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { unknownEndpoint } from "../../http/error.ts";
import { decodePart } from "../target.ts";
import type { RunRecord } from "../workflows/types.ts";
import type { BatchRecord, JobRecord } from "./types.ts";

/**
 * The member's records other instances of the club keep: the lists add them (a lone relay, or
 * a request for one record, has none).
 */
export interface Elsewhere {
  jobs: JobRecord[];
  batches: BatchRecord[];
  runs: RunRecord[];
}

/** One request to the work API: the member it is for and the values of its pattern's `:names`. */
export interface WorkRequest<P extends string = string> {
  req: IncomingMessage;
  res: ServerResponse;
  member: string;
  url: URL;
  /** The decoded path segment of each `:name` of the matched pattern. */
  params: Readonly<Record<P, string>>;
  elsewhere?: Elsewhere;
}

/** The `:names` of a pattern: `"/v1/jobs/:id/result"` gives `"id"`. */
export type ParamNames<P extends string> = P extends `${string}:${infer N}/${infer R}`
  ? N | ParamNames<R>
  : P extends `${string}:${infer N}`
    ? N
    : never;

/** One row of the table. */
export interface Route {
  method: "GET" | "POST";
  pattern: string;
  handle: (r: WorkRequest) => Promise<void>;
}

/**
 * A row of the table, its handler typed by the pattern's `:names`.
 * @example
 * route("GET", "/v1/jobs/:id", ({ res, params }) => show(res, params.id));
 */
export function route<P extends string>(
  method: Route["method"],
  pattern: P,
  handle: (r: WorkRequest<ParamNames<P>>) => Promise<void> | void,
): Route {
  return { method, pattern, handle: async (r) => handle(r) };
}

/** The segments of a path: empty ones dropped, each decoded (a malformed escape stays as it is, and matches no literal). */
function segments(path: string): string[] {
  return path
    .split("/")
    .filter((p) => p !== "")
    .map((p) => decodePart(p) ?? p);
}

/** The `:name` values when `pattern` (already split) matches `parts`, else undefined. */
function match(
  pattern: readonly string[],
  parts: readonly string[],
): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, p] of pattern.entries()) {
    const part = parts[i] ?? "";
    if (p.startsWith(":")) params[p.slice(1)] = part;
    else if (p !== part) return undefined;
  }
  return params;
}

/** What {@link routeTable} gives: one function that answers a request by its table. */
export type RouteTable = (r: Omit<WorkRequest, "params">) => Promise<void>;

/**
 * The table of `routes`, matched once per request. Throws the 404 or 405 of `unknownEndpoint`
 * when no row takes the request's method and path.
 */
export function routeTable(routes: readonly Route[]): RouteTable {
  const rows = routes.map((r) => ({ ...r, split: segments(r.pattern) }));
  return async (r) => {
    const parts = segments(r.url.pathname);
    const method = r.req.method ?? "";
    const allowed: string[] = [];
    for (const row of rows) {
      const params = match(row.split, parts);
      if (params === undefined) continue;
      if (row.method === method) return row.handle({ ...r, params });
      allowed.push(row.method);
    }
    const path = r.url.pathname;
    throw unknownEndpoint(method, path, new Set(allowed.length > 0 ? [path] : []), allowed);
  };
}
