/**
 * `club-provider config`: the API key stored through the CLI lands in a file only its owner can
 * read, and the CLI never prints it back whole. (A key *file* readable by others is refused:
 * test/e2e/spine-faults.test.ts and test/cli/doctor.test.ts.)
 */
import { spawn } from "node:child_process";
import { chmodSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, scratchDir } from "../e2e/harness.ts";

const KEY = "sk-stored-cli-0123456789";

async function config(home: string, ...args: string[]): Promise<string> {
  const cli = runCli(["config", ...args], { home });
  const code = await cli.exited;
  expect(code, cli.output()).toBe(0);
  return cli.output();
}

describe("config: the stored API key", () => {
  it("is written to a mode 0600 file and shown only shortened", async () => {
    const home = scratchDir();
    const saved = await config(home, "set", "apiKey", KEY);
    expect(saved.trim()).toBe("apiKey saved");
    const path = (await config(home, "path")).trim();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect((JSON.parse(readFileSync(path, "utf8")) as { apiKey?: string }).apiKey).toBe(KEY);
    const one = await config(home, "get", "apiKey");
    const all = await config(home, "get");
    expect(one.trim()).toBe(`sk-s… (${KEY.length} characters)`);
    expect(all).toContain("apiKey = sk-s…");
    expect(one + all).not.toContain(KEY);
  });

  it("puts the file back to 0600 when a change is saved after someone loosened it", async () => {
    const home = scratchDir();
    await config(home, "set", "apiKey", KEY);
    const path = (await config(home, "path")).trim();
    chmodSync(path, 0o644);
    await config(home, "set", "name", "rig1");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({ apiKey: KEY, name: "rig1" });
  });

  it("reads the key from stdin with `-`, so it is never on a command line", async () => {
    const home = scratchDir();
    const child = spawn(process.execPath, ["bin/club-provider", "config", "set", "apiKey", "-"], {
      env: { PATH: process.env.PATH ?? "", HOME: home, XDG_CONFIG_HOME: join(home, "config") },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    child.stdin.end(`${KEY}\n`);
    const code = await new Promise((r) => child.once("exit", r));
    expect(code, out).toBe(0);
    const path = (await config(home, "path")).trim();
    expect((JSON.parse(readFileSync(path, "utf8")) as { apiKey?: string }).apiKey).toBe(KEY);
  });
});

describe("config: sharing", () => {
  it("shares with the club or named members, and makes private again", async () => {
    const home = scratchDir();
    expect((await config(home, "share", "qwen3-8b")).trim()).toBe("qwen3-8b shared with the club");
    expect((await config(home, "share", "kokoro", "bob", "carol")).trim()).toBe(
      "kokoro shared with bob,carol",
    );
    expect((await config(home, "share", "flux", "private")).trim()).toBe("flux is private");
    expect(JSON.parse(await config(home, "get", "sharing"))).toEqual({
      "qwen3-8b": "club",
      kokoro: ["bob", "carol"],
      flux: "private",
    });
    expect((await config(home, "unshare", "qwen3-8b")).trim()).toBe("qwen3-8b is private");
    expect(JSON.parse(await config(home, "get", "sharing"))).toEqual({
      kokoro: ["bob", "carol"],
      flux: "private",
    });
  });

  it("refuses a setting that is not club, private or member names", async () => {
    const home = scratchDir();
    const cli = runCli(["config", "set", "sharing", '{"m": "everyone"}'], { home });
    expect(await cli.exited).not.toBe(0);
    expect(cli.output()).toContain("cannot set sharing");
    const bad = runCli(["config", "share", "m", "bob carol"], { home });
    expect(await bad.exited).not.toBe(0);
    expect(bad.output()).toContain("member names");
  });
});
