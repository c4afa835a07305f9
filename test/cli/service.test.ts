/**
 * `club-provider service install|uninstall|status`, run as users run it, into a throwaway root
 * (`--root`): no root privileges, no systemctl, the host's users untouched.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, runCli, scratchDir, writeSecret } from "../e2e/harness.ts";
import { HAS_SYSTEMD_ANALYZE, SKIP_REASON, verifyUnit } from "../service/verify.ts";

const KEY = "sk-service-0123456789";
const UNIT = "etc/systemd/system/club-provider.service";

async function cli(args: string[], env: Record<string, string> = {}) {
  const home = scratchDir();
  const p = runCli(args, { home, env });
  const code = await p.exited;
  return { code, output: p.output() };
}

function freshRoot(): string {
  return mkdtempSync(join(tmpdir(), "club-root-"));
}

describe("club-provider service", () => {
  it("--dry-run prints the unit and changes nothing", async () => {
    const root = freshRoot();
    const { code, output } = await cli(
      [
        ...["service", "install", "--root", root, "--relay", "wss://club.example", "--dry-run"],
        ...["--bin", "/home/alice/club-provider/bin/club-provider"],
      ],
      { CLUB_API_KEY: KEY },
    );
    expect(code, output).toBe(0);
    expect(output).toContain("would create the system user club-provider unless it exists");
    expect(output).toContain("would write the API key to /etc/club-provider/key (0600");
    expect(output).toMatch(
      /^ {4}ExecStart=\S+ \S+ start --api-key-file \/etc\/club-provider\/key/m,
    );
    expect(output).toContain(
      "warning: /home/alice/club-provider/bin/club-provider is under /home, which the service cannot see (ProtectHome=yes)",
    );
    expect(output).not.toContain(KEY);
    expect(readdirSync(root)).toEqual([]);
  });

  it("installs into a root, reports it, and uninstalls with --purge", async () => {
    const root = freshRoot();
    const keyFile = writeSecret(scratchDir(), "key.txt", KEY);
    const install = await cli([
      "service",
      "install",
      "--root",
      root,
      "--relay",
      "ws://127.0.0.1:8787",
      "--api-key-file",
      keyFile,
      "--name",
      "rig1",
      "--service",
      "http://127.0.0.1:8080",
    ]);
    expect(install.code, install.output).toBe(0);
    expect(install.output).toMatch(/created system user club-provider \(uid \d+\) in /);
    expect(install.output).toContain("skipped systemctl (installing into");
    const unit = readFileSync(join(root, UNIT), "utf8");
    expect(unit).toContain(
      `ExecStart=${process.execPath} ${BIN} start --api-key-file /etc/club-provider/key --relay ws://127.0.0.1:8787 --name rig1 --service http://127.0.0.1:8080`,
    );
    expect(statSync(join(root, "etc/club-provider/key")).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, "etc/club-provider")).mode & 0o777).toBe(0o750);

    const status = await cli(["service", "status", "--root", root]);
    expect(status.code, status.output).toBe(0);
    expect(status.output).toMatch(/^ok {4}unit {5}\/etc\/systemd\/system\/club-provider\.service/m);
    expect(status.output).toMatch(/^ok {4}key {6}\/etc\/club-provider\/key \(mode 600\)/m);

    // Installing again keeps the user and the key when no new key is given.
    const again = await cli([
      "service",
      "install",
      "--root",
      root,
      "--relay",
      "ws://127.0.0.1:8787",
    ]);
    expect(again.code, again.output).toBe(0);
    expect(again.output).toMatch(/system user club-provider exists/);
    expect(again.output).toContain("kept the API key in /etc/club-provider/key");
    expect(readFileSync(join(root, "etc/passwd"), "utf8").match(/^club-provider:/gm)).toHaveLength(
      1,
    );

    const gone = await cli(["service", "uninstall", "--root", root, "--purge"]);
    expect(gone.code, gone.output).toBe(0);
    expect(existsSync(join(root, UNIT))).toBe(false);
    expect(existsSync(join(root, "etc/club-provider"))).toBe(false);
    expect(readFileSync(join(root, "etc/passwd"), "utf8")).not.toContain("club-provider:");
  });

  it.skipIf(!HAS_SYSTEMD_ANALYZE)(
    `writes a unit systemd-analyze verify accepts ${HAS_SYSTEMD_ANALYZE ? "" : `(${SKIP_REASON})`}`,
    async () => {
      const root = freshRoot();
      const { code, output } = await cli(
        ["service", "install", "--root", root, "--relay", "wss://club.example"],
        { CLUB_API_KEY: KEY },
      );
      expect(code, output).toBe(0);
      expect(verifyUnit(join(root, UNIT))).toEqual({ status: 0, output: "" });
    },
  );

  it("status exits 1 and says what to run when nothing is installed", async () => {
    const { code, output } = await cli(["service", "status", "--root", freshRoot()]);
    expect(code).toBe(1);
    expect(output).toMatch(/^FAIL {2}unit {5}not installed: run `club-provider service install`/m);
    expect(output).toMatch(/^FAIL {2}key .*is missing/m);
  });

  it("install without a key or relay fails with the fix", async () => {
    const noKey = await cli([
      "service",
      "install",
      "--root",
      freshRoot(),
      "--relay",
      "wss://x.example",
    ]);
    expect(noKey.code).toBe(1);
    expect(noKey.output).toContain(
      "no API key to install: pass --api-key-file FILE or set CLUB_API_KEY",
    );
    const noRelay = await cli(["service", "install", "--root", freshRoot()], { CLUB_API_KEY: KEY });
    expect(noRelay.code).toBe(1);
    expect(noRelay.output).toContain("no relay URL: pass --relay URL");
  });
});
