/**
 * The `engines` setting changed on a running daemon, as an owner does it: `club-provider config
 * set engines …` (which refuses an invalid entry, naming it and the field) and SIGHUP. The
 * engine added appears in the club's model list and answers; removed, it is gone and stopped.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../e2e/harness.ts";
import { startStack, type Stack } from "../e2e/stack.ts";
import { alive, fakeCommand } from "./helpers.ts";

let stack: Stack | undefined;
afterAll(async () => {
  await stack?.stop();
});

async function config(
  home: string,
  ...args: string[]
): Promise<{ code: number | null; out: string }> {
  const cli = runCli(["config", ...args], { home });
  const code = await cli.exited;
  return { code, out: cli.output() };
}

const models = async (s: Stack): Promise<string[]> =>
  (await s.client.models.list()).data.map((m) => m.id).sort();

describe("engines changed on a running daemon", () => {
  it("refuses an invalid engines entry, naming the entry and the field, and keeps the old value", async () => {
    const home = mkdtempSync(join(tmpdir(), "club-cfg-"));
    const bad = JSON.stringify([
      { name: "ok", command: ["x", "--port", "{port}"], adapter: "openai", models: [{ id: "a" }] },
      { name: "nope", command: "llama-server -m m.gguf", idleSeconds: -1 },
    ]);
    const refused = await config(home, "set", "engines", bad);
    expect(refused.code).toBe(1);
    expect(refused.out).toContain("engines not saved");
    expect(refused.out).toContain(
      'engines[1] (nope).command: has no {port} placeholder and no "port" is set',
    );
    expect(refused.out).toContain("engines[1] (nope).adapter: a command needs the adapter");
    expect(refused.out).toContain("engines[1] (nope).idleSeconds: expected a number from 0");
    expect(refused.out).not.toContain("engines[0]");
    expect((await config(home, "get", "engines")).out.trim()).toBe("(not set)");
    // A preset whose file is not there yet is saved, with a warning.
    const later = await config(
      home,
      "set",
      "engines",
      JSON.stringify([{ name: "later", preset: "llama-server", model: join(home, "none.gguf") }]),
    );
    expect(later.code).toBe(0);
    expect(later.out).toMatch(/warning: engine later: cannot read .*none\.gguf/);
    expect(later.out).toContain("engines saved");
  });

  it("adds an engine on SIGHUP, and stops and withdraws it when it is removed", async () => {
    stack = await startStack([]);
    const s = stack;
    const dir = mkdtempSync(join(tmpdir(), "club-hup-"));
    const starts = join(dir, "starts");
    writeFileSync(starts, "");
    const engines = [
      {
        name: "hup",
        command: fakeCommand("hup-model", "--starts-file", starts),
        adapter: "llamacpp",
        models: [{ id: "hup-model" }],
      },
    ];
    expect((await config(s.home, "set", "engines", JSON.stringify(engines))).code).toBe(0);
    s.daemon.child.kill("SIGHUP");
    await expect.poll(() => models(s), { timeout: 20_000 }).toEqual(["hup-model"]);
    const reply = await s.client.chat.completions.create({
      model: "hup-model",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(reply.choices[0]?.message.content).toContain("hup-model");
    const [pid] = readFileSync(starts, "utf8").split("\n").filter(Boolean).map(Number);
    expect(alive(pid!)).toBe(true);
    // A storm of reloads with nothing changed: applied one at a time, the engine untouched.
    const before = s.daemon.output().match(/settings reloaded/g)?.length ?? 0;
    // Signals of one kind coalesce while pending: at least one more reload, maybe not five.
    for (let i = 0; i < 5; i++) s.daemon.child.kill("SIGHUP");
    await s.daemon.waitFor(/settings reloaded/, { nth: before + 1 });
    expect(await models(s)).toEqual(["hup-model"]);
    expect(readFileSync(starts, "utf8").split("\n").filter(Boolean)).toEqual([String(pid)]);
    expect(alive(pid!)).toBe(true);

    expect((await config(s.home, "set", "engines", "[]")).code).toBe(0);
    s.daemon.child.kill("SIGHUP");
    await expect.poll(() => models(s), { timeout: 20_000 }).toEqual([]);
    await s.daemon.waitFor(/engine reloaded: the old one stopped/);
    expect(alive(pid!)).toBe(false);
    expect(s.daemon.output().match(/connected to the relay/g)).toHaveLength(1);
  });
});
