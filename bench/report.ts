/** The benchmark's results as Markdown: printed, and written between markers in BENCHMARKS.md. */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { resolve } from "node:path";
import * as prettier from "prettier";
import { CONNECTION_WINDOW, MAX_FRAME, STREAM_WINDOW } from "../src/transport/h2-settings.ts";
import { median } from "./common.ts";
import { ROOT } from "./procs.ts";

/** The three ways a request reaches the upstream. */
export type Path = "direct" | "proxy" | "tunnel";

interface Stat {
  p50: number;
  p99: number;
}

/** Everything one run measured; times in ms, memory in MiB. */
export interface Results {
  rps: Record<Path, Record<number, Stat & { rps: number; errors: number }>>;
  ttfb: Partial<Record<Path, Stat>>;
  chunks: Partial<Record<Path, Record<"alone" | "beside" | "besideSlow", Stat & { max: number }>>>;
  bulk: Partial<Record<Path, number[]>>;
  cpu: Record<"relay" | "daemon", { msPerRequest: number; msPerMiB: number }>;
  rss: Record<
    "idle" | "relayIdle" | "underLoad" | "bulk" | "slowIdle" | "slowConsumer" | "afterLoad",
    number
  >;
  reconnectMs: number[];
  seconds: number;
  /** Share of the machine's CPU used by other processes during the run (0..1). */
  otherLoad: number;
}

const START = "<!-- bench:results:start -->";
const END = "<!-- bench:results:end -->";
const NAMES: Record<Path, string> = { direct: "direct", proxy: "single hop", tunnel: "tunnel" };

const f = (n: number | undefined, digits = 2): string =>
  n === undefined || Number.isNaN(n) ? "-" : n.toFixed(digits);

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

function verdict(ok: boolean, miss: string): string {
  return ok ? "met" : `**missed** ${miss}`;
}

