/**
 * `club-provider doctor`: checks what the daemon needs (Node.js, config, the relay, the key,
 * each engine, GPU tools) and says how to fix each problem. Exits 1 when any check fails.
 */
import { Command } from "commander";
import { openStore, resolveConfig, type Config, type ConfigFlags } from "../config.ts";
import { fetchStatus } from "../daemon/status-server.ts";
import { describeError } from "../errors.ts";
import {
  checkEngines,
  checkKey,
  checkNode,
  checkRelayReachable,
  type CheckResult,
} from "./doctor-checks.ts";
import { checkGpuTools } from "./doctor-gpu.ts";
import { print } from "./output.ts";

interface DoctorFlags extends ConfigFlags {
  timeout: string;
}

const MARK: Record<CheckResult["status"], string> = {
  ok: "ok  ",
  warn: "warn",
  fail: "FAIL",
  skip: "skip",
};

function keySource(flags: ConfigFlags): string {
  const file = flags.apiKeyFile ?? process.env.CLUB_API_KEY_FILE;
  if (file) return `the key file ${file}`;
  if (process.env.CLUB_API_KEY) return "CLUB_API_KEY";
  return "the stored config";
}

/** Config is read the way `start` reads it; a missing relay or key is a failure here. */
function checkConfig(flags: ConfigFlags): { result: CheckResult; config: Config | null } {
  let config: Config;
  try {
    config = resolveConfig(openStore().store, process.env, flags);
  } catch (err) {
    const result: CheckResult = {
      name: "config",
      status: "fail",
      detail: describeError(err),
      fix: "fix each problem listed (flags, CLUB_* variables, or `club-provider config set`/`unset`)",
    };
    return { result, config: null };
  }
  const missing: string[] = [];
  const fixes: string[] = [];
  if (!config.relayUrl) {
    missing.push("no relay URL");
    fixes.push(
      "pass --relay URL, set CLUB_RELAY_URL or `club-provider config set relayUrl wss://…`",
    );
  }
  if (!config.apiKey) {
    missing.push("no API key");
    fixes.push(
      "set CLUB_API_KEY, pass --api-key-file FILE (mode 0600) or `club-provider config set apiKey <key>`",
    );
  }
  if (missing.length)
    return {
      result: { name: "config", status: "fail", detail: missing.join(", "), fix: fixes.join("; ") },
      config,
    };
  const detail = `relay ${config.relayUrl ?? ""}, key from ${keySource(flags)}, provider "${config.name}"`;
  return { result: { name: "config", status: "ok", detail }, config };
}

async function daemonRunning(port: number): Promise<CheckResult> {
  const name = "daemon";
  if (port === 0)
    return { name, status: "skip", detail: "the status server is turned off (status port 0)" };
  const status = (await fetchStatus(port)) as { tunnels?: { state: string }[] } | null;
  if (!status)
    return {
      name,
      status: "warn",
      detail: `no daemon answers on 127.0.0.1:${port}`,
      fix: "start it: `club-provider start`, or `systemctl start club-provider` for the service",
    };
  const up = (status.tunnels ?? []).filter((t) => t.state === "connected").length;
  return up
    ? { name, status: "ok", detail: `running; ${up} tunnel(s) connected` }
    : {
        name,
        status: "warn",
        detail: "running, but no tunnel is connected",
        fix: "`club-provider status` shows the last errors",
      };
}

/** Runs every check, in order; those that need a relay are skipped without one. */
export async function runChecks(flags: ConfigFlags, timeoutMs: number): Promise<CheckResult[]> {
  const results: CheckResult[] = [checkNode()];
  const { result, config } = checkConfig(flags);
  results.push(result);
  const gpu = checkGpuTools();
  if (config?.relayUrl) {
    const reach = await checkRelayReachable(config.relayUrl, timeoutMs);
    results.push(reach);
    if (!config.apiKey)
      results.push({ name: "API key accepted", status: "skip", detail: "no API key" });
    else if (reach.status !== "ok")
      results.push({
        name: "API key accepted",
        status: "skip",
        detail: "the relay is unreachable",
      });
    else
      results.push(
        await checkKey(config.relayUrl, config.apiKey, timeoutMs, config.tunnelProtocol),
      );
  } else
    results.push({ name: "relay", status: "skip", detail: "no relay URL: see the config check" });
  if (config) results.push(...(await checkEngines(config)));
  else results.push({ name: "engines", status: "skip", detail: "the config has problems" });
  results.push(await gpu);
  if (config) results.push(await daemonRunning(config.statusPort));
  return results;
}

/** The results as lines a person reads. */
export function renderChecks(results: CheckResult[]): string {
  const lines = results.map((r) => {
    const line = `${MARK[r.status]}  ${r.name}: ${r.detail}`;
    return r.fix && r.status !== "ok" ? `${line}\n      fix: ${r.fix}` : line;
  });
  const failed = results.filter((r) => r.status === "fail").length;
  lines.push(
    "",
    failed ? `${failed} problem${failed === 1 ? "" : "s"} found.` : "No problems found.",
  );
  return lines.join("\n");
}

/** The `doctor` command. */
export function doctorCommand(): Command {
  return new Command("doctor")
    .description(
      "check Node.js, config, the relay, the key, each engine and GPU tools; say what to fix",
    )
    .option("--relay <url>", "relay URL to check (or CLUB_RELAY_URL, or the stored relayUrl)")
    .option("--api-key-file <file>", "read the API key from this file (or CLUB_API_KEY)")
    .option("--name <name>", "provider name")
    .option(
      "--service <url>",
      "an engine to check (repeatable)",
      (v: string, a: string[]) => [...a, v],
      [],
    )
    .option("--no-autodetect", "do not probe default engine ports")
    .option("--status-port <port>", "status port of a running daemon (default 8790)")
    .option("--timeout <seconds>", "how long each network check may take", "5")
    .option("--json", "print the results as JSON")
    .action(async (flags: DoctorFlags & { json?: boolean }) => {
      const { timeout, json, ...configFlags } = flags;
      const results = await runChecks(configFlags, Number(timeout) * 1000);
      print(json ? JSON.stringify(results, null, 2) : renderChecks(results));
      if (results.some((r) => r.status === "fail")) process.exitCode = 1;
    });
}
