/**
 * install.sh run for real into a throwaway root: npm installs a copy of this checkout, the
 * system user lands in the root's /etc/passwd, the key in a 0600 file, and the unit verifies.
 */
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { HAS_SYSTEMD_ANALYZE, SKIP_REASON, verifyUnit } from "./verify.ts";

const SCRIPT = resolve(import.meta.dirname, "../../install.sh");
const KEY = "sk-install-0123456789";

function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn("bash", [SCRIPT, ...args], {
      // npm keeps using the machine's cache (offline is fine); conf gets a scratch directory.
      env: { ...process.env, XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), "club-conf-")), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    child.on("exit", (code) => done({ code, output }));
  });
}

describe("install.sh into a throwaway root", () => {
  const root = mkdtempSync(join(tmpdir(), "club-root-"));
  let result: { code: number | null; output: string };

  beforeAll(async () => {
    const keyFile = join(root, "..", `${root.split("/").pop() ?? "x"}-key`);
    writeFileSync(keyFile, KEY, { mode: 0o600 });
    // A checkout that is already built (CI builds before testing) is installed as it is, so
    // this test does not depend on every file of a work in progress compiling.
    const built = existsSync(resolve(SCRIPT, "../dist/src/cli/main.js"));
    result = await run([
      ...(built ? ["--no-build"] : []),
      "--root",
      root,
      "--relay",
      "wss://club.example",
      "--key-file",
      keyFile,
      "--name",
      "rig1",
      "--service",
      "http://127.0.0.1:8080",
    ]);
  }, 180_000);

  it("exits 0 after installing the package under the prefix", () => {
    expect(result.output).toMatch(/== Node\.js \S+ at \//);
    expect(result.code, result.output).toBe(0);
    const cli = join(root, "usr/local/lib/node_modules/club-provider/bin/club-provider");
    expect(existsSync(cli)).toBe(true);
    // A copy, with the built code, not a link into the checkout.
    expect(existsSync(join(root, "usr/local/lib/node_modules/club-provider/dist"))).toBe(true);
    expect(existsSync(join(root, "usr/local/bin/club-provider"))).toBe(true);
  });

  it("creates the system user in the root's passwd and group files", () => {
    expect(readFileSync(join(root, "etc/passwd"), "utf8")).toMatch(
      /^club-provider:x:\d+:\d+:club-provider daemon:\/var\/lib\/club-provider:\/usr\/sbin\/nologin$/m,
    );
    expect(readFileSync(join(root, "etc/group"), "utf8")).toMatch(/^club-provider:x:\d+:$/m);
  });

  it("puts the key in a 0600 file", () => {
    const key = join(root, "etc/club-provider/key");
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(key, "utf8").trim()).toBe(KEY);
  });

  it("writes a unit that runs the installed CLI with the key file", () => {
    const unit = readFileSync(join(root, "etc/systemd/system/club-provider.service"), "utf8");
    expect(unit).toMatch(
      /^ExecStart=\/\S+\/node \/usr\/local\/bin\/club-provider start --api-key-file \/etc\/club-provider\/key --relay wss:\/\/club\.example --name rig1 --service http:\/\/127\.0\.0\.1:8080$/m,
    );
    expect(unit).not.toContain(KEY);
    expect(result.output).toMatch(/skipped systemctl \(installing into /);
  });

  it.skipIf(!HAS_SYSTEMD_ANALYZE)(
    `passes systemd-analyze verify ${HAS_SYSTEMD_ANALYZE ? "" : `(${SKIP_REASON})`}`,
    () => {
      expect(verifyUnit(join(root, "etc/systemd/system/club-provider.service"))).toEqual({
        status: 0,
        output: "",
      });
    },
  );
});

describe("install.sh refuses", () => {
  it("an old Node.js, saying how to get a new one", async () => {
    const bin = mkdtempSync(join(tmpdir(), "club-oldnode-"));
    writeFileSync(join(bin, "node"), "#!/bin/sh\necho 18.19.0\n");
    chmodSync(join(bin, "node"), 0o755);
    const root = mkdtempSync(join(tmpdir(), "club-root-"));
    const { code, output } = await run(["--root", root, "--relay", "wss://x.example"], {
      PATH: `${bin}:${process.env.PATH ?? ""}`,
    });
    expect(code).toBe(1);
    expect(output).toContain("needs Node.js 22.19 or newer (this is 18.19.0)");
    expect(output).toContain("deb.nodesource.com");
  });

  it("to run without a relay URL", async () => {
    const { code, output } = await run(["--root", mkdtempSync(join(tmpdir(), "club-root-"))], {
      CLUB_RELAY_URL: "",
    });
    expect(code).toBe(1);
    expect(output).toContain("pass the relay URL: --relay");
  });
});
