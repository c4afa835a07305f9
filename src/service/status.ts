/** `service status`: is the unit installed, its user and key in place, and does it run? */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fetchStatus } from "../daemon/status-server.ts";
import { systemctl, systemdManages } from "./systemctl.ts";
import { PATHS, UNIT_NAME } from "./unit.ts";
import { findUser } from "./users.ts";

/** One line of the report; `ok: false` lines make the command exit 1. */
export interface StatusLine {
  what: string;
  ok: boolean;
  detail: string;
}

/** Reads the install in `root` and, on this machine, asks systemd and the daemon. */
export async function serviceStatus(
  root: string,
  user: string,
  statusPort: number,
): Promise<StatusLine[]> {
  const at = (p: string): string => join(root, p);
  const lines: StatusLine[] = [];
  const unit = existsSync(at(PATHS.unit));
  const exec = unit ? /^ExecStart=(.*)$/m.exec(readFileSync(at(PATHS.unit), "utf8"))?.[1] : "";
  lines.push({
    what: "unit",
    ok: unit,
    detail: unit
      ? `${PATHS.unit}: ${exec ?? "no ExecStart"}`
      : `not installed: run \`club-provider service install\` (or install.sh)`,
  });
  const account = findUser(root, user);
  lines.push({
    what: "user",
    ok: account !== undefined,
    detail: account
      ? `${user} (uid ${account.id})`
      : `no system user ${user}: run \`club-provider service install\``,
  });
  if (!existsSync(at(PATHS.key)))
    lines.push({
      what: "key",
      ok: false,
      detail: `${PATHS.key} is missing: run \`club-provider service install --api-key-file FILE\``,
    });
  else {
    const mode = statSync(at(PATHS.key)).mode & 0o777;
    lines.push({
      what: "key",
      ok: (mode & 0o077) === 0,
      detail:
        (mode & 0o077) === 0
          ? `${PATHS.key} (mode ${mode.toString(8)})`
          : `${PATHS.key} is readable by others (mode ${mode.toString(8)}): run chmod 600 ${PATHS.key}`,
    });
  }
  if (!systemdManages(root)) {
    lines.push({
      what: "systemd",
      ok: true,
      detail: root === "/" ? "not running on this machine" : `not asked (--root ${root})`,
    });
    return lines;
  }
  const enabled = await systemctl(["is-enabled", UNIT_NAME]);
  const active = await systemctl(["is-active", UNIT_NAME]);
  lines.push({
    what: "systemd",
    ok: active.text === "active",
    detail: `${enabled.text || "unknown"}, ${active.text || "unknown"}${active.text === "active" ? "" : ": `journalctl -u club-provider -e` shows why"}`,
  });
  const status = (await fetchStatus(statusPort)) as { tunnels?: { state: string }[] } | null;
  const up = status?.tunnels?.filter((t) => t.state === "connected").length ?? 0;
  lines.push({
    what: "daemon",
    ok: up > 0,
    detail: status
      ? `${up} tunnel(s) connected (\`club-provider status\` for more)`
      : `no answer on 127.0.0.1:${statusPort}`,
  });
  return lines;
}
