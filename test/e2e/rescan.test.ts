/**
 * Re-scanning: a model pulled into (or removed from) an engine while the daemon runs shows up
 * in (or leaves) the relay's `/v1/models`, through the heartbeat a changed manifest triggers.
 * `CLUB_RESCAN_SECONDS` shortens the daemon's 30 s re-scan for the test.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeOllama } from "../fakes/ollama.ts";
import { startStack, type Stack } from "./stack.ts";

let fake: FakeOllama;
let stack: Stack;

beforeAll(async () => {
  fake = new FakeOllama();
  stack = await startStack([await fake.start()], [], { CLUB_RESCAN_SECONDS: "1" });
});

afterAll(async () => {
  await stack.stop();
  await fake.stop();
});

/** The relay's model ids once it shows `want` (or stops showing it), asking after each change. */
async function idsOnceRelay(model: string, want: boolean): Promise<string[]> {
  // The daemon logs the change just before it sends the heartbeat; the relay may lag by a hop.
  for (let attempt = 0; attempt < 200; attempt++) {
    const ids = (await stack.client.models.list()).data.map((m) => m.id);
    if (ids.includes(model) === want) return ids;
  }
  throw new Error(`the relay never ${want ? "listed" : "dropped"} ${model}`);
}

describe("re-scan: models that appear or disappear reach the relay", () => {
  it("lists a model pulled after start, and drops one removed", async () => {
    const before = (await stack.client.models.list()).data.map((m) => m.id);
    // The fake's embedding model is listed too, as an embedding card.
    expect(before.sort()).toEqual(["gemma3:4b", "nomic-embed-text:latest", "qwen3:8b"]);

    fake.addModel({
      name: "llama3.2:3b",
      capabilities: ["completion", "tools"],
      contextLength: 131072,
      arch: "llama",
    });
    await stack.daemon.waitFor(/models changed/);
    expect((await idsOnceRelay("llama3.2:3b", true)).sort()).toEqual([
      "gemma3:4b",
      "llama3.2:3b",
      "nomic-embed-text:latest",
      "qwen3:8b",
    ]);

    fake.removeModel("gemma3:4b");
    await stack.daemon.waitFor(/models changed/, { nth: 2 });
    expect((await idsOnceRelay("gemma3:4b", false)).sort()).toEqual([
      "llama3.2:3b",
      "nomic-embed-text:latest",
      "qwen3:8b",
    ]);
  });
});
