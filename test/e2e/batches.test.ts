/**
 * A full batch end to end: 256 chat completions submitted at once to `club-provider relay`, run
 * through the tunnel by `club-provider start` against a fake llama-server, as the daemon's
 * capacity allows.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { call, type BatchView, type JobView } from "../relay/jobs/helpers.ts";
import { ALICE_KEY, startStack, type Stack } from "./stack.ts";

let fake: FakeLlamaServer;
let stack: Stack;

beforeAll(async () => {
  fake = new FakeLlamaServer({ tokens: ["Hello", " from", " the", " rig", "."] });
  await fake.start();
  stack = await startStack([fake.url]);
});

afterAll(async () => {
  await stack.stop();
  await fake.stop();
});

it("runs a 256-request batch to the end", async () => {
  const relay = { url: stack.relayUrl };
  const requests = Array.from({ length: 256 }, (_, i) => ({
    custom_id: `item-${i}`,
    endpoint: "/v1/chat/completions",
    body: { model: "tiny-qwen2-chat", messages: [{ role: "user", content: `question ${i}` }] },
  }));
  const before = fake.requests.length;
  const answer = await call<BatchView>(relay, "POST", "/v1/batches", { requests }, {}, ALICE_KEY);
  expect(answer.status).toBe(202);
  expect(answer.body.total).toBe(256);
  const id = answer.body.id;
  const get = async (): Promise<BatchView> =>
    (await call<BatchView>(relay, "GET", `/v1/batches/${id}`, undefined, {}, ALICE_KEY)).body;
  await expect
    .poll(async () => (await get()).status, { timeout: 60_000, interval: 100 })
    .toBe("DONE");
  const done = await get();
  expect(done.counts).toEqual({ QUEUED: 0, PROCESSING: 0, PROCESSED: 256, FAILED: 0, CANCELED: 0 });
  expect(done.jobs?.map((j) => j.custom_id)).toEqual(requests.map((r) => r.custom_id));
  const last = done.jobs?.at(-1)?.id ?? "";
  const job = await call<JobView>(relay, "GET", `/v1/jobs/${last}`, undefined, {}, ALICE_KEY);
  expect(job.body).toMatchObject({
    batch_id: id,
    result: { choices: [{ message: { content: "Hello from the rig." } }] },
  });
  const asked = fake.requests.slice(before).filter((r) => r.path === "/v1/chat/completions");
  expect(asked).toHaveLength(256);
});
