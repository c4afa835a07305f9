/**
 * What keeping media in PostgreSQL costs a club of two relay instances (in process, on a
 * throwaway PostgreSQL started like the test tier's, or `CLUB_BENCH_PG_URL`): a 64 MiB video is
 * made through instance B (a rig on A draws it), then fetched whole five times from B, which
 * serves its own file, and from A, which streams the chunk rows; and how long after the answer
 * ends its URL works (the item is stored then; in a club, copied to the database too), against
 * a lone relay with a data directory.
 * Prints lines for BENCHMARKS.md ("Across relay instances").
 * Usage: node --import tsx bench/cluster-media.ts
 */
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../src/log.ts";
import { KeyRing } from "../src/relay/keys.ts";
import { createRelay, type Relay } from "../src/relay/server.ts";
import { benchPostgres } from "./postgres.ts";
import { MediaRig } from "../test/relay/jobs/media-rig.ts";
import { median } from "./common.ts";

const KEY = "sk-bench-media-0123456789";
const SIZE = 64 * 1024 * 1024;
const ROUNDS = 5;

const relay = (database: string | undefined, name: string, dataDir: string): Promise<Relay> =>
  createRelay({
    port: 0,
    keys: new KeyRing({ [KEY]: "bench" }),
    log: silentLogger,
    keepAliveMs: 0,
    rateLimit: 0,
    dataDir,
    mediaLimits: { maxBytesPerMember: 64 * SIZE },
    ...(database
      ? {
          database,
          cluster: {
            instanceId: name,
            internalHost: "127.0.0.1",
            internalPort: 0,
            secret: "bench-media-secret-0123456789",
          },
        }
      : {}),
  });

/**
 * Makes one video through `via` and reads its answer; then waits until `check` serves its URL
 * (the copy is stored once the answer has ended). The ms of each, and the URL's path.
 */
async function make(
  via: Relay,
  check: Relay,
): Promise<{ ms: number; stored: number; path: string }> {
  const start = performance.now();
  const res = await fetch(`${via.url}/v1/videos/generations`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "video-1", prompt: "bench" }),
  });
  const url = res.headers.get("x-club-media-url");
  await res.arrayBuffer();
  const end = performance.now();
  if (!url) throw new Error(`no x-club-media-url (status ${res.status})`);
  const path = new URL(url).pathname;
  for (;;) {
    const head = await fetch(`${check.url}${path}`, { method: "HEAD" });
    if (head.status === 200) break;
    await new Promise((r) => setTimeout(r, 1));
  }
  return { ms: end - start, stored: performance.now() - end, path };
}

/** MiB/s of fetching `path` whole from `from`; throws unless the bytes hash to `digest`. */
async function fetchRate(from: Relay, path: string, digest: string): Promise<number> {
  const start = performance.now();
  const res = await fetch(`${from.url}${path}`);
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    hash.update(chunk);
  }
  const ms = performance.now() - start;
  if (bytes !== SIZE || hash.digest("hex") !== digest)
    throw new Error(`fetched ${bytes} bytes that are not the video's ${SIZE}`);
  return SIZE / 1048576 / (ms / 1000);
}

async function main(): Promise<void> {
  const db = await benchPostgres();
  const url = db.url;
  const dir = mkdtempSync(join(tmpdir(), "club-bench-media-"));
  // Every byte value, so a copy that changes any shows.
  const video = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i++) video[i] = (i * 131) % 256;
  const digest = createHash("sha256").update(video).digest("hex");
  const lone = await relay(undefined, "lone", join(dir, "lone"));
  const a = await relay(url, "bench-a", join(dir, "a"));
  const b = await relay(url, "bench-b", join(dir, "b"));
  const rigs = [lone, a].map((r) => new MediaRig({ relayUrl: r.url, apiKey: KEY, video }));
  try {
    for (const rig of rigs) await rig.start();
    // B must list the rig on A before it can make anything through it.
    for (;;) {
      const res = await fetch(`${b.url}/v1/models`, {
        headers: { authorization: `Bearer ${KEY}` },
      });
      const ids = ((await res.json()) as { data: { id: string }[] }).data.map((m) => m.id);
      if (ids.includes("video-1")) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const loneMade: number[] = [];
    const loneStored: number[] = [];
    const clubMade: number[] = [];
    const clubStored: number[] = [];
    let path = "";
    for (let i = 0; i < ROUNDS; i++) {
      const alone = await make(lone, lone);
      loneMade.push(alone.ms);
      loneStored.push(alone.stored);
      const made = await make(b, a);
      clubMade.push(made.ms);
      clubStored.push(made.stored);
      path = made.path;
    }
    const own: number[] = [];
    const rows: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      own.push(await fetchRate(b, path, digest));
      rows.push(await fetchRate(a, path, digest));
    }
    const f = (n: number): string => n.toFixed(0);
    console.log(`64 MiB video, ${ROUNDS} rounds, medians:`);
    console.log(
      `  the answer: lone relay ${f(median(loneMade))} ms, through B ${f(median(clubMade))} ms; its URL served after the answer ended: lone ${f(median(loneStored))} ms, at A (copied to PostgreSQL) ${f(median(clubStored))} ms`,
    );
    console.log(
      `  fetched from B (its own file) ${f(median(own))} MiB/s; from A (chunk rows) ${f(median(rows))} MiB/s (${(median(rows) / median(own)).toFixed(2)}x)`,
    );
  } finally {
    for (const rig of rigs) rig.stop();
    await Promise.all([lone.close(), a.close(), b.close()]);
    db.stop();
  }
}

await main();
