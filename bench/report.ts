/** The benchmark's results as Markdown: printed, and written between markers in BENCHMARKS.md. */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { resolve } from "node:path";
import * as prettier from "prettier";
import { CONNECTION_WINDOW, MAX_FRAME, STREAM_WINDOW } from "../src/transport/h2-settings.ts";
import { median } from "./common.ts";
import { ROOT } from "./procs.ts";

/** The ways a request reaches the upstream; nginx only where it is installed. */
export type Path = "direct" | "nginx" | "proxy" | "tunnel" | "tunnel1";

/** Concurrency levels of the requests/s runs. */
export const CONCURRENCY = [1, 16, 64] as const;

interface Stat {
  p50: number;
  p99: number;
}

/** `relay1` and `daemon1` are the pair speaking tunnel protocol 1. */
type Proc = "relay" | "daemon" | "proxy" | "relay1" | "daemon1";

/** Everything one run measured; times in ms, memory in MiB. A section not run stays empty. */
export interface Results {
  /** What generated the requests/s and bulk load. */
  loader: "wrk" | "node";
  quick: boolean;
  paths: Path[];
  rps: Partial<Record<Path, Record<number, Stat & { rps: number; errors: number }>>>;
  ttfb: Partial<Record<Path, Stat>>;
  chunks: Partial<Record<Path, Record<"alone" | "beside" | "besideSlow", Stat & { max: number }>>>;
  bulk: Partial<Record<Path, number[]>>;
  cpu: Partial<Record<Proc, { msPerRequest?: number; msAtRate?: number; msPerMiB?: number }>>;
  /** The offered requests/s of `msAtRate`, when that section ran. */
  rate?: number;
  rss: Partial<
    Record<
      "idle" | "relayIdle" | "underLoad" | "bulk" | "slowIdle" | "slowConsumer" | "afterLoad",
      number
    >
  >;
  reconnectMs: number[];
  seconds: number;
  /** Share of the machine's CPU used by other processes during the run (0..1). */
  otherLoad: number;
}

const START = "<!-- bench:results:start -->";
const END = "<!-- bench:results:end -->";
const NAMES: Record<Path, string> = {
  direct: "direct",
  nginx: "nginx (one real proxy hop)",
  proxy: "one Node hop (`bench/proxy.ts`)",
  tunnel: "tunnel (relay + daemon), protocol 2: HTTP/2 on the socket",
  tunnel1: "tunnel (relay + daemon), protocol 1: HTTP/2 in a WebSocket",
};
const PROC_NAMES: Record<Proc, string> = {
  relay: "relay (protocol 2)",
  daemon: "daemon (protocol 2)",
  relay1: "relay (protocol 1)",
  daemon1: "daemon (protocol 1)",
  proxy: "one Node hop",
};

const f = (n: number | undefined, digits = 2): string =>
  n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits);

function tableMd(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]+)/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "";
  } catch {
    return "";
  }
}

function verdict(value: number, ok: boolean, miss: string): string {
  if (!Number.isFinite(value)) return "not measured";
  return ok ? "met" : `**missed** ${miss}`;
}

/** The bulk figure of a path: the median of its transfers (wrk gives one rate over its run). */
function bulkOf(r: Results, p: Path): number {
  return median(r.bulk[p] ?? []);
}

