/** Managed engines for tests: the fake of test/fakes/managed-engine.ts run as a real program. */
import { join } from "node:path";
import { findAdapter } from "../../adapters/index.ts";
import { silentLogger } from "../../src/log.ts";
import type { EngineSettings, EngineSpec } from "../../src/engines/schema.ts";
import { Supervisor, type SupervisorOptions } from "../../src/engines/supervisor.ts";

export const FAKE_ENGINE = join(import.meta.dirname, "../fakes/managed-engine.ts");

/** The command that runs the fake engine serving `alias` with these options. */
export function fakeCommand(alias: string, ...options: string[]): string[] {
  return [
    process.execPath,
    "--import",
    "tsx",
    FAKE_ENGINE,
    "--port",
    "{port}",
    "--alias",
    alias,
    ...options,
  ];
}

export const SETTINGS: EngineSettings = {
  waitMs: 30_000,
  reserveMiB: 0,
  budgetMiB: {},
  maxFailures: 3,
  stopMs: 5000,
  logLines: 50,
  retryBaseMs: 10,
};

export function fakeSpec(
  name: string,
  options: string[] = [],
  over: Partial<EngineSpec> = {},
): EngineSpec {
  return {
    name,
    command: fakeCommand(name, ...options),
    adapter: "llamacpp",
    models: [
      { id: name, servedId: name, type: "llm", contextLength: 256, features: ["streaming"] },
    ],
    gpus: [],
    vramMiB: undefined,
    health: undefined,
    idleMs: 0,
    startMs: 30_000,
    port: undefined,
    env: {},
    cwd: undefined,
    maxConcurrent: undefined,
    ...over,
  };
}

export function supervisor(spec: EngineSpec, over: Partial<SupervisorOptions> = {}): Supervisor {
  return new Supervisor({
    spec,
    adapter: findAdapter("llamacpp")!,
    settings: SETTINGS,
    log: silentLogger,
    ...over,
  });
}

/** Whether a process (or, with a negative pid, a process group) exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits until `check` holds, asking again on every tick of 20 ms: for processes to go. */
export async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 20));
}
