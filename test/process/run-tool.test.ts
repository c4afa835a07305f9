import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { runTool, runToolOrThrow, ToolError } from "../../src/process/run-tool.ts";
import { fakeTools } from "../hardware/fake-tools.ts";

const SLEEP = ["/bin/sleep", "/usr/bin/sleep"].find((p) => existsSync(p)) ?? "sleep";

/** True once the process is gone (or a zombie nobody reaped, which holds no resources). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

describe("runTool", () => {
  it("returns stdout of a tool that succeeds", async () => {
    const fakes = fakeTools({ tool: [{ stdout: "hello\n" }] });
    expect(await runTool("tool", ["a"], { env: fakes.env, timeoutMs: 3000 })).toEqual({
      ok: true,
      stdout: "hello\n",
    });
  });

  it("runs the tool without the daemon's secrets in its environment", async () => {
    const env = {
      PATH: process.env.PATH,
      CLUB_API_KEY: "sk-secret",
      CLUB_RELAY_KEYS: "{}",
      KEEP: "1",
    };
    const r = await runTool("env", [], { env, timeoutMs: 3000 });
    expect(r.ok).toBe(true);
    const out = r.ok ? r.stdout : "";
    expect(out).toContain("KEEP=1");
    expect(out).not.toContain("CLUB_API_KEY");
    expect(out).not.toContain("CLUB_RELAY_KEYS");
    expect(env.CLUB_API_KEY).toBe("sk-secret");
  });

  it("reports a missing tool", async () => {
    const fakes = fakeTools({});
    expect(await runTool("nope", [], { env: fakes.env, timeoutMs: 3000 })).toEqual({
      ok: false,
      problem: "missing",
      message: "nope not found on PATH",
    });
  });

  it("reports a failing tool with the first line it printed", async () => {
    const fakes = fakeTools({ tool: [{ stderr: "\n  first problem\nsecond\n", exit: 3 }] });
    await expect(runToolOrThrow("tool", [], { env: fakes.env, timeoutMs: 3000 })).rejects.toEqual(
      new ToolError("failed", "tool exited with code 3: first problem"),
    );
  });

  it.skipIf(process.platform !== "linux")(
    "kills a hanging tool together with the processes it started",
    async () => {
      const fakes = fakeTools({});
      const pidFile = join(fakes.dir, "child.pid");
      writeFileSync(
        join(fakes.dir, "tool"),
        `#!/bin/sh\n/bin/sh -c 'echo $$ > ${pidFile}; exec ${SLEEP} 600' &\nwait\n`,
        { mode: 0o755 },
      );
      const result = await runTool("tool", [], { env: fakes.env, timeoutMs: 500 });
      expect(result).toEqual({
        ok: false,
        problem: "timeout",
        message: "tool did not answer within 500 ms and was stopped",
      });
      const pid = Number(readFileSync(pidFile, "utf8"));
      await vi.waitFor(() => expect(gone(pid)).toBe(true), { timeout: 10_000 });
    },
  );
});
