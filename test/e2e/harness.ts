/**
 * Runs the real CLI as users start it (`bin/club-provider …`, on the Node running the tests),
 * in a throwaway config directory, and reads its JSON log lines.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { expect } from "vitest";

export const BIN = resolve(import.meta.dirname, "../../bin/club-provider");

export interface CliProcess {
  child: ChildProcess;
  /** Everything printed so far, stdout and stderr interleaved. */
  output(): string;
  /** Resolves with the `nth` (default first) output line matching `pattern`, printed or yet to come. */
  waitFor(pattern: RegExp, options?: { timeoutMs?: number; nth?: number }): Promise<string>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** A fresh directory for config and key files, so tests never touch the user's settings. */
export function scratchDir(): string {
  return mkdtempSync(join(tmpdir(), "club-e2e-"));
}

export function writeSecret(dir: string, name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

/**
 * Runs `relay` and `start` with `env` and expects each to stop at start with exit status 1 and
 * `message` on standard error, as the CLI's one-line error (no stack).
 */
export function expectRefusedAtStart(env: Record<string, string>, message: string): void {
  for (const command of [["relay", "--port", "0"], ["start"]]) {
    const run = spawnSync(BIN, command, {
      encoding: "utf8",
      env: { ...process.env, CLUB_LOG_FORMAT: "json", ...env },
      timeout: 30_000,
    });
    expect(run.status, command[0]).toBe(1);
    expect(run.stderr).toContain(message);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  }
}

export function runCli(
  args: string[],
  options: { home: string; env?: Record<string, string>; bin?: string },
): CliProcess {
  const child = spawn(process.execPath, [options.bin ?? BIN, ...args], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: options.home,
      XDG_CONFIG_HOME: join(options.home, "config"),
      CLUB_LOG_FORMAT: "json",
      // Each line at once: tests read a running process's log as it goes, and check what it
      // did not say. The batching a service gets by default is tested in test/log.
      CLUB_LOG_FLUSH_MS: "0",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  const waiters: { pattern: RegExp; nth: number; resolve: (line: string) => void }[] = [];
  const match = (pattern: RegExp, nth: number): string | undefined =>
    text.split("\n").filter((l) => pattern.test(l))[nth - 1];
  const onData = (chunk: Buffer): void => {
    text += chunk.toString("utf8");
    for (const w of [...waiters]) {
      const line = match(w.pattern, w.nth);
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
  return {
    child,
    output: () => text,
    exited,
    waitFor(pattern, { timeoutMs = 20_000, nth = 1 } = {}) {
      const line = match(pattern, nth);
      if (line !== undefined) return Promise.resolve(line);
      return new Promise((res, rej) => {
        const timer = setTimeout(
          () =>
            rej(
              new Error(
                `no line matching ${String(pattern)} within ${timeoutMs} ms; output:\n${text}`,
              ),
            ),
          timeoutMs,
        );
        const waiter = {
          pattern,
          nth,
          resolve: (l: string) => {
            clearTimeout(timer);
            res(l);
          },
        };
        waiters.push(waiter);
        void exited.then(() => {
          if (!waiters.includes(waiter)) return;
          clearTimeout(timer);
          rej(new Error(`process exited before printing ${String(pattern)}; output:\n${text}`));
        });
      });
    },
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
