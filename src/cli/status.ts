/**
 * `club-provider status`: what the running daemon is doing, read from its status server
 * (loopback): tunnels, services, models, load, GPU figures and the last errors.
 */
import { Command } from "commander";
import { daemonPort } from "./daemon-port.ts";
import { fetchStatus } from "../daemon/status-server.ts";
import type { RecentError } from "../daemon/recent-errors.ts";
import type { PauseView } from "../daemon/pause.ts";
import { UserError } from "../errors.ts";
import type { JobStatus } from "../gateway/progress.ts";
import type { GpuLoad, ModelCard } from "../protocol/index.ts";
import type { MemberUsageRow } from "../daemon/member-usage.ts";
import { print, table } from "./output.ts";
import type { EngineView } from "../engines/manager.ts";
import type { ServiceState } from "../ui/browser/rig-types.ts";

/** The parts of `/status` this command prints. */
export interface DaemonStatus {
  name: string;
  version: string;
  started?: number;
  relay: string;
  /** Absent from daemons older than pausing. */
  pause?: PauseView;
  tunnels: { state: string; connects: number; connection_id: string | null }[];
  in_flight: number;
  queued?: number;
  /** `queued` is absent from daemons older than it. */
  services: (Omit<ServiceState, "queued"> & { queued?: number })[];
  gpu_load?: GpuLoad[];
  models: ModelCard[];
  recent_errors?: RecentError[];
  jobs?: JobStatus[];
  member_usage?: MemberUsageRow[];
  /** Managed engines; absent from daemons older than them. */
  engines?: EngineView[];
}

/** Other members' use of the rig since the daemon started, one row per member and model. */
export function renderMemberUsage(rows: MemberUsageRow[]): string[] {
  if (rows.length === 0) return [];
  return [
    "",
    "used by other members since the start (GET /v1/usage at the relay keeps it all):",
    table(
      ["MEMBER", "MODEL", "REQUESTS", "ERRORS", "ABORTED", "SENT"],
      rows.map((r) => [
        r.member,
        r.model,
        String(r.requests),
        String(r.errors),
        String(r.aborted),
        `${(r.bytes_out / 1024 / 1024).toFixed(1)} MiB`,
      ]),
    ),
  ];
}

/** "3d 4h", "5m 10s": how long ago, roughly. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const parts: [number, string][] = [
    [Math.floor(s / 86400), "d"],
    [Math.floor((s % 86400) / 3600), "h"],
    [Math.floor((s % 3600) / 60), "m"],
    [s % 60, "s"],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  if (first < 0) return "0s";
  return parts
    .slice(first, first + 2)
    .map(([n, u]) => `${n}${u}`)
    .join(" ");
}

const dash = (n: number | null, unit: string): string => (n === null ? "-" : `${n}${unit}`);

/** Cells of a progress bar. */
const BAR = 20;

/** `[#########-----------]  45%`, or "" while the engine has not said how far it got. */
export function progressBar(fraction: number | null): string {
  if (fraction === null) return "";
  const f = Math.min(1, Math.max(0, fraction));
  const full = Math.round(f * BAR);
  return `[${"#".repeat(full)}${"-".repeat(BAR - full)}] ${String(Math.round(f * 100)).padStart(3)}%`;
}

/** The requests in flight, each with what its engine says it does and how far it got. */
export function renderJobs(jobs: JobStatus[], now = Date.now()): string[] {
  if (jobs.length === 0) return [];
  return [
    "",
    table(
      ["JOB", "MODEL", "ENDPOINT", "FOR", "PROGRESS", "DETAIL"],
      jobs.map((j) => [
        j.request_id,
        j.model,
        j.endpoint,
        duration(now / 1000 - j.started),
        progressBar(j.progress) || "-",
        j.detail ?? "-",
      ]),
    ),
  ];
}

