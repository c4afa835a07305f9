/**
 * The relay's API keys: each key belongs to one member; a key marked `admin` is the operator's
 * (the club page's admin view). Keys are held only as SHA-256 digests and compared in constant
 * time, so neither memory dumps nor response timing reveal them.
 */
import { hash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { UserError } from "../errors.ts";

function digest(key: string): Buffer {
  return hash("sha256", key, "buffer");
}

/** A key's entry: its member, or its member and whether it is the operator's. */
export type KeyEntry = string | { member: string; admin?: boolean };

export class KeyRing {
  readonly #byDigest = new Map<string, { digest: Buffer; member: string; admin: boolean }>();

  constructor(keys: Record<string, KeyEntry>) {
    for (const [key, entry] of Object.entries(keys)) {
      const d = digest(key);
      const { member, admin = false } = typeof entry === "string" ? { member: entry } : entry;
      this.#byDigest.set(d.toString("hex"), { digest: d, member, admin });
    }
  }

  /** Every member that has a key, sorted. */
  members(): string[] {
    return [...new Set([...this.#byDigest.values()].map((e) => e.member))].sort();
  }

  get size(): number {
    return this.#byDigest.size;
  }

  /** The member a key belongs to, or undefined. */
  member(key: string | undefined): string | undefined {
    return this.lookup(key)?.member;
  }

  /**
   * The member a key belongs to and a stable id of the key (its digest, hex), or undefined:
   * per-key state such as rate limits is keyed by the id, so raw keys are not kept around.
   */
  lookup(key: string | undefined): { member: string; id: string; admin: boolean } | undefined {
    if (!key) return undefined;
    const d = digest(key);
    const id = d.toString("hex");
    const entry = this.#byDigest.get(id);
    return entry && timingSafeEqual(entry.digest, d)
      ? { member: entry.member, id, admin: entry.admin }
      : undefined;
  }

  /** The bearer token of an `Authorization` header, if it has one. */
  static bearer(header: string | undefined): string | undefined {
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m?.[1];
  }
}

/** Shortest key the relay loads, and the fewest different characters it must hold. */
export const MIN_KEY_LENGTH = 20;
const MIN_KEY_SYMBOLS = 10;
const KEY_ADVICE = `keys must be at least ${MIN_KEY_LENGTH} characters of random text with ${MIN_KEY_SYMBOLS} or more different characters (make one with: openssl rand -hex 24)`;

/** Why `key` is too weak to guard a member's account, or undefined when it is strong enough. */
export function weakKey(key: string): string | undefined {
  if (key.length < MIN_KEY_LENGTH) return `is ${key.length} characters long`;
  if (new Set(key).size < MIN_KEY_SYMBOLS)
    return `has only ${new Set(key).size} different characters`;
  if (/\s/.test(key)) return "contains white space";
  return undefined;
}

/**
 * Keys from a JSON file `{"<key>": "<member>"}` (or `{"<key>": {"member": "<member>", "admin":
 * true}}` for the operator's key) and/or the `CLUB_RELAY_KEYS` variable
 * (`key1=member1,key2=member2`). Reports every problem at once.
 */
export function loadKeys(options: { file?: string; env?: string }): KeyRing {
  const keys: Record<string, KeyEntry> = {};
  const problems: string[] = [];
  if (options.file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(options.file, "utf8"));
    } catch (err) {
      throw new UserError(
        "keys_unreadable",
        `cannot read the keys file ${options.file}: ${(err as Error).message}. ` +
          'It must be JSON mapping each key to its member: {"<key>": "<member>"}.',
      );
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      problems.push(`${options.file}: must be an object mapping each key to its member`);
    } else {
      for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
        const entry = keyEntry(value);
        if (typeof entry === "object" && "error" in entry)
          problems.push(`${options.file}: key "${key.slice(0, 2)}…": ${entry.error}`);
        else if (weakKey(key))
          problems.push(`${options.file}: key "${key.slice(0, 2)}…" ${weakKey(key)}`);
        else keys[key] = entry;
      }
    }
  }
  if (options.env) {
    for (const pair of options.env.split(",").filter(Boolean)) {
      const eq = pair.indexOf("=");
      const key = eq < 0 ? pair : pair.slice(0, eq);
      if (eq < 0 || eq === pair.length - 1)
        problems.push(`CLUB_RELAY_KEYS: "${pair.slice(0, 2)}…" is not key=member`);
      else if (weakKey(key))
        problems.push(`CLUB_RELAY_KEYS: key "${key.slice(0, 2)}…" ${weakKey(key)}`);
      else keys[key] = pair.slice(eq + 1);
    }
  }
  if (problems.length)
    throw new UserError(
      "keys_invalid",
      `bad relay keys:\n  ${problems.join("\n  ")}\n${KEY_ADVICE}`,
    );
  if (Object.keys(keys).length === 0)
    throw new UserError(
      "keys_missing",
      "the relay has no API keys: pass --keys keys.json (a JSON object mapping each key to its member) or set CLUB_RELAY_KEYS=key=member",
    );
  return new KeyRing(keys);
}

/** A keys file's value as an entry, or why it is not one. */
function keyEntry(value: unknown): KeyEntry | { error: string } {
  const member =
    typeof value === "object" && value !== null ? (value as { member?: unknown }).member : value;
  if (typeof member !== "string" || member === "")
    return {
      error:
        'the member must be a non-empty string: "<member>" or {"member": "<member>", "admin": true}',
    };
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return { error: "must not be a list" };
  const { admin, ...rest } = value as Record<string, unknown>;
  delete rest.member;
  if (admin !== undefined && typeof admin !== "boolean")
    return { error: '"admin" must be true or false' };
  const unknown = Object.keys(rest);
  if (unknown.length)
    return {
      error: `unknown field ${JSON.stringify(unknown[0]?.slice(0, 40))}: it takes member and admin`,
    };
  return admin === undefined ? { member } : { member, admin };
}
