/**
 * The relay's API keys: each key belongs to one member. Keys are held only as SHA-256 digests
 * and compared in constant time, so neither memory dumps nor response timing reveal them.
 */
import { hash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { UserError } from "../errors.ts";

function digest(key: string): Buffer {
  return hash("sha256", key, "buffer");
}

export class KeyRing {
  readonly #byDigest = new Map<string, { digest: Buffer; member: string }>();

  constructor(keys: Record<string, string>) {
    for (const [key, member] of Object.entries(keys)) {
      const d = digest(key);
      this.#byDigest.set(d.toString("hex"), { digest: d, member });
    }
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
  lookup(key: string | undefined): { member: string; id: string } | undefined {
    if (!key) return undefined;
    const d = digest(key);
    const id = d.toString("hex");
    const entry = this.#byDigest.get(id);
    return entry && timingSafeEqual(entry.digest, d) ? { member: entry.member, id } : undefined;
  }

  /** The bearer token of an `Authorization` header, if it has one. */
  static bearer(header: string | undefined): string | undefined {
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m?.[1];
  }
}

/**
 * Keys from a JSON file `{"<key>": "<member>"}` and/or the `CLUB_RELAY_KEYS` variable
 * (`key1=member1,key2=member2`). Reports every problem at once.
 */
export function loadKeys(options: { file?: string; env?: string }): KeyRing {
  const keys: Record<string, string> = {};
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
      for (const [key, member] of Object.entries(parsed)) {
        if (typeof member !== "string" || member === "")
          problems.push(
            `${options.file}: the member of key "${key.slice(0, 4)}…" must be a non-empty string`,
          );
        else if (key.length < 8)
          problems.push(`${options.file}: key "${key.slice(0, 2)}…" is shorter than 8 characters`);
        else keys[key] = member;
      }
    }
  }
  if (options.env) {
    for (const pair of options.env.split(",").filter(Boolean)) {
      const eq = pair.indexOf("=");
      if (eq < 8)
        problems.push(
          `CLUB_RELAY_KEYS: "${pair.slice(0, 4)}…" is not key=member with a key of 8+ characters`,
        );
      else keys[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  if (problems.length)
    throw new UserError("keys_invalid", `bad relay keys:\n  ${problems.join("\n  ")}`);
  if (Object.keys(keys).length === 0)
    throw new UserError(
      "keys_missing",
      "the relay has no API keys: pass --keys keys.json (a JSON object mapping each key to its member) or set CLUB_RELAY_KEYS=key=member",
    );
  return new KeyRing(keys);
}
