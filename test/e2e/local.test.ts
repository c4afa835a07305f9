/**
 * The README's "run it" command, `club-provider start --local`, and `club-provider models`,
 * run as a user runs them.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { freePort } from "../fakes/util.ts";
import { runCli, scratchDir, type CliProcess } from "./harness.ts";

let fake: FakeLlamaServer;
let home: string;

beforeAll(async () => {
  fake = new FakeLlamaServer({ alias: "tiny-chat", tokens: ["local", " works"] });
  await fake.start();
  home = scratchDir();
});

afterAll(async () => {
  await fake.stop();
});

describe("club-provider start --local", () => {
  let daemon: CliProcess;
  let statusPort: number;

  afterAll(async () => {
    await daemon.stop();
  });

  it("prints a base URL and key that an OpenAI client can use", async () => {
    statusPort = await freePort();
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
        "laptop",
      ],
      { home },
    );
    const baseURL = /OPENAI_BASE_URL=(\S+)/.exec(await daemon.waitFor(/OPENAI_BASE_URL=/))?.[1];
    const apiKey = /OPENAI_API_KEY=(\S+)/.exec(await daemon.waitFor(/OPENAI_API_KEY=/))?.[1];
    await daemon.waitFor(/connected to the relay/);
    const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
    expect((await client.models.list()).data.map((m) => [m.id, m.owned_by])).toEqual([
      ["tiny-chat", "laptop"],
    ]);
    const reply = await client.chat.completions.create({
      model: "tiny-chat",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(reply.choices[0]?.message.content).toBe("local works");
  });

  it("keeps the same key across runs so clients need it only once", async () => {
    const first = /OPENAI_API_KEY=(\S+)/.exec(daemon.output())?.[1];
    const again = runCli(
      ["start", "--local", "--local-port", "0", "--no-autodetect", "--status-port", "0"],
      { home },
    );
    const second = /OPENAI_API_KEY=(\S+)/.exec(await again.waitFor(/OPENAI_API_KEY=/))?.[1];
    // Stopped right after printing, i.e. during start-up: a SIGTERM then must still stop it, cleanly.
    expect(await again.stop()).toBe(0);
    expect(second).toBe(first);
  });

  it("`models --json` reads the running daemon", async () => {
    const models = runCli(["models", "--json", "--status-port", String(statusPort)], { home });
    expect(await models.exited).toBe(0);
    const listed = JSON.parse(models.output()) as {
      data: { id: string; owned_by: string; context_length: number }[];
    };
    expect(listed.data).toMatchObject([
      { id: "tiny-chat", owned_by: "laptop", context_length: 256 },
    ]);
  });

  it("`models` detects now when no daemon runs, and says why an engine was not found", async () => {
    const models = runCli(
      [
        "models",
        "--status-port",
        "0",
        "--no-autodetect",
        "--service",
        fake.url,
        "--service",
        "http://127.0.0.1:1",
      ],
      { home },
    );
    expect(await models.exited).toBe(0);
    const out = models.output();
    expect(out).toMatch(/tiny-chat\s+llm\s+ready\s+256\s+streaming,tool-use/);
    expect(out).toMatch(/http:\/\/127\.0\.0\.1:1\s+down\s+.*nothing listening/i);
    expect(out).toContain("detected now");
  });
});

describe("club-provider start with nothing to serve", () => {
  it("says so and how to point it at an engine, and keeps running", async () => {
    const daemon = runCli(
      ["start", "--local", "--local-port", "0", "--no-autodetect", "--status-port", "0"],
      { home: scratchDir() },
    );
    await daemon.waitFor(/no model server found yet/);
    expect(daemon.output()).toMatch(/--service http:\/\/HOST:PORT/);
    await daemon.waitFor(/connected to the relay/);
    expect(daemon.child.exitCode).toBeNull();
    expect(await daemon.stop()).toBe(0);
  });
});
