/**
 * Fake hardware tools: small shell scripts in a fresh directory that becomes the whole `PATH`
 * of the code under test. Each prints a recorded output, fails, or hangs, chosen by its
 * arguments, and logs every call so tests can count queries.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const FIXTURES = resolve(import.meta.dirname, "../fixtures/hardware");

/** A recorded output, by path under `test/fixtures/hardware`. */
export function fixture(path: string): string {
  return readFileSync(join(FIXTURES, path), "utf8");
}

export interface FakeRule {
  /** Applies when the joined arguments contain this; every call when absent. */
  args?: string;
  stdout?: string;
  stderr?: string;
  /** Exit code; default 0. */
  exit?: number;
  /** Never answers (until killed). */
  hang?: boolean;
}

export interface FakeTools {
  dir: string;
  /** An environment whose `PATH` is only the fakes. */
  env: NodeJS.ProcessEnv;
  /** The argument lists the tool was called with, in order. */
  calls(tool: string): string[];
  /** Replaces a tool's behaviour (e.g. it starts failing). */
  set(tool: string, rules: FakeRule[]): void;
}

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
const SLEEP = ["/bin/sleep", "/usr/bin/sleep"].find((p) => existsSync(p)) ?? "sleep";

function script(log: string, tool: string, rules: FakeRule[]): string {
  const cases = rules.map((r) => {
    const body = [
      r.hang ? `exec ${SLEEP} 600` : "",
      r.stdout !== undefined ? `printf '%s' ${quote(r.stdout)}` : "",
      r.stderr !== undefined ? `printf '%s' ${quote(r.stderr)} >&2` : "",
      `exit ${r.exit ?? 0}`,
    ].filter(Boolean);
    return `  *${r.args === undefined ? "" : quote(r.args)}*) ${body.join("; ")} ;;`;
  });
  return [
    "#!/bin/sh",
    `printf '%s\\n' "$*" >> ${quote(log)}`,
    'case "$*" in',
    ...cases,
    `  *) printf 'fake ${tool}: unexpected arguments: %s\\n' "$*" >&2; exit 64 ;;`,
    "esac",
    "",
  ].join("\n");
}

/**
 * Writes fake tools into a new directory.
 * @example
 * const fakes = fakeTools({ "nvidia-smi": [{ stdout: fixture("nvidia-smi/1-gpu.csv") }] });
 * await detectHardware({ env: fakes.env, platform: "linux", root: emptyRoot() });
 */
export function fakeTools(tools: Record<string, FakeRule[]>): FakeTools {
  const dir = mkdtempSync(join(tmpdir(), "club-fake-tools-"));
  const logOf = (tool: string): string => join(dir, `.${tool}.calls`);
  const set = (tool: string, rules: FakeRule[]): void => {
    writeFileSync(join(dir, tool), script(logOf(tool), tool, rules), { mode: 0o755 });
  };
  for (const [tool, rules] of Object.entries(tools)) set(tool, rules);
  return {
    dir,
    env: { PATH: dir },
    set,
    calls: (tool) =>
      existsSync(logOf(tool)) ? readFileSync(logOf(tool), "utf8").split("\n").slice(0, -1) : [],
  };
}

/**
 * A filesystem root for `/proc`, `/etc` and `/sys` reads, assembled from fixture trees
 * (`linux` for CPU, RAM and OS; `sysfs-amdgpu`, `sysfs-aspeed` for GPUs).
 */
export function fakeRoot(...trees: string[]): string {
  const root = mkdtempSync(join(tmpdir(), "club-fake-root-"));
  for (const tree of trees) cpSync(join(FIXTURES, tree), root, { recursive: true });
  return root;
}