/** The generated section. */
export function renderResults(r: Results): string {
  const d = r.rps.direct;
  const rpsRows: string[][] = [];
  for (const c of [1, 16, 256])
    for (const path of ["direct", "proxy", "tunnel"] as Path[]) {
      const x = r.rps[path][c];
      if (!x) continue;
      rpsRows.push([
        NAMES[path],
        String(c),
        f(x.rps, 0),
        f(x.rps / (d[c]?.rps ?? NaN)),
        f(x.rps / (r.rps.proxy[c]?.rps ?? NaN)),
        f(x.p50),
        f(x.p99),
        path === "direct" ? "-" : f(x.p50 - (d[c]?.p50 ?? NaN)),
        path === "direct" ? "-" : f(x.p99 - (d[c]?.p99 ?? NaN)),
        String(x.errors),
      ]);
    }
  const streamRows = (["direct", "proxy", "tunnel"] as Path[]).map((p) => [
    NAMES[p],
    f(r.ttfb[p]?.p50),
    f(r.ttfb[p]?.p99),
    p === "direct" ? "-" : f((r.ttfb[p]?.p50 ?? NaN) - (r.ttfb.direct?.p50 ?? NaN)),
    `${f(r.chunks[p]?.alone.p50)} / ${f(r.chunks[p]?.alone.p99)}`,
    `${f(r.chunks[p]?.beside.p50)} / ${f(r.chunks[p]?.beside.p99)} / ${f(r.chunks[p]?.beside.max)}`,
    `${f(r.chunks[p]?.besideSlow.p50)} / ${f(r.chunks[p]?.besideSlow.p99)}`,
    f(median(r.bulk[p] ?? []), 0),
    f(Math.max(...(r.bulk[p] ?? [NaN])), 0),
  ]);
  const added = (r.rps.tunnel[1]?.p50 ?? NaN) - (d[1]?.p50 ?? NaN);
  const chunkP99 = r.chunks.tunnel?.beside.p99 ?? NaN;
  const ratio = (r.rps.tunnel[16]?.rps ?? NaN) / (r.rps.proxy[16]?.rps ?? NaN);
  const bulk = median(r.bulk.tunnel ?? []);
  const slowGrowth = r.rss.slowConsumer - r.rss.slowIdle;
  const reconnect = Math.max(...r.reconnectMs);
  const targets = tableMd(
    ["target", "measured", "verdict"],
    [
      [
        "added p50 ≤ 0.5 ms (concurrency 1)",
        `${f(added)} ms`,
        verdict(added <= 0.5, `by ${f(added - 0.5)} ms`),
      ],
      [
        "per-chunk p99 ≤ 5 ms beside a 100 MiB transfer",
        `${f(chunkP99)} ms`,
        verdict(chunkP99 <= 5, `by ${f(chunkP99 - 5)} ms`),
      ],
      [
        "requests/s ≥ 0.5× single hop (concurrency 16)",
        `${f(ratio)}× single hop, ${f((r.rps.tunnel[16]?.rps ?? NaN) / (d[16]?.rps ?? NaN))}× direct`,
        verdict(ratio >= 0.5, `by ${f(0.5 - ratio)}×`),
      ],
      [
        "bulk ≥ 200 MiB/s (100 MiB body)",
        `${f(bulk, 0)} MiB/s`,
        verdict(bulk >= 200, `by ${f(200 - bulk, 0)} MiB/s`),
      ],
      [
        "daemon RSS idle ≤ 80 MiB",
        `${f(r.rss.idle, 1)} MiB`,
        verdict(r.rss.idle <= 80, `by ${f(r.rss.idle - 80, 1)} MiB`),
      ],
      [
        "daemon RSS with a slow consumer ≤ idle + 64 MiB",
        `idle + ${f(slowGrowth, 1)} MiB`,
        verdict(slowGrowth <= 64, `by ${f(slowGrowth - 64, 1)} MiB`),
      ],
      [
        "re-registered ≤ 1 s after the relay is back",
        `max ${f(reconnect, 0)} ms (median ${f(median(r.reconnectMs), 0)} ms)`,
        verdict(reconnect <= 1000, `by ${f(reconnect - 1000, 0)} ms`),
      ],
    ],
  );
  return [
    `Run with \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}, ${f(r.seconds, 0)} s: ` +
      `${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, ${f(totalmem() / 2 ** 30, 0)} GiB RAM, ` +
      `${osName()} (Linux ${release()}), Node ${process.version}; other processes used ${f(r.otherLoad * 100, 0)} % ` +
      `of the CPU meanwhile. HTTP/2 windows ${STREAM_WINDOW / 1048576} MiB ` +
      `per stream, ${CONNECTION_WINDOW / 1048576} MiB per connection, ${MAX_FRAME / 1024} KiB frames.`,
    "",
    "### Targets",
    "",
    targets,
    "",
    "### Requests (a small non-streamed chat completion; latency in ms)",
    "",
    tableMd(
      [
        "path",
        "concurrency",
        "requests/s",
        "× direct",
        "× single hop",
        "p50",
        "p99",
        "added p50",
        "added p99",
        "errors",
      ],
      rpsRows,
    ),
    "",
    "### Streams and bulk (ms; MiB/s)",
    "",
    tableMd(
      [
        "path",
        "TTFB p50",
        "TTFB p99",
        "added TTFB p50",
        "chunk delay p50 / p99 alone",
        "beside 100 MiB p50 / p99 / max",
        "beside 100 MiB read at 20 MiB/s p50 / p99",
        "bulk MiB/s (median of 3)",
        "best",
      ],
      streamRows,
    ),
    "",
    "### Cost and memory",
    "",
    tableMd(
      ["process", "CPU ms per request (concurrency 16)", "CPU ms per MiB (bulk)"],
      (["relay", "daemon"] as const).map((p) => [
        p,
        f(r.cpu[p].msPerRequest, 3),
        f(r.cpu[p].msPerMiB, 2),
      ]),
    ),
    "",
    `Daemon RSS (MiB): idle ${f(r.rss.idle, 1)}, peak at concurrency 256 ${f(r.rss.underLoad, 1)}, ` +
      `peak during bulk ${f(r.rss.bulk, 1)}, after load ${f(r.rss.afterLoad, 1)}; a freshly started ` +
      `daemon idle ${f(r.rss.slowIdle, 1)}, its peak with a slow consumer (1 MiB/s of a 1 GiB ` +
      `response, 5 s) ${f(r.rss.slowConsumer, 1)}. Relay RSS idle ${f(r.rss.relayIdle, 1)}.`,
    "",
    `Re-registration after a relay restart (ms from the new relay answering to the model being listed), ` +
      `${r.reconnectMs.length} restarts: ${r.reconnectMs.map((x) => f(x, 0)).join(", ")}.`,
  ].join("\n");
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
