/**
 * `club-provider pause [--reason TEXT]` and `club-provider resume`: the owner's say over when
 * the rig serves, sent to the running daemon's loopback status server. A paused rig finishes
 * what it runs, takes nothing new, and stays connected; the pause outlives a restart.
 */
import { Command } from "commander";
import type { PauseView } from "../daemon/pause.ts";
import { postStatus } from "../daemon/status-server.ts";
import { UserError } from "../errors.ts";
import { daemonPort, noDaemon } from "./daemon-port.ts";
import { print } from "./output.ts";

interface PauseFlags {
  reason?: string;
  statusPort?: string;
  json?: boolean;
}

/** The pause state as a person reads it. */
export function renderPause(view: PauseView): string {
  const lines = [view.paused ? `paused: ${view.paused}` : "serving"];
  if (view.paused && view.manual === null)
    lines.push(
      "(the serving schedule pauses it; change it with `club-provider config set schedule`)",
    );
  for (const [model, why] of Object.entries(view.paused_models))
    lines.push(`  ${model}: paused (${why})`);
  return lines.join("\n");
}

async function send(path: "/pause" | "/resume", flags: PauseFlags): Promise<void> {
  const port = daemonPort(flags.statusPort);
  const answer = await postStatus(
    port,
    path,
    flags.reason === undefined ? {} : { reason: flags.reason },
  );
  if (!answer) throw noDaemon(port);
  if (answer.status !== 200) {
    const message =
      (answer.body as { error?: { message?: string } } | null)?.error?.message ??
      JSON.stringify(answer.body);
    throw new UserError("pause_failed", `the daemon refused ${path}: ${message}`);
  }
  const view = answer.body as PauseView;
  print(flags.json ? JSON.stringify(view, null, 2) : renderPause(view));
}

const portOption = [
  "--status-port <port>",
  "status port of the daemon (default 8790, or CLUB_STATUS_PORT)",
] as const;

/** The `pause` command. */
export function pauseCommand(): Command {
  return new Command("pause")
    .description(
      "stop taking new requests (running ones finish; the rig stays connected and stays paused across restarts)",
    )
    .option("--reason <text>", "why, shown to you in the club's provider list")
    .option(...portOption)
    .option("--json", "print the daemon's answer as JSON")
    .action((flags: PauseFlags) => send("/pause", flags));
}

/** The `resume` command. */
export function resumeCommand(): Command {
  return new Command("resume")
    .description("take requests again after `club-provider pause`")
    .option(...portOption)
    .option("--json", "print the daemon's answer as JSON")
    .action((flags: PauseFlags) => send("/resume", flags));
}