function targetsTable(r: Results): string {
  const rps = (p: Path, c: number) => r.rps[p]?.[c]?.rps ?? NaN;
  const p50 = (p: Path, c: number) => r.rps[p]?.[c]?.p50 ?? NaN;
  const ratio = (c: number) => rps("tunnel", c) / rps("proxy", c);
  const addedTunnel = p50("tunnel", 1) - p50("direct", 1);
  const addedHop = p50("proxy", 1) - p50("direct", 1);
  const bulk = bulkOf(r, "tunnel") / bulkOf(r, "proxy");
  const chunkP99 = r.chunks.tunnel?.alone.p99 ?? NaN;
  /** Closed loop at 16 (`msPerRequest`), or every path at one offered rate (`msAtRate`). */
  const cpuRow = (p: "relay" | "daemon", key: "msPerRequest" | "msAtRate"): string[] => {
    const ms = r.cpu[p]?.[key] ?? NaN;
    const hop = r.cpu.proxy?.[key] ?? NaN;
    const load = key === "msPerRequest" ? "concurrency 16" : `${f(r.rate, 0)} requests/s each`;
    return [
      `${p} CPU per request ≤ one Node hop's (${load})`,
      `${f(ms, 3)} ms against ${f(hop, 3)} ms (${f(ms / hop)}×)`,
      verdict(ms / hop, ms <= hop, `by ${f(ms - hop, 3)} ms`),
    ];
  };
  const slowGrowth = (r.rss.slowConsumer ?? NaN) - (r.rss.slowIdle ?? NaN);
  const reconnect = Math.max(...r.reconnectMs);
  const idle = r.rss.idle ?? NaN;
  return tableMd(
    ["target (protocol 2, against one Node hop in the same run)", "measured", "verdict"],
    [
      ...[16, 64].map((c) => [
        `requests/s ≥ 0.7× one hop at concurrency ${c}`,
        `${f(ratio(c))}× (${f(rps("tunnel", c), 0)} against ${f(rps("proxy", c), 0)})`,
        verdict(ratio(c), ratio(c) >= 0.7, `by ${f(0.7 - ratio(c))}×`),
      ]),
      [
        "added p50 at concurrency 1 ≤ 2× one hop's",
        `${f(addedTunnel)} ms against ${f(addedHop)} ms (${f(addedTunnel / addedHop)}×)`,
        verdict(addedTunnel, addedTunnel <= 2 * addedHop, `by ${f(addedTunnel - 2 * addedHop)} ms`),
      ],
      [
        "bulk ≥ 0.7× one hop (100 MiB body)",
        `${f(bulk)}× (${f(bulkOf(r, "tunnel"), 0)} against ${f(bulkOf(r, "proxy"), 0)} MiB/s)`,
        verdict(bulk, bulk >= 0.7, `by ${f(0.7 - bulk)}×`),
      ],
      [
        "per-chunk delay p99 ≤ 2 ms, a paced SSE stream alone",
        `${f(chunkP99)} ms`,
        verdict(chunkP99, chunkP99 <= 2, `by ${f(chunkP99 - 2)} ms`),
      ],
      cpuRow("relay", "msPerRequest"),
      cpuRow("daemon", "msPerRequest"),
      ...(r.rate === undefined ? [] : [cpuRow("relay", "msAtRate"), cpuRow("daemon", "msAtRate")]),
      [
        "daemon RSS idle ≤ 80 MiB",
        `${f(idle, 1)} MiB`,
        verdict(idle, idle <= 80, `by ${f(idle - 80, 1)} MiB`),
      ],
      [
        "daemon RSS with a slow consumer ≤ idle + 64 MiB",
        `idle + ${f(slowGrowth, 1)} MiB`,
        verdict(slowGrowth, slowGrowth <= 64, `by ${f(slowGrowth - 64, 1)} MiB`),
      ],
      [
        "re-registered ≤ 1 s after the relay is back",
        `max ${f(reconnect, 0)} ms (median ${f(median(r.reconnectMs), 0)} ms)`,
        verdict(reconnect, reconnect <= 1000, `by ${f(reconnect - 1000, 0)} ms`),
      ],
    ],
  );
}

function requestsTable(r: Results): string {
  const hop = (c: number) => r.rps.proxy?.[c]?.rps ?? NaN;
  const rows = r.paths.map((p) => {
    const at = (c: number) => r.rps[p]?.[c];
    const added = (at(1)?.p50 ?? NaN) - (r.rps.direct?.[1]?.p50 ?? NaN);
    return [
      NAMES[p],
      f(at(1)?.rps, 0),
      f(at(1)?.p50),
      p === "direct" ? "-" : f(added),
      f(at(16)?.rps, 0),
      f((at(16)?.rps ?? NaN) / hop(16)),
      f(at(16)?.p50),
      f(at(16)?.p99),
      f(at(64)?.rps, 0),
      f((at(64)?.rps ?? NaN) / hop(64)),
      f(bulkOf(r, p), 0),
      f(bulkOf(r, p) / bulkOf(r, "proxy")),
      String(CONCURRENCY.reduce((n, c) => n + (at(c)?.errors ?? 0), 0)),
    ];
  });
  return tableMd(
    [
      "path",
      "req/s at 1",
      "p50 at 1",
      "added p50 at 1",
      "req/s at 16",
      "× one hop",
      "p50 at 16",
      "p99 at 16",
      "req/s at 64",
      "× one hop",
      "bulk MiB/s",
      "× one hop",
      "errors",
    ],
    rows,
  );
}

