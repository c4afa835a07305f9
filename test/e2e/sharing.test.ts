/**
 * Sharing a rig, end to end as people run it: `club-provider relay` with three members,
 * alice's `club-provider start --share …` serving three fake llama-servers, and each member's
 * official `openai` client. What each member sees and may call, the owner's `models` listing,
 * and a change of sharing applied with SIGHUP.
 */
import OpenAI, { NotFoundError, type APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { runCli } from "./harness.ts";
import { BOB_KEY, CAROL_KEY, startStack, type Stack } from "./stack.ts";

const MODELS = ["shared-chat", "carol-chat", "private-chat"];
let engines: FakeLlamaServer[];
let stack: Stack;

beforeAll(async () => {
  engines = MODELS.map((alias) => new FakeLlamaServer({ alias, tokens: [alias, " says hi"] }));
  await Promise.all(engines.map((e) => e.start()));
  stack = await startStack(
    engines.map((e) => e.url),
    ["--share", "shared-chat", "--share", "carol-chat=carol"],
  );
});

afterAll(async () => {
  await stack.stop();
  await Promise.all(engines.map((e) => e.stop()));
});

const client = (apiKey: string) =>
  new OpenAI({ baseURL: `${stack.relayUrl}/v1`, apiKey, maxRetries: 0 });
const listed = async (apiKey: string) =>
  (await client(apiKey).models.list()).data.map((m) => [m.id, m.owned_by]);
const chat = async (apiKey: string, model: string) =>
  (
    await client(apiKey).chat.completions.create({
      model,
      messages: [{ role: "user", content: "hi" }],
    })
  ).choices[0]?.message.content;

describe("a rig shared with --share", () => {
  it("shows each member their own models and what the owner shared with them", async () => {
    expect(await listed(BOB_KEY)).toEqual([["shared-chat", "rig1"]]);
    expect(await listed(CAROL_KEY)).toEqual([
      ["carol-chat", "rig1"],
      ["shared-chat", "rig1"],
    ]);
    expect((await stack.client.models.list()).data.map((m) => m.id)).toEqual([
      "carol-chat",
      "private-chat",
      "shared-chat",
    ]);
  });

  it("serves a member what is shared with them, and 404 no_provider for the rest", async () => {
    expect(await chat(BOB_KEY, "shared-chat")).toBe("shared-chat says hi");
    expect(await chat(CAROL_KEY, "carol-chat")).toBe("carol-chat says hi");
    for (const [key, model] of [
      [BOB_KEY, "private-chat"],
      [BOB_KEY, "carol-chat"],
      [CAROL_KEY, "private-chat"],
    ] as const) {
      const err = (await chat(key, model).catch((e: unknown) => e)) as APIError;
      expect(err).toBeInstanceOf(NotFoundError);
      expect(err.type).toBe("no_provider");
    }
    // The private engine was never asked by anyone but its owner.
    expect(engines[2]?.requests.filter((r) => r.path === "/v1/chat/completions")).toEqual([]);
  });

  it("lists who each model is shared with in the owner's `models`", async () => {
    for (const [model, access] of [
      ["shared-chat", "club"],
      ["carol-chat", "carol"],
    ] as const) {
      const share = runCli(["config", "share", model, ...(access === "club" ? [] : [access])], {
        home: stack.home,
      });
      expect(await share.exited).toBe(0);
    }
    const models = runCli(
      [
        "models",
        "--status-port",
        "0",
        "--no-autodetect",
        ...engines.flatMap((e) => ["--service", e.url]),
      ],
      { home: stack.home },
    );
    expect(await models.exited).toBe(0);
    const out = models.output();
    expect(out).toMatch(/shared-chat\s.*\sclub\s*$/m);
    expect(out).toMatch(/carol-chat\s.*\scarol\s*$/m);
    expect(out).toMatch(/private-chat\s.*\sprivate\s*$/m);
  });

  it("applies a change of sharing on SIGHUP, without dropping the tunnel", async () => {
    const share = runCli(["config", "share", "private-chat", "bob"], { home: stack.home });
    expect(await share.exited).toBe(0);
    stack.daemon.child.kill("SIGHUP");
    await expect
      .poll(async () => (await listed(BOB_KEY)).map(([id]) => id), { timeout: 15_000 })
      .toEqual(["private-chat", "shared-chat"]);
    expect(await chat(BOB_KEY, "private-chat")).toBe("private-chat says hi");
    expect(stack.daemon.output()).not.toMatch(/disconnected/);
  });
});
