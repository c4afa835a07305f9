/** systemctl, only where systemd runs the machine and the target is the real root. */
import { existsSync } from "node:fs";
import { runTool } from "../hardware/index.ts";

/** True when systemd is PID 1 here (its runtime directory exists) and `root` is `/`. */
export function systemdManages(root: string): boolean {
  return root === "/" && existsSync("/run/systemd/system");
}

/** Runs `systemctl args`; resolves with its output or why it failed. */
export async function systemctl(args: string[]): Promise<{ ok: boolean; text: string }> {
  const r = await runTool("systemctl", args, { env: process.env, timeoutMs: 60_000 });
  return r.ok ? { ok: true, text: r.stdout.trim() } : { ok: false, text: r.message };
}
