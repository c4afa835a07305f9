/**
 * `club-provider relay --database postgres://…`, a real relay process: its async jobs are rows
 * in PostgreSQL, and a second relay given the same database (by `CLUB_RELAY_DATABASE`) is
 * refused at start, naming the relay that holds it.
 */
import pg from "pg";
import { describe, expect, it } from "vitest";
import { runCli, scratchDir, writeSecret } from "../e2e/harness.ts";
import { freePort } from "../fakes/util.ts";
import { freshDatabase, HAVE_PG } from "./db.ts";

const KEY = "sk-database-test-0123456789";

describe.skipIf(!HAVE_PG)("relay --database on a real PostgreSQL", () => {
  it("keeps the relay's jobs there and refuses a second relay on it", async () => {
    const database = await freshDatabase();
    const home = scratchDir();
    writeSecret(home, "keys.json", JSON.stringify({ [KEY]: "alice" }));
    const port = await freePort();
    const args = (p: string, dir: string): string[] => [
      "relay",
      "--port",
      p,
      "--keys",
      `${home}/keys.json`,
      "--data-dir",
      `${home}/${dir}`,
      "--instance-lease",
      "1",
    ];
    const relay = runCli([...args(String(port), "one"), "--database", database], { home });
    try {
      await relay.waitFor(/relay ready/);
      const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "m", messages: [], async: true }),
      });
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      const client = new pg.Client({ connectionString: database });
      await client.connect();
      const { rows } = await client.query("SELECT id, member, status FROM jobs");
      await client.end();
      expect(rows).toEqual([{ id, member: "alice", status: "QUEUED" }]);

      const second = runCli(args("0", "two"), { home, env: { CLUB_RELAY_DATABASE: database } });
      expect(await second.exited).not.toBe(0);
      expect(second.output()).toMatch(/another relay \(.+\) holds this database/);
    } finally {
      await relay.stop();
    }
  });
});
