/**
 * `systemd-analyze verify` for the service tests. It needs no running systemd, only the
 * binary (Debian: `apt-get install -y systemd`); without it the tests skip that one check.
 */
import { spawnSync } from "node:child_process";

/** Whether systemd-analyze can be run here. */
export const HAS_SYSTEMD_ANALYZE =
  spawnSync("systemd-analyze", ["--version"], { stdio: "ignore" }).status === 0;

export const SKIP_REASON =
  "skipped: systemd-analyze is not installed (apt-get install -y systemd provides it)";

/** Exit code and everything it printed; a clean unit prints nothing. */
export function verifyUnit(path: string): { status: number | null; output: string } {
  const r = spawnSync("systemd-analyze", ["verify", path], { encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}
