/**
 * `club-provider service install|uninstall|status`: run the daemon as a systemd service, the
 * way install.sh sets it up. `--root DIR` targets a throwaway root; `--dry-run` only tells.
 */
import { existsSync, realpathSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { openStore, readKeyFile, resolveConfig, type ConfigFlags } from "../config.ts";
import { UserError } from "../errors.ts";
import { installService, uninstallService } from "../service/install.ts";
import { serviceStatus } from "../service/status.ts";
import { print } from "./output.ts";

const DEFAULT_USER = "club-provider";

/** `bin/club-provider` of this installation (a checkout, or the package with `dist/`). */
function thisBin(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "bin", "club-provider"))) {
    if (dirname(dir) === dir) throw new Error("cannot find bin/club-provider above this module");
    dir = dirname(dir);
  }
  return realpathSync(join(dir, "bin", "club-provider"));
}

/** A path as the target root sees it: `ROOT/usr/local/…` → `/usr/local/…`. */
function inRoot(root: string, path: string): string {
  const r = resolve(root);
  return r !== "/" && path.startsWith(`${r}/`) ? path.slice(r.length) : path;
}

interface InstallFlags extends ConfigFlags {
  root: string;
  dryRun?: boolean;
  user: string;
  node?: string;
  bin?: string;
  start: boolean;
}

function installCommand(): Command {
  return new Command("install")
    .description("install and start the daemon as a systemd service (club-provider.service)")
    .option("--relay <url>", "relay URL (or CLUB_RELAY_URL, or the stored relayUrl)")
    .option(
      "--api-key-file <file>",
      "the API key to install (or CLUB_API_KEY); copied to a 0600 file",
    )
    .option("--name <name>", "provider name (default: the hostname)")
    .option(
      "--service <url>",
      "an engine to serve (repeatable)",
      (v: string, a: string[]) => [...a, v],
      [],
    )
    .option("--no-autodetect", "do not probe default engine ports")
    .option("--status-port <port>", "loopback port of the status server")
    .option("--user <name>", "system user the service runs as", DEFAULT_USER)
    .option("--root <dir>", "install into this directory instead of / (no systemctl)", "/")
    .option("--node <path>", "node binary for ExecStart (default: this one)")
    .option("--bin <path>", "club-provider entry for ExecStart (default: this one)")
    .option("--no-start", "enable the service but do not start it now")
    .option("--dry-run", "print what would be done, change nothing")
    .action(async (f: InstallFlags) => {
      const config = resolveConfig(openStore().store, process.env, f);
      if (!config.relayUrl)
        throw new UserError("no_relay", "no relay URL: pass --relay URL (or set CLUB_RELAY_URL)");
      const root = resolve(f.root);
      const startArgs = ["--relay", config.relayUrl, "--name", config.name];
      for (const s of f.service ?? []) startArgs.push("--service", s);
      if (f.autodetect === false) startArgs.push("--no-autodetect");
      if (f.statusPort !== undefined) startArgs.push("--status-port", f.statusPort);
      await installService({
        root,
        dryRun: f.dryRun ?? false,
        user: f.user,
        node: inRoot(root, resolve(f.node ?? process.execPath)),
        bin: inRoot(root, resolve(f.bin ?? thisBin())),
        startArgs,
        key: f.apiKeyFile ? readKeyFile(f.apiKeyFile) : config.apiKey,
        start: f.start,
        report: print,
      });
    });
}

function uninstallCommand(): Command {
  return new Command("uninstall")
    .description("stop, disable and remove the service (--purge: its key, settings and user too)")
    .option("--purge", "also remove /etc/club-provider and the system user")
    .option("--user <name>", "system user of the service", DEFAULT_USER)
    .option("--root <dir>", "uninstall from this directory instead of /", "/")
    .option("--dry-run", "print what would be done, change nothing")
    .action(async (f: { purge?: boolean; user: string; root: string; dryRun?: boolean }) => {
      await uninstallService({
        root: resolve(f.root),
        dryRun: f.dryRun ?? false,
        user: f.user,
        purge: f.purge ?? false,
        report: print,
      });
    });
}

function statusCommand(): Command {
  return new Command("status")
    .description("is the service installed, enabled and running; exit 1 when something is missing")
    .option("--user <name>", "system user of the service", DEFAULT_USER)
    .option("--root <dir>", "look in this directory instead of /", "/")
    .option("--status-port <port>", "status port of the daemon (default 8790)")
    .action(async (f: { user: string; root: string; statusPort?: string }) => {
      const config = resolveConfig(
        {},
        process.env,
        f.statusPort ? { statusPort: f.statusPort } : {},
      );
      const lines = await serviceStatus(resolve(f.root), f.user, config.statusPort);
      for (const l of lines) print(`${l.ok ? "ok  " : "FAIL"}  ${l.what.padEnd(8)} ${l.detail}`);
      if (lines.some((l) => !l.ok)) process.exitCode = 1;
    });
}

/** The `service` command and its subcommands. */
export function serviceCommand(): Command {
  return new Command("service")
    .description("run the daemon as a systemd service: install, uninstall, status")
    .addCommand(installCommand())
    .addCommand(uninstallCommand())
    .addCommand(statusCommand());
}
