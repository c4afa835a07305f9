import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { EngineProcess, MAX_LINE, describeExit } from "../../src/engines/process.ts";
import { freePort } from "../fakes/util.ts";
import { alive, fakeCommand, until } from "./helpers.ts";

describe("an engine process under its watchdog", () => {
  it("dies with the daemon: kill -9 of the parent leaves no engine and no worker", async () => {
    const port = await freePort();
    const command = fakeCommand("orphan", "--child").map((a) => a.replace("{port}", String(port)));
    const parent = spawn(
      process.execPath,
      ["--import", "tsx", "test/fakes/engine-parent.ts", ...command],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const [line] = (await once(createInterface({ input: parent.stdout }), "line")) as [string];
    const { group, worker } = JSON.parse(line) as { group: number; worker: number };
    expect(alive(-group)).toBe(true);
    expect(alive(worker)).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    parent.kill("SIGKILL");
    await once(parent, "exit");
    await until(() => !alive(-group) && !alive(worker));
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
  });

  it("reports the engine's exit code and signal, and keeps lines bounded", async () => {
    const lines: string[] = [];
    const long = new EngineProcess({
      command: [
        "sh",
        "-c",
        `head -c ${MAX_LINE * 3} /dev/zero | tr '\\0' x; echo; echo after; exit 3`,
      ],
      env: process.env,
      onLine: (l) => lines.push(l),
    });
    expect(describeExit(await long.exited)).toBe("exit code 3");
    expect(lines.map((l) => l.length)).toEqual([MAX_LINE, 5]);
    const killed = new EngineProcess({ command: ["sleep", "100"], env: process.env });
    expect(describeExit(await killed.kill())).toBe("killed by SIGKILL");
    const missing = new EngineProcess({
      command: ["/nonexistent/engine"],
      env: process.env,
      onLine: (l) => lines.push(l),
    });
    expect(await missing.exited).toEqual({ code: 127, signal: null });
    expect(lines.at(-1)).toMatch(/cannot start \/nonexistent\/engine: .*ENOENT/);
  });
});
