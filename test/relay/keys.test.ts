import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UserError } from "../../src/errors.ts";
import { KeyRing, loadKeys } from "../../src/relay/keys.ts";
import { scratchDir } from "../e2e/harness.ts";

describe("relay keys", () => {
  it("maps each key to its member and nothing else", () => {
    const ring = new KeyRing({ "sk-alice-000000": "alice", "sk-bob-0000000": "bob" });
    expect(ring.member("sk-alice-000000")).toBe("alice");
    expect(ring.member("sk-bob-0000000")).toBe("bob");
    expect(ring.member("sk-alice-000001")).toBeUndefined();
    expect(ring.member("")).toBeUndefined();
    expect(ring.member(undefined)).toBeUndefined();
  });

  it("reads bearer tokens", () => {
    expect(KeyRing.bearer("Bearer abc")).toBe("abc");
    expect(KeyRing.bearer("bearer  abc ")).toBe("abc");
    expect(KeyRing.bearer("Basic abc")).toBeUndefined();
    expect(KeyRing.bearer(undefined)).toBeUndefined();
  });

  it("loads a keys file and CLUB_RELAY_KEYS together", () => {
    const file = join(scratchDir(), "keys.json");
    writeFileSync(file, JSON.stringify({ "sk-file-0123456789abc": "carol" }));
    const ring = loadKeys({ file, env: "sk-env-0123456789abcd=dave" });
    expect(ring.member("sk-file-0123456789abc")).toBe("carol");
    expect(ring.member("sk-env-0123456789abcd")).toBe("dave");
  });

  it("reports every problem at once", () => {
    const file = join(scratchDir(), "keys.json");
    writeFileSync(
      file,
      JSON.stringify({
        short: "x",
        aaaaaaaaaaaaaaaaaaaaaaaa: "x",
        "sk-good-0123456789abc": "",
        "sk-fine-0123456789abc": "erin",
      }),
    );
    const err = (() => {
      try {
        loadKeys({ file, env: "nokey" });
      } catch (e) {
        return e as UserError;
      }
    })();
    expect(err).toBeInstanceOf(UserError);
    expect(err?.message).toMatch(/key "sh…" is 5 characters long/);
    expect(err?.message).toMatch(/key "aa…" has only 1 different characters/);
    expect(err?.message).toMatch(/at least 20 characters of random text/);
    expect(err?.message).toMatch(/must be a non-empty string/);
    expect(err?.message).toMatch(/CLUB_RELAY_KEYS/);
  });

  it("says how to provide keys when there are none, or the file is not JSON", () => {
    expect(() => loadKeys({})).toThrow(/--keys keys\.json/);
    const file = join(scratchDir(), "bad.json");
    writeFileSync(file, "{");
    expect(() => loadKeys({ file })).toThrow(/cannot read the keys file .*JSON mapping each key/);
  });
  it("loads the operator's key marked admin beside plain ones, and names a bad entry", () => {
    const file = join(scratchDir(), "keys.json");
    writeFileSync(
      file,
      JSON.stringify({
        "sk-admin-0123456789abcd": { member: "alice", admin: true },
        "sk-plain-0123456789abcd": "bob",
      }),
    );
    const ring = loadKeys({ file });
    expect(ring.lookup("sk-admin-0123456789abcd")).toMatchObject({ member: "alice", admin: true });
    expect(ring.lookup("sk-plain-0123456789abcd")).toMatchObject({ member: "bob", admin: false });
    expect(ring.members()).toEqual(["alice", "bob"]);
    for (const [entry, why] of [
      [{ member: "" }, /member must be a non-empty string/],
      [{ member: "a", admin: "yes" }, /"admin" must be true or false/],
      [{ member: "a", role: "x" }, /unknown field "role"/],
      [["a"], /member must be a non-empty string/],
    ] as const) {
      writeFileSync(file, JSON.stringify({ "sk-bad-0123456789abcdef": entry }));
      expect(() => loadKeys({ file }), JSON.stringify(entry)).toThrow(why);
    }
  });
});