/** The status as a person reads it. */
export function renderStatus(s: DaemonStatus, now = Date.now()): string {
  const up = s.tunnels.filter((t) => t.state === "connected").length;
  const lines = [
    `club-provider ${s.version}, provider "${s.name}"` +
      (s.started === undefined ? "" : `, up ${duration(now / 1000 - s.started)}`),
    `relay:     ${s.relay}`,
    `ready:     ${up > 0 ? "yes" : "NO"} (${up} of ${s.tunnels.length} tunnel${s.tunnels.length === 1 ? "" : "s"} connected)`,
    `requests:  ${s.in_flight} in flight, ${s.queued ?? 0} queued`,
    ...(s.pause?.paused
      ? [
          `PAUSED:    ${s.pause.paused} (running requests finish; \`club-provider resume\` serves again)`,
        ]
      : []),
    ...Object.entries(s.pause?.paused_models ?? {}).map(
      ([model, why]) => `PAUSED:    ${model}: ${why}`,
    ),
    "",
    table(
      ["TUNNEL", "STATE", "CONNECTS", "CONNECTION"],
      s.tunnels.map((t, i) => [String(i), t.state, String(t.connects), t.connection_id ?? "-"]),
    ),
    "",
  ];
  if (s.services.length)
    lines.push(
      table(
        ["SERVICE", "ENGINE", "URL", "STATUS", "IN FLIGHT", "DETAIL"],
        s.services.map((v) => [
          v.name,
          v.engine,
          v.url,
          v.status,
          `${v.in_flight}/${v.max_concurrent}`,
          v.reason,
        ]),
      ),
    );
  else lines.push("No model server found: start one, or add it with --service http://HOST:PORT.");
  lines.push(
    "",
    s.models.length
      ? `models (${s.models.length}): ${s.models.map((m) => `${m.id} [${m.service_type}]`).join(", ")}`
      : "models: none advertised",
  );
  if (s.engines?.length)
    lines.push(
      "",
      table(
        ["ENGINE", "STATE", "STARTS", "STOPS", "EVICTED", "FAILURES", "LAST COLD START"],
        s.engines.map((e) => [
          e.name,
          e.withdrawn ? "failed (withdrawn)" : e.state,
          String(e.starts),
          String(Object.values(e.stops).reduce((a, b) => a + b, 0)),
          String(e.stops.evicted ?? 0),
          String(e.failures),
          e.coldStartSeconds === null ? "-" : `${e.coldStartSeconds.toFixed(1)} s`,
        ]),
      ),
    );
  lines.push(...renderJobs(s.jobs ?? [], now));
  lines.push(...renderMemberUsage(s.member_usage ?? []));
  if (s.gpu_load?.length)
    lines.push(
      "",
      table(
        ["GPU", "UTIL", "VRAM USED", "TEMP", "POWER"],
        s.gpu_load.map((g) => [
          String(g.index),
          dash(g.utilization_pct, "%"),
          dash(g.vram_used_mb, " MiB"),
          dash(g.temperature_c, "°C"),
          dash(g.power_w, " W"),
        ]),
      ),
    );
  const errors = s.recent_errors ?? [];
  lines.push("", errors.length ? "recent errors (oldest first):" : "recent errors: none");
  for (const e of errors)
    lines.push(`  ${e.time}  ${e.kind}  ${e.message}${e.count > 1 ? ` (×${e.count})` : ""}`);
  return lines.join("\n");
}

/** The `status` command. */
export function statusCommand(): Command {
  return new Command("status")
    .description("show what the running daemon is doing (read from its loopback status server)")
    .option("--json", "print the status server's /status JSON as is")
    .option("--status-port <port>", "status port of the daemon (default 8790, or CLUB_STATUS_PORT)")
    .action(async (opts: { json?: boolean; statusPort?: string }) => {
      const port = daemonPort(opts.statusPort);
      const status = (await fetchStatus(port, 3000)) as DaemonStatus | null;
      if (!status)
        throw new UserError(
          "no_daemon",
          `no daemon answers on 127.0.0.1:${port}. Start one (\`club-provider start\`, ` +
            "or `systemctl start club-provider` for the service), or pass the port it uses with --status-port.",
        );
      print(opts.json ? JSON.stringify(status, null, 2) : renderStatus(status));
    });
}
