/**
 * One engine process, in a process group of its own, that dies with the daemon. Node cannot set
 * PR_SET_PDEATHSIG, so each engine runs under a tiny watchdog (a second `node`, the group's
 * leader) that holds a pipe from the daemon: when the daemon dies, even by SIGKILL, the pipe
 * ends and the watchdog takes the whole group down. Stopping is SIGTERM to the group, a wait,
 * then SIGKILL of the group.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:os";

/** How an engine process ended: its exit code, or the signal that killed it. */
export interface ExitInfo {
  code: number | null;
  signal: string | null;
}

/**
 * The watchdog, run as `node -e WATCHDOG <graceMs> <command> <args…>`. It ignores SIGTERM sent to
 * its group (the daemon's stop is for the engine), reports the engine's end as its own exit code
 * (128 + signal number for a signal), and on EOF of stdin (the daemon gone) stops the group.
 */
const WATCHDOG = `"use strict";
const { spawn } = require("node:child_process");
const { constants } = require("node:os");
const [grace, cmd, ...args] = process.argv.slice(1);
const group = (sig) => { try { process.kill(-process.pid, sig); } catch {} };
let orphaned = false;
process.on("SIGTERM", () => {});
const child = spawn(cmd, args, { stdio: ["ignore", "inherit", "inherit"] });
child.on("error", (e) => { process.stderr.write("cannot start " + cmd + ": " + e.message + "\\n"); process.exit(127); });
child.on("exit", (code, signal) => {
  if (orphaned) group("SIGKILL");
  process.exit(signal ? 128 + (constants.signals[signal] || 0) : code === null ? 1 : code);
});
process.stdin.on("data", () => {});
process.stdin.on("close", () => {
  orphaned = true;
  group("SIGTERM");
  setTimeout(() => group("SIGKILL"), Number(grace));
});
`;

/** Longest line kept from an engine's output; the rest of a longer line is dropped. */
export const MAX_LINE = 4096;

export interface SpawnOptions {
  /** argv, placeholders already filled. */
  command: string[];
  /** The whole environment of the engine. */
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Each line the engine writes on stdout or stderr, at most {@link MAX_LINE} characters. */
  onLine?: (line: string) => void;
  /** How long the watchdog waits after SIGTERM when the daemon died (default 5 s). */
  orphanGraceMs?: number;
}

function lines(onLine: (line: string) => void): (chunk: Buffer) => void {
  let pending = "";
  let dropping = false;
  return (chunk) => {
    const parts = (pending + chunk.toString("utf8")).split("\n");
    pending = parts.pop() ?? "";
    for (const p of parts) {
      if (!dropping) onLine(p.replace(/\r$/, "").slice(0, MAX_LINE));
      dropping = false;
    }
    if (pending.length > MAX_LINE) {
      if (!dropping) onLine(pending.slice(0, MAX_LINE));
      dropping = true;
      pending = "";
    }
  };
}

/**
 * How long the end of an engine waits for its group to be gone after the SIGKILL. A killed
 * process leaves quickly; this bounds the wait where nothing reaps the orphans (a container
 * whose first process is not an init).
 */
const GROUP_GONE_MS = 2000;

/** Whether a process group still has members (zombies count until they are reaped). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once the group `pgid` has no members, or after `ms`. */
async function groupGone(pgid: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (groupAlive(pgid) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** What a watchdog exit code means for the engine under it. */
function decode(code: number | null, signal: NodeJS.Signals | null): ExitInfo {
  if (signal) return { code: null, signal };
  if (code !== null && code > 128) {
    const name = Object.entries(constants.signals).find(([, n]) => n === code - 128)?.[0];
    if (name) return { code: null, signal: name };
  }
  return { code, signal: null };
}

/** A running engine under its watchdog. */
export class EngineProcess {
  readonly #child: ChildProcess;
  /** The watchdog's pid, which is also the group's id. */
  readonly pid: number;
  /** Resolves once the engine (and its watchdog) ended. */
  readonly exited: Promise<ExitInfo>;
  #exit: ExitInfo | null = null;

  constructor(options: SpawnOptions) {
    const [cmd, ...args] = options.command;
    if (!cmd) throw new Error("empty command");
    this.#child = spawn(
      process.execPath,
      ["-e", WATCHDOG, String(options.orphanGraceMs ?? 5000), cmd, ...args],
      {
        detached: true,
        stdio: ["pipe", "pipe", "pipe"],
        env: options.env,
        ...(options.cwd ? { cwd: options.cwd } : {}),
      },
    );
    const pid = this.#child.pid;
    if (pid === undefined) throw new Error(`cannot start the watchdog for ${cmd}`);
    this.pid = pid;
    const onLine = options.onLine ?? (() => {});
    this.#child.stdout?.on("data", lines(onLine));
    this.#child.stderr?.on("data", lines(onLine));
    // The pipe's only job is to end when the daemon does; nothing is ever written to it.
    this.#child.stdin?.on("error", () => {});
    this.exited = new Promise((resolve) => {
      this.#child.once("exit", (code, signal) => {
        const exit = decode(code, signal);
        // Anything the engine left in its group (workers, a shell's children) goes with it, and
        // the engine counts as ended once the kernel has taken the group away (its memory, its
        // GPU context), not when the leader alone is gone.
        this.#signalGroup("SIGKILL");
        void groupGone(this.pid, GROUP_GONE_MS).then(() => {
          this.#exit = exit;
          resolve(exit);
        });
      });
    });
  }

  get running(): boolean {
    return this.#exit === null;
  }

  #signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // ESRCH: the group is gone already
    }
  }

  /** Kills the group at once (tests, and a start that ran out of time). */
  kill(): Promise<ExitInfo> {
    this.#signalGroup("SIGKILL");
    return this.exited;
  }

  /** SIGTERM to the group, up to `graceMs` for it to end, then SIGKILL of the group. */
  async stop(graceMs: number): Promise<ExitInfo> {
    if (!this.running) return this.exited;
    this.#signalGroup("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), graceMs)));
    const first = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (first === "late") this.#signalGroup("SIGKILL");
    return this.exited;
  }
}

/** How an exit reads in a reason: `exit code 1`, `killed by SIGKILL`. */
export function describeExit(exit: ExitInfo): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}
