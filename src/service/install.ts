/**
 * `service install` and `service uninstall`: the system user, the key in a 0600 file, the
 * unit, and systemctl. Every step is described first; `dryRun` only describes. A `root` other
 * than `/` installs into that directory (a throwaway root, an image) and never calls systemctl.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { UserError } from "../errors.ts";
import { systemctl, systemdManages } from "./systemctl.ts";
import { PATHS, UNIT_NAME, renderUnit, type UnitOptions } from "./unit.ts";
import { ensureUser, existingGroups, findUser, removeUser } from "./users.ts";

/** What to install, and where. */
export interface InstallOptions extends Omit<UnitOptions, "supplementaryGroups"> {
  /** Target root; `/` for this machine. */
  root: string;
  dryRun: boolean;
  /** The API key; when absent an existing key file is kept. */
  key: string | undefined;
  /** Start (or restart) the service now, not only enable it. */
  start: boolean;
  /** Receives one line per step. */
  report: (line: string) => void;
}

/** Directories the service must not live under: `ProtectHome=yes` hides them from it. */
const HIDDEN = ["/home/", "/root/", "/run/user/"];

const ENV_TEMPLATE = `# Environment of club-provider.service (KEY=value lines), read at each start.
# CLUB_LOG_LEVEL=debug
# CLUB_STATUS_PORT=8790
`;

function own(path: string, root: string, user: string, dirGroupOnly = false): void {
  // Only root can give files away; an unprivileged install into a throwaway root keeps its own.
  if (process.getuid?.() !== 0) return;
  const account = findUser(root, user);
  if (account) chownSync(path, dirGroupOnly ? 0 : account.id, account.gid);
}

/** Installs (or updates) the service. Throws a UserError when a step cannot be done. */
export async function installService(o: InstallOptions): Promise<void> {
  const at = (p: string): string => join(o.root, p);
  const did = (now: string, past: string): string => (o.dryRun ? `would ${now}` : past);
  for (const path of [o.node, o.bin])
    if (HIDDEN.some((h) => path.startsWith(h)))
      o.report(
        `warning: ${path} is under ${path.split("/").slice(0, 2).join("/")}, which the service cannot see (ProtectHome=yes); install Node.js and club-provider system-wide (install.sh does)`,
      );
  if (!o.key && !existsSync(at(PATHS.key)))
    throw new UserError(
      "no_api_key",
      "no API key to install: pass --api-key-file FILE or set CLUB_API_KEY (it is copied to a 0600 file the service reads)",
    );

  if (o.dryRun) o.report(`would create the system user ${o.user} unless it exists`);
  else o.report(await ensureUser(o.root, o.user));

  o.report(`${did("write", "wrote")} ${PATHS.configDir}/ (0750, group ${o.user})`);
  if (o.key)
    o.report(`${did("write", "wrote")} the API key to ${PATHS.key} (0600, owner ${o.user})`);
  else o.report(`kept the API key in ${PATHS.key}`);
  if (!existsSync(at(PATHS.env)))
    o.report(`${did("write", "wrote")} ${PATHS.env} (settings, commented out)`);
  const unit = renderUnit({
    ...o,
    supplementaryGroups: existingGroups(o.root, ["video", "render"]),
  });
  o.report(`${did("write", "wrote")} ${PATHS.unit}:`);
  o.report(unit.replace(/^/gm, "    ").trimEnd());
  if (!o.dryRun) {
    mkdirSync(at(PATHS.configDir), { recursive: true, mode: 0o750 });
    chmodSync(at(PATHS.configDir), 0o750);
    own(at(PATHS.configDir), o.root, o.user, true);
    if (o.key) {
      rmSync(at(PATHS.key), { force: true });
      writeFileSync(at(PATHS.key), `${o.key}\n`, { mode: 0o600 });
      own(at(PATHS.key), o.root, o.user);
    }
    if (!existsSync(at(PATHS.env))) writeFileSync(at(PATHS.env), ENV_TEMPLATE, { mode: 0o640 });
    mkdirSync(dirname(at(PATHS.unit)), { recursive: true });
    writeFileSync(at(PATHS.unit), unit, { mode: 0o644 });
  }

  const steps = [
    ["daemon-reload"],
    ["enable", UNIT_NAME],
    ...(o.start ? [["restart", UNIT_NAME]] : []),
  ];
  if (!systemdManages(o.root)) {
    const why = o.root === "/" ? "systemd is not running here" : `installing into ${o.root}`;
    o.report(
      `skipped systemctl (${why}); on the target run: ${steps.map((s) => `systemctl ${s.join(" ")}`).join(" && ")}`,
    );
    return;
  }
  for (const args of steps) {
    o.report(`${did("run", "ran")} systemctl ${args.join(" ")}`);
    if (o.dryRun) continue;
    const r = await systemctl(args);
    if (!r.ok)
      throw new UserError("systemctl_failed", `systemctl ${args.join(" ")} failed: ${r.text}`);
  }
  if (o.start && !o.dryRun)
    o.report(
      "started; `club-provider service status` or `journalctl -u club-provider -f` shows how it runs",
    );
}

/** What to remove. */
export interface UninstallOptions {
  root: string;
  dryRun: boolean;
  user: string;
  /** Also remove the key, the settings and the user. */
  purge: boolean;
  report: (line: string) => void;
}

/** Stops, disables and removes the service; with `purge`, its key, settings and user too. */
export async function uninstallService(o: UninstallOptions): Promise<void> {
  const at = (p: string): string => join(o.root, p);
  const did = (now: string, past: string): string => (o.dryRun ? `would ${now}` : past);
  if (systemdManages(o.root))
    for (const args of [["disable", "--now", UNIT_NAME]]) {
      o.report(`${did("run", "ran")} systemctl ${args.join(" ")}`);
      if (!o.dryRun) await systemctl(args);
    }
  if (existsSync(at(PATHS.unit))) {
    o.report(`${did("remove", "removed")} ${PATHS.unit}`);
    if (!o.dryRun) rmSync(at(PATHS.unit));
  } else o.report(`no unit at ${PATHS.unit}`);
  if (systemdManages(o.root) && !o.dryRun) await systemctl(["daemon-reload"]);
  if (!o.purge) {
    if (existsSync(at(PATHS.configDir)))
      o.report(`kept ${PATHS.configDir} and the user ${o.user} (--purge removes them)`);
    return;
  }
  o.report(`${did("remove", "removed")} ${PATHS.configDir} (the key and settings)`);
  if (!o.dryRun) rmSync(at(PATHS.configDir), { recursive: true, force: true });
  if (o.dryRun) o.report(`would remove the system user ${o.user}`);
  else o.report(await removeUser(o.root, o.user));
}
