/**
 * Managed engines with the real llama-server: two tiny GGUF models in one directory (the
 * llama-server preset makes an engine of each) whose declared VRAM lets only one fit on GPU 0,
 * and a third with a short idle time. Requests go through a real relay with the `openai`
 * client; processes are checked by pid. Run with `npm run test:real`.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import OpenAI, { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EngineView } from "../../src/engines/manager.ts";
import { ALICE_KEY, startStack, type Stack } from "../e2e/stack.ts";
import { runCli, scratchDir, writeSecret, type CliProcess } from "../e2e/harness.ts";
import { freePort } from "../fakes/util.ts";
import { LLAMA_DIR } from "./llama.ts";

let stack: Stack;
let daemon: CliProcess;
let home = "";
let statusPort = 0;
const client = (): OpenAI => stack.client;

/** Pids of the processes in a group (the watchdog and its llama-server). */
function group(pgid: number): number[] {
  const out = execFileSync("ps", ["-e", "-o", "pid=,pgid="], { encoding: "utf8" });
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter(([, g]) => g === pgid)
    .map(([p]) => p as number);
}
const llamaPids = (): number[] =>
  execFileSync("ps", ["-e", "-o", "pid=,args="], { encoding: "utf8" })
    .split("\n")
    .filter(
      (l) => l.includes(join(home, "models")) && l.includes("llama-server") && !l.includes(" -e "),
    )
    .map((l) => Number(l.trim().split(/\s+/)[0]));

async function engines(): Promise<EngineView[]> {
  const res = await fetch(`http://127.0.0.1:${statusPort}/engines`);
  return ((await res.json()) as { engines: EngineView[] }).engines;
}
const engine = async (name: string): Promise<EngineView> =>
  (await engines()).find((e) => e.name === name)!;
async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 50));
}
async function ask(model: string): Promise<string> {
  const r = await client().chat.completions.create({
    model,
    messages: [{ role: "user", content: "Say hello" }],
    max_tokens: 8,
  });
  return r.choices[0]?.message.content ?? "";
}

beforeAll(async () => {
  stack = await startStack([]);
  home = scratchDir();
  const models = join(home, "models");
  const idle = join(home, "idle");
  mkdirSync(models);
  mkdirSync(idle);
  const tiny = join(LLAMA_DIR, "tiny-qwen2-chat.gguf");
  copyFileSync(tiny, join(models, "tiny-a.gguf"));
  copyFileSync(tiny, join(models, "tiny-b.gguf"));
  copyFileSync(tiny, join(idle, "tiny-idle.gguf"));
  const binary = join(LLAMA_DIR, "llama-server");
  const args = ["-c", "4096", "-np", "1", "-t", "1"];
  const settings: Record<string, string> = {
    engines: JSON.stringify([
      {
        name: "m",
        preset: "llama-server",
        model: models,
        binary,
        args,
        gpus: [0],
        vramMiB: 600,
        idleSeconds: 0,
      },
      { name: "i", preset: "llama-server", model: idle, binary, args, idleSeconds: 1 },
    ]),
    vramBudgetMiB: JSON.stringify({ "0": 1000 }),
  };
  for (const [key, value] of Object.entries(settings)) {
    const set = runCli(["config", "set", key, value], { home });
    if ((await set.exited) !== 0) throw new Error(`config set ${key} failed:\n${set.output()}`);
  }
  statusPort = await freePort();
  const keyFile = writeSecret(home, "key.txt", ALICE_KEY);
  daemon = runCli(
    [
      "start",
      "--relay",
      stack.relayUrl.replace("http", "ws"),
      "--api-key-file",
      keyFile,
      "--name",
      "managed",
      "--no-autodetect",
      "--status-port",
      String(statusPort),
    ],
    { home },
  );
  await daemon.waitFor(/connected to the relay/);
}, 120_000);

afterAll(async () => {
  await daemon.stop("SIGTERM");
  await stack.stop();
});