function streamsTable(r: Results): string {
  return tableMd(
    [
      "path",
      "TTFB p50",
      "TTFB p99",
      "added TTFB p50",
      "chunk delay p50 / p99 alone",
      "beside 100 MiB p50 / p99 / max",
      "beside 100 MiB read at 20 MiB/s p50 / p99",
    ],
    r.paths.map((p) => [
      NAMES[p],
      f(r.ttfb[p]?.p50),
      f(r.ttfb[p]?.p99),
      p === "direct" ? "-" : f((r.ttfb[p]?.p50 ?? NaN) - (r.ttfb.direct?.p50 ?? NaN)),
      `${f(r.chunks[p]?.alone.p50)} / ${f(r.chunks[p]?.alone.p99)}`,
      `${f(r.chunks[p]?.beside.p50)} / ${f(r.chunks[p]?.beside.p99)} / ${f(r.chunks[p]?.beside.max)}`,
      `${f(r.chunks[p]?.besideSlow.p50)} / ${f(r.chunks[p]?.besideSlow.p99)}`,
    ]),
  );
}

/** The generated section. */
export function renderResults(r: Results): string {
  const loader =
    r.loader === "wrk"
      ? "`wrk` (one thread, one connection per concurrent request)"
      : "the Node load generator (`bench/load.ts`; wrk was not installed)";
  const rss = r.rss;
  return [
    `Run with \`npm run bench\`${r.quick ? " (BENCH_QUICK=1)" : ""} on ${new Date().toISOString().slice(0, 10)}, ${f(r.seconds, 0)} s: ` +
      `${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, ${f(totalmem() / 2 ** 30, 0)} GiB RAM, ` +
      `${osName()} (Linux ${release()}), Node ${process.version}; other processes used ${f(r.otherLoad * 100, 0)} % ` +
      `of the CPU meanwhile. Requests/s, latency and bulk by ${loader}. HTTP/2 windows ${STREAM_WINDOW / 1048576} MiB ` +
      `per stream, ${CONNECTION_WINDOW / 1048576} MiB per connection, ${MAX_FRAME / 1024} KiB frames.`,
    "",
    "### Targets",
    "",
    targetsTable(r),
    "",
    "### Requests and bulk (a small non-streamed chat completion; latency in ms; a 100 MiB body in MiB/s)",
    "",
    requestsTable(r),
    "",
    "### Streams (ms)",
    "",
    streamsTable(r),
    "",
    "### Cost and memory",
    "",
    tableMd(
      [
        "process",
        "CPU ms per request (concurrency 16)",
        `CPU ms per request (${r.rate === undefined ? "a fixed rate" : `${f(r.rate, 0)}/s`}, every path)`,
        "CPU ms per MiB (bulk)",
      ],
      (["relay", "daemon", "relay1", "daemon1", "proxy"] as const).map((p) => [
        PROC_NAMES[p],
        f(r.cpu[p]?.msPerRequest, 3),
        f(r.cpu[p]?.msAtRate, 3),
        f(r.cpu[p]?.msPerMiB, 2),
      ]),
    ),
    "",
    `Daemon RSS (MiB): idle ${f(rss.idle, 1)}, peak at concurrency 64 ${f(rss.underLoad, 1)}, ` +
      `peak during bulk ${f(rss.bulk, 1)}, after load ${f(rss.afterLoad, 1)}; a freshly started ` +
      `daemon idle ${f(rss.slowIdle, 1)}, its peak with a slow consumer (1 MiB/s of a 1 GiB ` +
      `response, 5 s) ${f(rss.slowConsumer, 1)}. Relay RSS idle ${f(rss.relayIdle, 1)}.`,
    "",
    `Re-registration after a relay restart (ms from the new relay answering to the model being listed), ` +
      `${r.reconnectMs.length} restarts: ${r.reconnectMs.map((x) => f(x, 0)).join(", ") || "-"}.`,
  ].join("\n");
}

/** Prints the results only (a quick or partial run). */
export function printReport(r: Results): void {
  process.stdout.write(`${renderResults(r)}\n`);
}

/** Prints the results and puts them between the markers of BENCHMARKS.md, formatted as the repo's Prettier would. */
export async function writeReport(r: Results): Promise<void> {
  const section = renderResults(r);
  process.stdout.write(`${section}\n`);
  const file = resolve(ROOT, "BENCHMARKS.md");
  const text = existsSync(file) ? readFileSync(file, "utf8") : `# Benchmarks\n\n${START}\n${END}\n`;
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  const next =
    a >= 0 && b > a
      ? `${text.slice(0, a + START.length)}\n${section}\n${text.slice(b)}`
      : `${text.trimEnd()}\n\n${START}\n${section}\n${END}\n`;
  const options = (await prettier.resolveConfig(file)) ?? {};
  writeFileSync(file, await prettier.format(next, { ...options, filepath: file }));
  process.stderr.write(`bench: results written to ${file}\n`);
}
