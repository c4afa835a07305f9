/**
 * `GET /v1/usage`: what the key's member used, and what other members used on the member's own
 * rigs (`served`), per UTC day, model and rig. `?days=` (1 to `MAX_DAYS`, default 30, today
 * included) and `?model=` narrow it. A member never sees other members' use of other rigs.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { sendError, sendJson } from "../http/respond.ts";
import { storeRefusal } from "./jobs/http.ts";
import { StoreError } from "./jobs/store.ts";
import type { UsageBook } from "./usage-book.ts";

/** The longest `?days=` asked for. */
export const MAX_DAYS = 400;
const DEFAULT_DAYS = 30;
const PARAMS = new Set(["days", "model"]);

/** Whether `path` is the usage route's (or under it). */
export const isUsagePath = (path: string): boolean =>
  path === "/v1/usage" || path.startsWith("/v1/usage/");

/**
 * Answers a request under `/v1/usage` for `member`.
 * @example
 * if (isUsagePath(url.pathname)) return usageRoute(book, req, res, member, url);
 */
export async function usageRoute(
  book: UsageBook,
  req: IncomingMessage,
  res: ServerResponse,
  member: string,
  url: URL,
): Promise<void> {
  req.resume();
  if (url.pathname !== "/v1/usage" && url.pathname !== "/v1/usage/") {
    sendError(
      res,
      404,
      "not_found_error",
      `unknown endpoint ${req.method ?? "GET"} ${url.pathname}`,
    );
    return;
  }
  if (req.method !== "GET") {
    sendError(res, 405, "invalid_request_error", `${req.method ?? ""} is not allowed on /v1/usage`);
    return;
  }
  for (const name of url.searchParams.keys())
    if (!PARAMS.has(name)) {
      sendError(
        res,
        400,
        "invalid_request_error",
        `unknown parameter ${JSON.stringify(name.slice(0, 100))} on /v1/usage: it takes days and model`,
      );
      return;
    }
  const daysParam = url.searchParams.get("days");
  const days = daysParam === null ? DEFAULT_DAYS : Number(daysParam);
  if (!/^\d+$/.test(daysParam ?? "1") || !Number.isInteger(days) || days < 1 || days > MAX_DAYS) {
    sendError(
      res,
      400,
      "invalid_request_error",
      `days must be a whole number from 1 to ${MAX_DAYS}; got ${JSON.stringify((daysParam ?? "").slice(0, 100))}`,
    );
    return;
  }
  const model = url.searchParams.get("model");
  if (model === "") {
    sendError(res, 400, "invalid_request_error", "model, when given, must not be empty");
    return;
  }
  let report;
  try {
    report = await book.report(member, { days, ...(model === null ? {} : { model }) });
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
    throw storeRefusal(err);
  }
  sendJson(res, 200, { object: "usage", member, days, ...report });
}