describe("managed llama-server engines", () => {
  it("advertises stopped engines, and a request to A starts A", async () => {
    const listed = await client().models.list();
    expect(listed.data.map((m) => m.id)).toEqual(
      expect.arrayContaining(["tiny-a", "tiny-b", "tiny-idle"]),
    );
    expect((await engine("m-tiny-a")).state).toBe("stopped");
    expect(await ask("tiny-a")).not.toBe("");
    expect((await engine("m-tiny-a")).state).toBe("ready");
    const cli = runCli(["engines", "--status-port", String(statusPort)], { home });
    expect(await cli.exited).toBe(0);
    expect(cli.output()).toMatch(/m-tiny-a\s+ready\s+600 MiB\s+0/);
    expect(cli.output()).toMatch(/m-tiny-b\s+stopped/);
  });

  it("a request to B stops A (its process gone) and starts B", async () => {
    const a = (await engine("m-tiny-a")).pid!;
    expect(await ask("tiny-b")).not.toBe("");
    expect((await engine("m-tiny-a")).state).toBe("stopped");
    expect((await engine("m-tiny-a")).stops).toMatchObject({ evicted: 1 });
    expect((await engine("m-tiny-b")).state).toBe("ready");
    await until(() => group(a).length === 0);
    const status = runCli(["status", "--status-port", String(statusPort)], { home });
    expect(await status.exited).toBe(0);
    // starts, stops, evictions, failures, last cold start
    expect(status.output()).toMatch(/m-tiny-a\s+stopped\s+1\s+1\s+1\s+0\s+\d+\.\d s/);
    const metrics = await (await fetch(`http://127.0.0.1:${statusPort}/metrics`)).text();
    expect(metrics).toContain('club_provider_engine_evictions_total{engine="m-tiny-a"} 1');
    expect(metrics).toContain('club_provider_engine_cold_start_seconds_count{model="tiny-b"} 1');
  });

  it("a streamed request to a cold model arrives whole", async () => {
    expect((await engine("m-tiny-a")).state).toBe("stopped");
    const stream = await client().chat.completions.create({
      model: "tiny-a",
      messages: [{ role: "user", content: "Say hello" }],
      max_tokens: 16,
      stream: true,
    });
    let text = "";
    let finish: string | null | undefined = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).not.toBe("");
    expect(["stop", "length"]).toContain(finish);
  });

  it("kill -9 of the engine mid-stream breaks the stream, and the next request starts it again", async () => {
    const before = await engine("m-tiny-a");
    const stream = await client().chat.completions.create({
      model: "tiny-a",
      messages: [{ role: "user", content: "Write a long story" }],
      max_tokens: 3000,
      stream: true,
      // llama-server's own field: keep generating past the end-of-text token.
      ...({ ignore_eos: true } as object),
    });
    let chunks = 0;
    const read = (async () => {
      for await (const _chunk of stream) {
        chunks++;
        if (chunks === 3) {
          const pids = group(before.pid!).filter((p) => p !== before.pid);
          for (const p of pids) process.kill(p, "SIGKILL");
        }
      }
    })();
    await expect(read).rejects.toThrow();
    await until(async () => (await engine("m-tiny-a")).state === "failed");
    expect((await engine("m-tiny-a")).reason).toMatch(/crashed \(killed by SIGKILL\)/);
    // A request that is not streamed, sent while it is down, would get 502; the next one starts it.
    expect(await ask("tiny-a")).not.toBe("");
    expect((await engine("m-tiny-a")).starts).toBe(before.starts + 1);
  });

  it("the idle timeout stops an engine, and its process is gone", async () => {
    expect(await ask("tiny-idle")).not.toBe("");
    const pid = (await engine("i-tiny-idle")).pid!;
    await until(async () => (await engine("i-tiny-idle")).state === "stopped");
    expect((await engine("i-tiny-idle")).stops).toMatchObject({ idle: 1 });
    await until(() => group(pid).length === 0);
  });

  it("after kill -9 of a ready engine, the next requests are answered by the engine started again", async () => {
    expect(await ask("tiny-a")).not.toBe("");
    const before = await engine("m-tiny-a");
    for (const p of group(before.pid!).filter((p) => p !== before.pid)) process.kill(p, "SIGKILL");
    // No wait for the daemon to notice. A request that finds the port closed is sent again to
    // the engine started anew; one written to a kept-alive connection the kernel then resets
    // gets 502, since the daemon cannot tell whether the engine read it (a request that crashes
    // its engine is never repeated). The one after is answered either way.
    const first = await ask("tiny-a").then(
      (text) => ({ text }),
      (err: unknown) => ({ err }),
    );
    if ("err" in first) {
      expect(first.err).toBeInstanceOf(APIError);
      expect((first.err as APIError).status).toBe(502);
      expect((first.err as APIError).message).toMatch(/llama\.cpp|broke off/);
    } else expect(first.text).not.toBe("");
    expect(await ask("tiny-a")).not.toBe("");
    expect((await engine("m-tiny-a")).starts).toBe(before.starts + 1);
  });

  it("SIGHUP offers a GGUF file added to the directory, and stops its engine once it is removed", async () => {
    const b = await engine("m-tiny-b");
    copyFileSync(join(LLAMA_DIR, "tiny-qwen2-chat.gguf"), join(home, "models", "tiny-c.gguf"));
    daemon.child.kill("SIGHUP");
    await until(async () => (await client().models.list()).data.some((m) => m.id === "tiny-c"));
    expect(await ask("tiny-c")).not.toBe("");
    const c = await engine("m-tiny-c");
    expect(c.state).toBe("ready");
    // The engines already there are the same engines (not restarted by the reload).
    expect((await engine("m-tiny-b")).starts).toBe(b.starts);
    rmSync(join(home, "models", "tiny-c.gguf"));
    daemon.child.kill("SIGHUP");
    await until(async () => !(await client().models.list()).data.some((m) => m.id === "tiny-c"));
    await until(() => group(c.pid!).length === 0);
    expect((await engines()).map((e) => e.name)).not.toContain("m-tiny-c");
  });

  it("kill -9 of the daemon leaves no llama-server behind", async () => {
    expect(await ask("tiny-b")).not.toBe("");
    expect(llamaPids().length).toBeGreaterThan(0);
    await daemon.stop("SIGKILL");
    await until(() => llamaPids().length === 0);
  });
});
