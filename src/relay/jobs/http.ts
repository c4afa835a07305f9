/** What the long-running work routes share: lists, keys, store refusals and the public base URL. */
import type { IncomingMessage } from "node:http";
import { HttpError, badRequest } from "../../http/error.ts";
import { parseJsonObject, readBody } from "../../http/body.ts";
import type { StoreError } from "./store.ts";
import { LIST_DEFAULT, LIST_MAX } from "./types.ts";

/**
 * The refusal for a request whose store write or read failed: 507 for a full disk or database,
 * 503 otherwise; a database outage carries `code: "database_unavailable"` in the envelope.
 */
export function storeRefusal(err: StoreError): HttpError {
  const message = `${err.message}; try again later`;
  return new HttpError(
    err.code === "store_full" ? 507 : 503,
    "server_error",
    message,
    err.code === "database_unavailable"
      ? { code: err.code, expose: true, cause: err }
      : { cause: err },
  );
}

/** The header marking an answer that an idempotency key replayed. */
export const REPLAYED = { "idempotent-replayed": "true" };

/**
 * The base of URLs handed back (`result_url`): the request's Host, over https when a proxy in
 * front says so with `X-Forwarded-Proto`.
 */
export function baseUrl(req: IncomingMessage): string {
  const proto = req.headers["x-forwarded-proto"] === "https" ? "https" : "http";
  return `${proto}://${req.headers.host ?? "127.0.0.1"}`;
}

/** The `Idempotency-Key` header, checked: 1-255 visible characters. */
export function idempotencyKey(req: IncomingMessage): string | undefined {
  const key = req.headers["idempotency-key"];
  if (key === undefined) return undefined;
  if (typeof key !== "string" || !/^[\x21-\x7e]{1,255}$/.test(key))
    throw badRequest("Idempotency-Key must be 1 to 255 visible ASCII characters");
  return key;
}

/** A JSON object body; an empty body is `{}` (approve and reject take an optional note). */
export async function readJson(
  req: IncomingMessage,
  limit: number,
): Promise<Record<string, unknown>> {
  const buf = await readBody(req, limit);
  return buf.length === 0 ? {} : parseJsonObject(buf);
}

/**
 * One page of a newest-first list: `?limit=` (default 20, at most 100) items after the id in
 * `?after=`, with `has_more`.
 */
export function page<T extends { id: string }>(
  items: T[],
  url: URL,
  view: (item: T) => unknown,
): Record<string, unknown> {
  const raw = url.searchParams.get("limit");
  const limit = raw === null ? LIST_DEFAULT : Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > LIST_MAX)
    throw new HttpError(
      400,
      "invalid_request_error",
      `?limit= must be a whole number from 1 to ${LIST_MAX}`,
    );
  const after = url.searchParams.get("after");
  const from = after === null ? 0 : items.findIndex((i) => i.id === after) + 1;
  const slice = items.slice(from, from + limit);
  return { object: "list", data: slice.map(view), has_more: from + limit < items.length };
}

/** The `?status=` filter of a list, upper-cased; a 400 unless it is one of `statuses`. */
export function statusFilter<S extends string>(url: URL, statuses: readonly S[]): S | undefined {
  const status = url.searchParams.get("status")?.toUpperCase();
  if (status !== undefined && !(statuses as readonly string[]).includes(status))
    throw new HttpError(
      400,
      "invalid_request_error",
      `?status= must be one of ${statuses.join(", ")}`,
    );
  return status as S | undefined;
}
