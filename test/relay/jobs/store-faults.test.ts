/**
 * The job store under faults, with the real relay process (`club-provider relay --data-dir`):
 * kill -9 in a flood of submissions, a write-ahead log or database cut short at several
 * offsets, a full disk (a 2 MiB tmpfs), rows of the wrong shape, and how many bytes the relay
 * writes for jobs that fail with large bodies. An acknowledged (202) job is never lost
 * silently: it is there after a restart, or the relay refuses to start and says why.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, statSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, describe, expect, it } from "vitest";
import { runCli, scratchDir, writeSecret, type CliProcess } from "../../e2e/harness.ts";
import { freePort } from "../../fakes/util.ts";
import { ALICE, BOB, call, type Answer, type ErrorView, type JobView } from "./helpers.ts";
import { MediaRig } from "./media-rig.ts";

const home = scratchDir();
const keys = writeSecret(home, "keys.json", JSON.stringify({ [ALICE]: "alice", [BOB]: "bob" }));
const running: CliProcess[] = [];
afterAll(async () => {
  await Promise.all(running.map((r) => r.stop("SIGKILL")));
});

interface Started {
  relay: CliProcess;
  url: string;
}

/** Starts `club-provider relay` on `dataDir`; resolves once it serves, or with its exit. */
async function relayOn(
  dataDir: string,
): Promise<Started | { exit: number | null; output: string }> {
  const port = await freePort();
  const relay = runCli(
    ["relay", "--port", String(port), "--keys", keys, "--data-dir", dataDir, "--rate-limit", "0"],
    { home },
  );
  running.push(relay);
  const ready = await Promise.race([
    relay.waitFor(/relay ready/, { timeoutMs: 30_000 }).then(() => true),
    relay.exited.then(() => false),
  ]);
  if (!ready) return { exit: await relay.exited, output: relay.output() };
  return { relay, url: `http://127.0.0.1:${port}` };
}

async function mustStart(dataDir: string): Promise<Started> {
  const started = await relayOn(dataDir);
  if (!("relay" in started)) throw new Error(`the relay did not start:\n${started.output}`);
  return started;
}

const image = (prompt: string, extra: Record<string, unknown> = {}) => ({
  model: "image-1",
  prompt,
  async: true,
  ...extra,
});

/** Submits one job; the id when it was acknowledged (202), else the status (0: no answer). */
async function submit(url: string, body: unknown): Promise<string | number> {
  try {
    const res = await call<JobView>({ url }, "POST", "/v1/images/generations", body);
    return res.status === 202 ? res.body.id : res.status;
  } catch {
    return 0;
  }
}

/** The ids of every job of alice the relay lists. */
async function listed(url: string): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let after = ""; ;) {
    const page = await call<{ data: JobView[]; has_more: boolean }>(
      { url },
      "GET",
      `/v1/jobs?limit=100${after ? `&after=${after}` : ""}`,
    );
    for (const j of page.body.data) ids.add(j.id);
    if (!page.body.has_more) return ids;
    after = page.body.data.at(-1)?.id ?? "";
  }
}

/** Submits `count` jobs, `width` at a time; the acknowledged ids. */
async function flood(
  url: string,
  count: number,
  width = 16,
  extra: Record<string, unknown> = {},
): Promise<string[]> {
  const acked: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) {
        const r = await submit(url, image(`p${next++}`, extra));
        if (typeof r === "string") acked.push(r);
      }
    }),
  );
  return acked;
}

const missing = (acked: string[], ids: Set<string>): string[] => acked.filter((id) => !ids.has(id));

