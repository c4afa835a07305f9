/**
 * The package as npm ships it: `npm pack` of this checkout (which builds `dist/` through
 * `prepack`), installed from the tarball into a throwaway prefix, and run from there: the
 * version, `detect --json`, a `start --local` that an OpenAI client talks to, and install.sh
 * installing the same tarball into a throwaway root. npm reads only its cache (`--offline`):
 * the dependencies are there from the checkout's own `npm ci`.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, scratchDir } from "../e2e/harness.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { freePort } from "../fakes/util.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const work = mkdtempSync(join(tmpdir(), "club-pack-"));
const prefix = join(work, "prefix");
const bin = join(prefix, "bin", "club-provider");
let tarball: string;
let files: string[];

beforeAll(async () => {
  const packed = await run("npm", ["pack", "--json", "--pack-destination", work], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
  });
  const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
  tarball = join(work, info.filename);
  files = info.files.map((f) => f.path);
  await run(
    "npm",
    ["install", "--global", "--offline", "--no-audit", "--no-fund", "--prefix", prefix, tarball],
    { cwd: work },
  );
}, 300_000);

describe("the packed package", () => {
  it("holds the built CLI and none of the sources or tests", () => {
    expect(files).toContain("dist/src/cli/main.js");
    expect(files).toContain("bin/club-provider");
    // The pages' bundles, built at prepack (src/ui/build.ts).
    expect(files).toContain("dist/ui/manifest.json");
    expect(files.filter((f) => /^dist\/ui\/(rig|club|style)-\w+\.(js|css)$/.test(f))).toHaveLength(
      3,
    );
    expect(files.filter((f) => /^(src|test|bench)\//.test(f) || f.endsWith(".ts"))).toEqual([]);
  });

  it("depends at run time only on what the installed code imports", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    const dist = files.filter((f) => f.endsWith(".js"));
    const imported = new Set<string>();
    for (const f of dist) {
      const text = readFileSync(join(prefix, "lib", "node_modules", "club-provider", f), "utf8");
      for (const m of text.matchAll(/(?:from |import\(|require\(|\)\.resolve\()"([^".][^"]*)"/g)) {
        const spec = m[1] ?? "";
        if (spec.startsWith("node:")) continue;
        imported.add(
          spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!,
        );
      }
    }
    expect([...imported].sort()).toEqual(Object.keys(pkg.dependencies).sort());
  });

  it("prints its version", async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      version: string;
    };
    const cli = runCli(["--version"], { home: scratchDir(), bin });
    expect(await cli.exited).toBe(0);
    expect(cli.output().trim()).toBe(version);
  });

  it("detects the machine as JSON", async () => {
    const cli = runCli(["detect", "--json", "--no-autodetect"], { home: scratchDir(), bin });
    expect(await cli.exited, cli.output()).toBe(0);
    const detected = JSON.parse(cli.output()) as Record<string, unknown>;
    expect(detected).toHaveProperty("host");
    expect(Array.isArray(detected.gpus)).toBe(true);
  });

  describe("start --local", () => {
    const fake = new FakeLlamaServer({ alias: "packed-chat", tokens: ["from", " the package"] });
    let daemon: ReturnType<typeof runCli>;

    beforeAll(() => fake.start());
    afterAll(async () => {
      await daemon.stop();
      await fake.stop();
    });

    it("serves an OpenAI client and the rig page from the installed copy", async () => {
      const statusPort = await freePort();
      daemon = runCli(
        [
          "start",
          "--local",
          "--local-port",
          "0",
          "--no-autodetect",
          "--service",
          fake.url,
          "--status-port",
          String(statusPort),
          "--name",
          "packed",
        ],
        { home: scratchDir(), bin },
      );
      const baseURL = /OPENAI_BASE_URL=(\S+)/.exec(await daemon.waitFor(/OPENAI_BASE_URL=/))?.[1];
      const apiKey = /OPENAI_API_KEY=(\S+)/.exec(await daemon.waitFor(/OPENAI_API_KEY=/))?.[1];
      await daemon.waitFor(/connected to the relay/);
      const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
      const reply = await client.chat.completions.create({
        model: "packed-chat",
        messages: [{ role: "user", content: "hi" }],
      });
      expect(reply.choices[0]?.message.content).toBe("from the package");
      const shell = await (await fetch(`http://127.0.0.1:${statusPort}/`)).text();
      const script = /src="(\/ui\/assets\/rig-\w+\.js)"/.exec(shell)?.[1];
      expect(script, shell).toBeDefined();
      const asset = await fetch(`http://127.0.0.1:${statusPort}${script ?? ""}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get("cache-control")).toMatch(/immutable/);
    });
  });

  it("installs itself as a service with `service install` (into a throwaway root)", async () => {
    const root = mkdtempSync(join(work, "svc-"));
    const keyFile = join(work, "svc-key");
    writeFileSync(keyFile, "sk-pack-service-0123456789", { mode: 0o600 });
    const cli = runCli(
      [
        "service",
        "install",
        "--root",
        root,
        "--relay",
        "wss://club.example",
        "--api-key-file",
        keyFile,
        "--name",
        "packed-rig",
      ],
      { home: scratchDir(), bin },
    );
    expect(await cli.exited, cli.output()).toBe(0);
    const unit = readFileSync(join(root, "etc/systemd/system/club-provider.service"), "utf8");
    // The unit runs the installed copy, not this checkout.
    const installed = join(prefix, "lib/node_modules/club-provider/bin/club-provider");
    expect(unit).toContain(`${installed} start --api-key-file /etc/club-provider/key`);
  });

  it("is what install.sh installs as a service (dry run into a throwaway root)", async () => {
    const root = mkdtempSync(join(work, "root-"));
    const keyFile = join(work, "key");
    writeFileSync(keyFile, "sk-pack-install-0123456789", { mode: 0o600 });
    const { stdout } = await run(
      "bash",
      [
        join(ROOT, "install.sh"),
        "--package",
        tarball,
        "--root",
        root,
        "--relay",
        "wss://club.example",
        "--key-file",
        keyFile,
        "--name",
        "packed-rig",
      ],
      {
        env: {
          ...process.env,
          npm_config_offline: "true",
          XDG_CONFIG_HOME: mkdtempSync(join(work, "conf-")),
        },
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    expect(stdout).toContain(`installing ${tarball}`);
    const unit = readFileSync(join(root, "etc/systemd/system/club-provider.service"), "utf8");
    expect(unit).toMatch(/^ExecStart=\S+ \S+club-provider start --api-key-file /m);
  }, 300_000);
});
