/**
 * Async jobs end to end: consumer → `club-provider relay` → tunnel → `club-provider start` → fake
 * llama-server and Kokoro, every piece a real process or server on loopback. Queue and poll,
 * cancel mid-run (the engine sees its request closed), retry, idempotent resubmission, and a
 * relay killed with jobs queued and running, then started again on the same data directory.
 *
 * Cancel mid-run is shown on speech, which the engine streams: the daemon's gateway does not yet
 * abort an engine call whose HTTP/2 stream is reset before it answered (Node reports such a
 * response `writableFinished`), so a buffered chat completion runs on at the engine.
 */
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeKokoro } from "../fakes/kokoro.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { call, waitJob, type JobView, type ListView } from "../relay/jobs/helpers.ts";
import { ALICE_KEY, BOB_KEY, startStack, type Stack } from "./stack.ts";

const MODEL = "tiny-qwen2-chat";
let fake: FakeLlamaServer;
let kokoro: FakeKokoro;
let stack: Stack;

beforeAll(async () => {
  fake = new FakeLlamaServer({ tokens: ["Hello", " from", " the", " rig", "."] });
  kokoro = new FakeKokoro();
  await Promise.all([fake.start(), kokoro.start()]);
  stack = await startStack([fake.url, kokoro.url]);
});

afterAll(async () => {
  await stack.stop();
  await Promise.all([fake.stop(), kokoro.stop()]);
});

const relay = (): { url: string } => ({ url: stack.relayUrl });
const chat = (content: string): Record<string, unknown> => ({
  model: MODEL,
  messages: [{ role: "user", content }],
  async: true,
  stream: true,
});

async function submit(content: string, headers: Record<string, string> = {}): Promise<JobView> {
  const answer = await call<JobView>(
    relay(),
    "POST",
    "/v1/chat/completions",
    chat(content),
    headers,
    ALICE_KEY,
  );
  expect(answer.status).toBe(202);
  return answer.body;
}

const poll = (id: string, status: string): Promise<JobView> =>
  waitJob(relay(), id, status, ALICE_KEY);

describe("async jobs: relay → tunnel → daemon → llama-server", () => {
  it("queues a chat completion and gives its answer to a poll", async () => {
    const job = await submit("hi");
    expect(job).toMatchObject({ object: "inference.job", status: "QUEUED", model: MODEL });
    const done = await poll(job.id, "PROCESSED");
    expect(done.result).toMatchObject({
      object: "chat.completion",
      choices: [{ message: { content: "Hello from the rig." } }],
    });
    // Buffered, as the hosted club runs jobs: the engine was not asked to stream.
    expect(fake.requests.at(-1)?.body).not.toHaveProperty("stream");
    const list = await call<ListView<JobView>>(
      relay(),
      "GET",
      "/v1/jobs?limit=1",
      undefined,
      {},
      ALICE_KEY,
    );
    expect(list.body.data[0]?.id).toBe(job.id);
    const bobs = await call(relay(), "GET", `/v1/jobs/${job.id}`, undefined, {}, BOB_KEY);
    expect(bobs.status).toBe(404);
  });

  it("cancels a job mid-run: the engine sees its request closed", async () => {
    kokoro.pauseGenerations();
    const speech = { model: "kokoro", input: "One. Two. Three.", voice: "af_heart", async: true };
    const answer = await call<JobView>(relay(), "POST", "/v1/audio/speech", speech, {}, ALICE_KEY);
    await poll(answer.body.id, "PROCESSING");
    await expect.poll(() => kokoro.inFlight).toBe(1);
    const closed = once(kokoro, "client-closed");
    const canceled = await call<JobView>(
      relay(),
      "POST",
      `/v1/jobs/${answer.body.id}/cancel`,
      undefined,
      {},
      ALICE_KEY,
    );
    expect(canceled.body.status).toBe("CANCELED");
    await closed;
    expect(kokoro.inFlight).toBe(0);
    kokoro.resumeGenerations();

    const retried = await call<JobView>(
      relay(),
      "POST",
      `/v1/jobs/${answer.body.id}/retry`,
      undefined,
      {},
      ALICE_KEY,
    );
    expect(retried).toMatchObject({ status: 202, body: { status: "QUEUED", attempts: 0 } });
    const done = await poll(answer.body.id, "PROCESSED");
    expect(done).toMatchObject({ attempts: 1, result_content_type: "audio/mpeg" });
    const audio = await fetch(done.result_url ?? "", {
      headers: { authorization: `Bearer ${ALICE_KEY}` },
    });
    expect((await audio.arrayBuffer()).byteLength).toBe(done.result_bytes);
  });

  it("returns the same job for a resubmission with the same Idempotency-Key", async () => {
    const headers = { "idempotency-key": "e2e-key-1" };
    const first = await submit("once", headers);
    const again = await call<JobView>(
      relay(),
      "POST",
      "/v1/chat/completions",
      chat("once"),
      headers,
      ALICE_KEY,
    );
    expect(again.body.id).toBe(first.id);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    await poll(first.id, "PROCESSED");
    expect(fake.requests.filter((r) => r.rawBody.includes('"once"'))).toHaveLength(1);
  });

  it("finishes queued and running jobs after the relay is killed and started again", async () => {
    fake.pauseGenerations();
    const jobs = [await submit("r1"), await submit("r2"), await submit("r3"), await submit("r4")];
    // The daemon takes two at once (the fake's two slots): two run, two wait in the queue.
    const active = async (): Promise<string[]> =>
      (
        await call<ListView<JobView>>(relay(), "GET", "/v1/jobs?active=1", undefined, {}, ALICE_KEY)
      ).body.data
        .map((j) => j.status)
        .sort();
    await expect.poll(active).toEqual(["PROCESSING", "PROCESSING", "QUEUED", "QUEUED"]);

    await stack.relay.stop("SIGKILL");
    await stack.restartRelay();
    await stack.daemon.waitFor(/connected to the relay/, { nth: 2 });
    fake.resumeGenerations();
    for (const job of jobs) {
      const done = await poll(job.id, "PROCESSED");
      expect(done.result).toMatchObject({
        choices: [{ message: { content: "Hello from the rig." } }],
      });
    }
  });
});
