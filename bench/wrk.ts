/**
 * `wrk` (Debian's package) as the load generator for requests/s, latency and bulk: a C
 * program, far cheaper per request than a Node client, so on a small machine the paths under
 * test are not starved of CPU by the thing measuring them. One connection per concurrent
 * request, one thread; a Lua script sets the POST body and headers and prints one JSON line.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PATH, headers } from "./common.ts";

/** Whether `wrk` is on PATH. */
export function wrkAvailable(): boolean {
  return spawnSync("wrk", ["--version"], { stdio: "ignore" }).error === undefined;
}

/** One wrk run: `connections` closed-loop connections for `seconds`. */
export interface WrkJob {
  url: string;
  key?: string;
  body: string;
  connections: number;
  seconds: number;
}

/** Latencies in ms; `errors` counts non-2xx answers, timeouts and socket errors. */
export interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  total: number;
  errors: number;
  /** Response bytes, headers included. */
  bytes: number;
  /** Response bytes per second, headers included, in MiB/s. */
  mibPerSecond: number;
}

const dir = mkdtempSync(join(tmpdir(), "club-bench-wrk-"));
let scripts = 0;

function luaString(s: string): string {
  return JSON.stringify(s); // a JSON string literal is a valid Lua string literal for ASCII
}

function script(job: WrkJob): string {
  const lines = [
    `wrk.method = "POST"`,
    `wrk.path = ${luaString(PATH)}`,
    `wrk.body = ${luaString(job.body)}`,
    ...Object.entries(headers(job.key)).map(
      ([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`,
    ),
    `done = function(s, latency, requests)`,
    `  local e = s.errors`,
    `  io.write(string.format('{"requests":%d,"bytes":%d,"us":%d,"errors":%d,"p50":%d,"p99":%d}\\n',`,
    `    s.requests, s.bytes, s.duration, e.connect + e.read + e.write + e.status + e.timeout,`,
    `    latency:percentile(50), latency:percentile(99)))`,
    `end`,
  ];
  const file = join(dir, `job-${++scripts}.lua`);
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

/** Runs wrk once and resolves with what it measured. */
export function wrk(job: WrkJob): Promise<WrkResult> {
  const args = ["-t1", `-c${job.connections}`, `-d${job.seconds}s`, "--timeout", "30s"];
  args.push("-s", script(job), job.url);
  const child = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) =>
    child.once("exit", (code) => {
      const line = /^\{"requests".*$/m.exec(out)?.[0];
      if (code !== 0 || !line) {
        reject(new Error(`wrk failed (${code}): ${err || out}`));
        return;
      }
      const r = JSON.parse(line) as Record<
        "requests" | "bytes" | "us" | "errors" | "p50" | "p99",
        number
      >;
      const seconds = r.us / 1e6;
      resolve({
        rps: r.requests / seconds,
        p50: r.p50 / 1000,
        p99: r.p99 / 1000,
        total: r.requests,
        errors: r.errors,
        bytes: r.bytes,
        mibPerSecond: r.bytes / 1048576 / seconds,
      });
    }),
  );
}
