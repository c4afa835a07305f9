/** Reading the club's sharing fields (`visibility`, `collection`, `pinned`) from a JSON body. */
import { VISIBILITIES, type Visibility } from "./types.ts";
import { HttpError } from "../../http/error.ts";

/** What a request says about sharing its results. */
export interface Sharing {
  visibility: Visibility;
  collection: string | null;
}

/** A received value as an error message shows it: JSON, cut at 60 characters. */
export function shown(value: unknown): string {
  return ((JSON.stringify(value) as string | undefined) ?? String(value)).slice(0, 60);
}

const COLLECTION = /^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,99}$/u;

/** `visibility` checked: one of the four names, or undefined when absent. */
export function readVisibility(value: unknown, allowSecret = true): Visibility | undefined {
  if (value === undefined) return undefined;
  const allowed = allowSecret ? VISIBILITIES : VISIBILITIES.filter((v) => v !== "SECRET");
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value))
    throw new HttpError(
      400,
      "invalid_request_error",
      `"visibility" must be one of ${allowed.join(", ")}; got ${shown(value)}`,
    );
  return value as Visibility;
}

/** `collection` checked: 1-100 letters, digits, spaces, `.`, `_` or `-`; null clears it. */
export function readCollection(value: unknown): string | null | undefined {
  if (value === undefined || value === null) return value;
  if (typeof value !== "string" || !COLLECTION.test(value))
    throw new HttpError(
      400,
      "invalid_request_error",
      `"collection" must be 1 to 100 letters, digits, spaces, ".", "_" or "-", starting with a letter or digit; got ${shown(value)}`,
    );
  return value;
}

/** The sharing fields of a JSON inference body; UNLISTED and no collection when absent. */
export function readSharing(body: Record<string, unknown>): Sharing {
  return {
    visibility: readVisibility(body.visibility) ?? "UNLISTED",
    collection: readCollection(body.collection) ?? null,
  };
}
