/**
 * Runs one hardware tool (nvidia-smi, rocm-smi, system_profiler, …) asynchronously with a
 * deadline. A tool that hangs is killed with its whole process group, so a wedged driver never
 * holds the daemon; the event loop is never blocked.
 */
import { spawn } from "node:child_process";
import { ClubError } from "../errors.ts";

/** How a tool run ended when it did not succeed. */
export type ToolProblem = "missing" | "timeout" | "failed";

/** stdout of a tool that exited 0, or why it did not. */
export type ToolResult =
  { ok: true; stdout: string } | { ok: false; problem: ToolProblem; message: string };

/** How to run a tool. */
export interface ToolOptions {
  /** Environment of the tool; its `PATH` is where the command is looked up. */
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
}

/** Secrets the daemon may hold in its environment; no tool it runs needs them. */
const SECRET_ENV: ReadonlySet<string> = new Set(["CLUB_API_KEY", "CLUB_RELAY_KEYS"]);

/** A tool run that failed, for callers that prefer a rejection (the GPU monitor). */
export class ToolError extends ClubError {
  constructor(
    readonly problem: ToolProblem,
    message: string,
  ) {
    super(`tool_${problem}`, message);
  }
}

/** Output past this is not a hardware report; the tool is stopped. */
const MAX_OUTPUT_BYTES = 8 * 1024 * 1024;

function firstLine(text: string): string {
  return (
    text
      .split("\n")
      .map((l) => l.trim())
      .find((l) => l !== "") ?? ""
  );
}

/**
 * Runs `command args` and collects stdout. Never rejects: a missing command, a non-zero exit
 * and a timeout come back as `{ ok: false, problem, message }`, the message naming the tool.
 * @example
 * const r = await runTool("nvidia-smi", ["-L"], { env: process.env, timeoutMs: 3000 });
 * if (r.ok) console.log(r.stdout); else console.log(r.message);
 */
export function runTool(
  command: string,
  args: readonly string[],
  options: ToolOptions,
): Promise<ToolResult> {
  return new Promise((resolve) => {
    // Its own process group on POSIX, so a timeout kills the tool and anything it started.
    const group = process.platform !== "win32";
    const env = Object.fromEntries(
      Object.entries(options.env).filter(([name]) => !SECRET_ENV.has(name)),
    );
    const child = spawn(command, args, {
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: group,
      windowsHide: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (result: ToolResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const kill = (): void => {
      try {
        if (group && child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
        else child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      kill();
      finish({
        ok: false,
        problem: "timeout",
        message: `${command} did not answer within ${options.timeoutMs} ms and was stopped`,
      });
    }, options.timeoutMs);
    const collect =
      (into: Buffer[]) =>
      (chunk: Buffer): void => {
        size += chunk.length;
        if (size > MAX_OUTPUT_BYTES) {
          kill();
          finish({ ok: false, problem: "failed", message: `${command} printed too much output` });
          return;
        }
        into.push(chunk);
      };
    child.stdout.on("data", collect(out));
    child.stderr.on("data", collect(err));
    child.once("error", (e: NodeJS.ErrnoException) => {
      finish(
        e.code === "ENOENT"
          ? { ok: false, problem: "missing", message: `${command} not found on PATH` }
          : { ok: false, problem: "failed", message: `${command} could not run: ${e.message}` },
      );
    });
    child.once("close", (code, signal) => {
      const stdout = Buffer.concat(out).toString("utf8");
      if (code === 0) {
        finish({ ok: true, stdout });
        return;
      }
      // nvidia-smi prints its errors on stdout; most other tools use stderr.
      const detail = firstLine(Buffer.concat(err).toString("utf8")) || firstLine(stdout);
      const how = code === null ? `was killed by ${String(signal)}` : `exited with code ${code}`;
      finish({
        ok: false,
        problem: "failed",
        message: `${command} ${how}${detail ? `: ${detail}` : ""}`,
      });
    });
  });
}

/** `runTool` for callers that want stdout or a `ToolError`. */
export async function runToolOrThrow(
  command: string,
  args: readonly string[],
  options: ToolOptions,
): Promise<string> {
  const result = await runTool(command, args, options);
  if (!result.ok) throw new ToolError(result.problem, result.message);
  return result.stdout;
}
