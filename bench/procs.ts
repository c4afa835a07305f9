/**
 * Processes of the benchmark: spawning the relay, daemon, upstream, proxy and load generators,
 * waiting until they serve, and reading their CPU time and memory from /proc.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { sleep } from "./common.ts";
import type { Job } from "./load.ts";

export const ROOT = resolve(import.meta.dirname, "..");
/** The built CLI (`dist/`), as the installed package and the service run it; `npm run bench` builds it. */
export const DIST_MAIN = resolve(ROOT, "dist/src/cli/main.js");
const RUN_DIST = `import(${JSON.stringify(pathToFileURL(DIST_MAIN).href)}).then((m) => m.main([process.argv[0], "club-provider", ...process.argv.slice(1)]))`;
const TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** A child process and how to end it. */
export interface Proc {
  child: ChildProcess;
  pid: number;
  stop(): Promise<void>;
}

function wrap(child: ChildProcess, name: string): Proc {
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  child.once("exit", (code, signal) => {
    if (code && code !== 0 && signal === null)
      process.stderr.write(`${name} exited ${code}: ${stderr}\n`);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} did not start`);
  return {
    child,
    pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once("exit", r));
      // A profiled process must exit on its own to write its profile; others are killed.
      if (process.env.BENCH_NODE_ARGS?.includes("--cpu-prof")) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await gone;
        clearTimeout(timer);
      } else {
        child.kill("SIGKILL");
        await gone;
      }
    },
  };
}

/** Starts a TypeScript file of bench/ that prints `listening <port>`; resolves with the port. */
export async function startServer(
  file: string,
  args: string[] = [],
  nodeArgs: string[] = [],
): Promise<Proc & { port: number }> {
  const child = spawn(
    process.execPath,
    [...nodeArgs, "--import", "tsx", resolve(ROOT, "bench", file), ...args],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const proc = wrap(child, file);
  const port = await new Promise<number>((res, rej) => {
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) res(Number(m[1]));
    });
    child.once("exit", () => rej(new Error(`${file} exited before listening`)));
  });
  return { ...proc, port };
}

/** BENCH_NODE_ARGS: Node options for the measured processes (the relay, the daemon, the hop). */
export function benchNodeArgs(): string[] {
  return (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
}

/** Runs the real CLI (built); its log lines go to /dev/null, as a quiet terminal would take them. */
export function startCli(args: string[], env: Record<string, string>): Proc {
  // e.g. BENCH_NODE_ARGS="--cpu-prof" to profile them.
  const child = spawn(process.execPath, [...benchNodeArgs(), "-e", RUN_DIST, "--", ...args], {
    env: { PATH: process.env.PATH ?? "", CLUB_LOG_FORMAT: "json", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  return wrap(child, `club-provider ${args[0] ?? ""}`);
}

/** Polls `url` every `everyMs` until `ok(status, text)`; rejects after `timeoutMs`. */
export async function until(
  url: string,
  ok: (status: number, text: string) => boolean,
  options: { everyMs?: number; timeoutMs?: number; headers?: Record<string, string> } = {},
): Promise<number> {
  const { everyMs = 5, timeoutMs = 30_000, headers = {} } = options;
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const res = await fetch(url, { headers });
      if (ok(res.status, await res.text())) return performance.now();
    } catch {
      // not up yet
    }
    await sleep(everyMs);
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms`);
}

/** Runs one load job in its own process and resolves with its JSON result. */
export function load<T>(job: Job): Promise<T> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", resolve(ROOT, "bench/load.ts"), JSON.stringify(job)],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (err += c.toString()));
  return new Promise((res, rej) =>
    child.once("exit", (code) => {
      if (code === 0) res(JSON.parse(out) as T);
      else rej(new Error(`load ${job.kind} failed (${code}): ${err}`));
    }),
  );
}

/** User plus system CPU seconds of a process so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** Resident memory of a process, in MiB. */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? NaN) / 1024;
}

/** Samples a process's RSS every 50 ms while `work` runs; resolves with its result and the peak. */
export async function peakRss<T>(
  pid: number,
  work: Promise<T>,
): Promise<{ result: T; peak: number }> {
  let peak = rssMiB(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 50);
  try {
    const result = await work;
    return { result, peak: Math.max(peak, rssMiB(pid)) };
  } finally {
    clearInterval(timer);
  }
}

/** CPU seconds the whole machine spent busy so far (all cores; steal included). */
export function machineBusySeconds(): number {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = fields.slice(1).map(Number);
  return (
    ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / TICKS
  );
}

/** CPU seconds of this process and of its children that have exited and been waited for. */
export function ownCpuSeconds(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const f = stat
    .slice(stat.lastIndexOf(")") + 2)
    .split(" ")
    .map(Number);
  return ((f[11] ?? 0) + (f[12] ?? 0) + (f[13] ?? 0) + (f[14] ?? 0)) / TICKS;
}
