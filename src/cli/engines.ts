/**
 * `club-provider engines [list]`, `engines start|stop NAME`, `engines logs NAME`: the engines the
 * daemon runs itself (`engines` setting), through the running daemon's loopback status server.
 */
import { Command } from "commander";
import type { EngineView } from "../engines/manager.ts";
import { postStatus } from "../daemon/status-server.ts";
import { UserError } from "../errors.ts";
import { daemonPort, noDaemon } from "./daemon-port.ts";
import { print } from "./output.ts";

interface Flags {
  statusPort?: string;
  json?: boolean;
  lines?: string;
}

const port = (flags: Flags): number => daemonPort(flags.statusPort);

function refused(what: string, status: number, body: unknown): UserError {
  const message =
    (body as { error?: { message?: string } } | null)?.error?.message ?? JSON.stringify(body);
  return new UserError("engines_failed", `the daemon refused ${what} (${status}): ${message}`);
}

async function get(p: number, path: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`http://127.0.0.1:${p}${path}`, { signal: AbortSignal.timeout(3000) });
  } catch {
    throw noDaemon(p);
  }
  const body: unknown = await res.json().catch(() => null);
  if (res.status === 404 && path === "/engines")
    throw new UserError(
      "no_engines",
      "the daemon runs no engines itself: add some with `club-provider config set engines …` (docs/engines.md) and restart it",
    );
  if (!res.ok) throw refused(path, res.status, body);
  return body;
}

const ago = (ms: number | null): string =>
  ms === null ? "never" : `${Math.max(0, Math.round((Date.now() - ms) / 1000))} s ago`;

/** The engines as a table a person reads. */
export function renderEngines(engines: EngineView[]): string {
  if (engines.length === 0) return "no managed engines";
  const rows = engines.map((e) => [
    e.name,
    e.withdrawn ? "failed (withdrawn)" : e.state,
    e.vramMiB === null
      ? "-"
      : `${e.vramMiB} MiB${e.vramSource === "measured" ? " (measured)" : ""}`,
    e.gpus.length ? e.gpus.join(",") : "-",
    ago(e.lastUsedAt),
    String(e.starts),
    e.models.join(", "),
  ]);
  const head = ["ENGINE", "STATE", "VRAM", "GPUS", "LAST USE", "STARTS", "MODELS"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  const reasons = engines
    .filter((e) => e.reason && (e.state === "failed" || e.withdrawn))
    .map((e) => `  ${e.name}: ${e.reason}`);
  return [line(head), ...rows.map(line), ...(reasons.length ? ["", ...reasons] : [])].join("\n");
}

async function list(flags: Flags): Promise<void> {
  const body = (await get(port(flags), "/engines")) as { engines: EngineView[] };
  print(flags.json ? JSON.stringify(body, null, 2) : renderEngines(body.engines));
}

async function control(action: "start" | "stop", name: string, flags: Flags): Promise<void> {
  const p = port(flags);
  const answer = await postStatus(p, `/engines/${encodeURIComponent(name)}/${action}`, {}, 120_000);
  if (!answer) throw noDaemon(p);
  if (answer.status >= 300) throw refused(`${action} ${name}`, answer.status, answer.body);
  const view = (answer.body as { engine: EngineView }).engine;
  print(flags.json ? JSON.stringify(view, null, 2) : `${view.name}: ${view.state}`);
}

async function logs(name: string, flags: Flags): Promise<void> {
  const body = (await get(port(flags), `/engines/${encodeURIComponent(name)}/logs`)) as {
    lines: string[];
  };
  const n = flags.lines === undefined ? body.lines.length : Number(flags.lines);
  if (!Number.isInteger(n) || n < 0)
    throw new UserError("bad_lines", `--lines: expected a whole number, got ${flags.lines}`);
  print(
    flags.json
      ? JSON.stringify(body, null, 2)
      : body.lines.slice(-n || body.lines.length).join("\n"),
  );
}

const portOption = [
  "--status-port <port>",
  "status port of the daemon (default 8790, or CLUB_STATUS_PORT)",
] as const;

/**
 * A verb of `engines`, with the options every verb takes: the status port and `--json`. Its
 * action reads them with the parent's: commander gives an option the parent also has to the
 * parent, so `engines stop x --status-port 8791` sets it there, not on `stop`.
 */
function verb(
  cmd: Command,
  usage: string,
  description: string,
  run: (name: string, flags: Flags) => Promise<void>,
): Command {
  return cmd
    .command(usage)
    .description(description)
    .option(...portOption)
    .option("--json", "print JSON")
    .action((...args: unknown[]) => {
      const self = args.at(-1) as Command;
      return run(self.args[0] ?? "", self.optsWithGlobals<Flags>());
    });
}

/** The `engines` command and its verbs. */
export function enginesCommand(): Command {
  const cmd = new Command("engines")
    .description(
      "the engines the daemon starts on demand: state, VRAM, last use; start, stop, logs",
    )
    .option(...portOption)
    .option("--json", "print the daemon's answer as JSON")
    .action((flags: Flags) => list(flags));
  verb(cmd, "list", "list the managed engines with their state", (_, flags) => list(flags));
  verb(
    cmd,
    "start <name>",
    "start an engine now (also retries one withdrawn after failures)",
    (name, flags) => control("start", name, flags),
  );
  verb(
    cmd,
    "stop <name>",
    "stop an engine gracefully (requests in flight are cut)",
    (name, flags) => control("stop", name, flags),
  );
  verb(
    cmd,
    "logs <name>",
    "the engine's recent output (the last engineLogLines lines)",
    logs,
  ).option("--lines <n>", "only the last n lines");
  return cmd;
}