describe("the job store of a real relay process", () => {
  it("keeps every acknowledged job when the relay is killed -9 in the middle of a flood", async () => {
    const dataDir = join(home, "flood");
    const { relay, url } = await mustStart(dataDir);
    const acked: string[] = [];
    const state = { killed: false };
    // Read through a call: TypeScript would keep `state.killed` narrowed across the awaits.
    const killed = (): boolean => state.killed;
    let n = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (!killed()) {
          const r = await submit(url, image(`flood ${n++}`));
          if (typeof r === "string") acked.push(r);
          if (acked.length >= 400 && !killed()) {
            state.killed = true;
            relay.child.kill("SIGKILL");
          }
        }
      }),
    );
    await relay.exited;
    const again = await mustStart(dataDir);
    expect(acked.length).toBeGreaterThanOrEqual(400);
    expect(missing(acked, await listed(again.url))).toEqual([]);
    await again.relay.stop();
  });

  it("refuses to start, saying what is wrong and how to recover, when its log or database was cut short", async () => {
    const base = join(home, "cut");
    const first = await mustStart(base);
    const acked = await flood(first.url, 300);
    first.relay.child.kill("SIGKILL");
    await first.relay.exited;
    const walSize = statSync(join(base, "jobs.db-wal")).size;
    expect(walSize).toBeGreaterThan(4096);
    // The same data, stopped cleanly: everything is in jobs.db and the log is gone.
    const clean = join(home, "cut-clean");
    cpSync(base, clean, { recursive: true });
    const tidy = await mustStart(clean);
    await tidy.relay.stop();
    const dbSize = statSync(join(clean, "jobs.db")).size;

    const cases: [string, string, number][] = [
      ...[0, 20, 4096 + 10, Math.floor(walSize / 2), walSize - 100].map(
        (at): [string, string, number] => [base, "jobs.db-wal", at],
      ),
      ...[0, 100, 4096, Math.floor(dbSize / 2), dbSize - 4096].map(
        (at): [string, string, number] => [clean, "jobs.db", at],
      ),
    ];
    const outcomes: string[] = [];
    for (const [from, file, at] of cases) {
      const dir = join(home, `cut-${file}-${at}`);
      cpSync(from, dir, { recursive: true });
      truncateSync(join(dir, file), at);
      const started = await relayOn(dir);
      if ("relay" in started) {
        // It started: then every acknowledged job must be there.
        expect(missing(acked, await listed(started.url)), `${file} cut at ${at}`).toEqual([]);
        await started.relay.stop();
        outcomes.push(`${file}@${at}: started with all`);
      } else {
        expect(started.exit, `${file} cut at ${at}`).toBe(1);
        expect(started.output).toMatch(/jobs\.db is damaged \(.+\)\. Nothing was changed/);
        expect(started.output).toMatch(/restore jobs\.db and jobs\.db-wal from a backup/);
        outcomes.push(`${file}@${at}: refused`);
      }
    }
    // A log cut short loses commits SQLite cannot know of: the acknowledgement count catches it.
    expect(
      outcomes.filter((o) => o.startsWith("jobs.db-wal") && o.endsWith("refused")),
    ).toHaveLength(5);
  });

  it("answers 507 when the disk is full and loses nothing stored before", async () => {
    const dataDir = join(home, "full");
    mkdirSync(dataDir);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", dataDir]);
    try {
      const { relay, url } = await mustStart(dataDir);
      const acked: string[] = [];
      const padding = "x".repeat(64 * 1024);
      let refused: Answer<JobView & ErrorView> | undefined;
      for (let i = 0; i < 200 && !refused; i++) {
        const res = await call<JobView & ErrorView>(
          { url },
          "POST",
          "/v1/images/generations",
          image(`full ${i}`, { padding }),
        );
        if (res.status === 202) acked.push(res.body.id);
        else refused = res;
      }
      expect(acked.length).toBeGreaterThan(5);
      expect(refused?.status).toBe(507);
      expect(refused?.body.error.message).toMatch(
        /disk is full .*nothing was stored; free space there/,
      );
      expect(missing(acked, await listed(url))).toEqual([]);
      // Still full: a later submission is refused the same way, and the relay goes on serving.
      expect(await submit(url, image("again", { padding }))).toBe(507);
      relay.child.kill("SIGKILL");
      await relay.exited;
      const again = await mustStart(dataDir);
      expect(missing(acked, await listed(again.url))).toEqual([]);
      await again.relay.stop();
    } finally {
      execFileSync("umount", ["-l", dataDir]);
    }
  });

  it("starts past rows of the wrong shape, warning with each id", async () => {
    const dataDir = join(home, "shapes");
    const first = await mustStart(dataDir);
    const acked = await flood(first.url, 5, 1);
    await first.relay.stop();
    const db = new DatabaseSync(join(dataDir, "jobs.db"));
    db.prepare(
      "INSERT INTO jobs (id, member, seq, created, status, data) VALUES ('job_garbled', 'alice', 1, 0, 'QUEUED', '{oops')",
    ).run();
    db.prepare("UPDATE jobs SET data = json_remove(data, '$.model') WHERE id = ?").run(
      acked[0] ?? "",
    );
    db.close();
    const again = await mustStart(dataDir);
    const ids = await listed(again.url);
    expect(missing(acked.slice(1), ids)).toEqual([]);
    expect(ids.has(acked[0] ?? "")).toBe(false);
    const out = again.relay.output();
    expect(out).toMatch(/skipping stored job job_garbled: its data is not JSON/);
    expect(out).toContain(`skipping stored job ${acked[0]}: missing or malformed: model`);
    await again.relay.stop();
  });

  it("writes each failed job's body once, not once per state change", async () => {
    const dataDir = join(home, "bytes");
    const { relay, url } = await mustStart(dataDir);
    const rig = new MediaRig({ relayUrl: url, apiKey: ALICE, maxConcurrent: 64 });
    await rig.start();
    const JOBS = 30;
    const padding = "y".repeat(512 * 1024);
    const pid = relay.child.pid ?? 0;
    const written = (): number =>
      Number(/wchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1]);
    const before = written();
    rig.failNext = 3 * JOBS; // every attempt answers 500: three attempts each, then FAILED
    const ids = await flood(url, JOBS, 8, { padding });
    expect(ids).toHaveLength(JOBS);
    for (const id of ids)
      await expect
        .poll(async () => (await call<JobView>({ url }, "GET", `/v1/jobs/${id}`)).body.status, {
          timeout: 60_000,
          interval: 200,
        })
        .toBe("FAILED");
    const total = written() - before;
    rig.stop();
    const body = JOBS * padding.length;
    // Sent to the provider: three attempts of each body. The store: the body once into the log,
    // once more when the log is checkpointed into the database; rows are small.
    const tunnel = 3 * body;
    expect(total - tunnel).toBeLessThan(3 * body);
    await relay.stop();
    const db = new DatabaseSync(join(dataDir, "jobs.db"));
    const bodies = db
      .prepare("SELECT count(*) AS n, max(length(body)) AS biggest FROM job_bodies")
      .get();
    const rows = db.prepare("SELECT max(length(data)) AS biggest FROM jobs").get() as {
      biggest: number;
    };
    db.close();
    expect(bodies).toMatchObject({ n: JOBS });
    expect(rows.biggest).toBeLessThan(4096);
  }, 90_000);
});
