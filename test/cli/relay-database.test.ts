/**
 * `club-provider relay --database` and `CLUB_RELAY_DATABASE` as an operator gives them, refused
 * at start when they cannot work: a URL that is not PostgreSQL's, a server that is not there, a
 * lease that is not a positive number. (A relay on a real database: test/pg/cli-database.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { runCli, scratchDir, writeSecret } from "../e2e/harness.ts";

const KEY = "sk-database-test-0123456789";

function relayWith(args: string[], env: Record<string, string> = {}) {
  const home = scratchDir();
  writeSecret(home, "keys.json", JSON.stringify({ [KEY]: "alice" }));
  return runCli(
    ["relay", "--port", "0", "--keys", `${home}/keys.json`, "--data-dir", `${home}/data`, ...args],
    { home, env },
  );
}

describe("relay --database", () => {
  it("refuses a database that is not a postgres:// URL, from the flag or the environment", async () => {
    const flag = relayWith(["--database", "/var/lib/club/jobs.db"]);
    expect(await flag.exited).not.toBe(0);
    expect(flag.output()).toContain(
      '--database must be a postgres:// URL, got "/var/lib/club/jobs.db"',
    );
    const env = relayWith([], { CLUB_RELAY_DATABASE: "mysql://db/club" });
    expect(await env.exited).not.toBe(0);
    expect(env.output()).toContain("--database must be a postgres:// URL");
  });

  it("refuses to start when the database cannot be reached, saying why", async () => {
    const relay = relayWith(["--database", "postgres://club@127.0.0.1:1/club"]);
    expect(await relay.exited).not.toBe(0);
    expect(relay.output()).toContain("ECONNREFUSED");
    expect(relay.output()).not.toContain("relay ready");
  });

  it("refuses an --instance-lease that is not a positive number", async () => {
    const relay = relayWith([
      "--database",
      "postgres://club@127.0.0.1:1/club",
      "--instance-lease",
      "0",
    ]);
    expect(await relay.exited).not.toBe(0);
    expect(relay.output()).toContain('--instance-lease must be a positive number, got "0"');
  });
});
