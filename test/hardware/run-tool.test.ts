import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { runTool, runToolOrThrow, ToolError } from "../../src/hardware/run-tool.ts";
import { fakeTools } from "./fake-tools.ts";

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
