/**
 * Workflow runs at the relay, in process: inline specs and templates run as jobs at a provider
 * (the daemon's tunnel client answering as an LLM and media engines), gates approved and
 * rejected, failures and cancels, and a run waiting at a gate across a relay restart.
 */
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Relay } from "../../../src/relay/server.ts";
import {
  BOB,
  call,
  startRelay,
  startRig,
  waitJob,
  waitRun,
  type JobView,
  type ListView,
  type RunView,
} from "../jobs/helpers.ts";
import { PNG, type MediaRig } from "../jobs/media-rig.ts";

/** Every key any template or test asks the LLM for. */
const REPLY = {
  titles: ["Edge", "Cloud", "Mesh"],
  scenes: ["Dawn.", "Noon.", "Dusk."],
  prompts: ["p1", "p2"],
};

let dataDir: string;
let relay: Relay;
let rig: MediaRig;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "club-relay-runs-"));
  relay = await startRelay({ dataDir });
  rig = await startRig(relay, {
    models: { llm: ["chat-1"], image: ["image-1"], video: ["video-1"] },
    reply: () => "```json\n" + JSON.stringify(REPLY) + "\n```",
  });
});

afterAll(async () => {
  rig.stop();
  await relay.close();
});

const spec = {
  steps: [
    {
      id: "plan",
      kind: "inference",
      type: "chat",
      extract: "json",
      body: { messages: [{ role: "user", content: "Titles about {{inputs.topic}}" }] },
    },
    {
      id: "images",
      kind: "map",
      type: "image",
      over: "{{steps.plan.output.titles}}",
      body: { prompt: "Illustration for: {{item}} ({{index}})" },
    },
  ],
};

async function start(body: Record<string, unknown>): Promise<RunView> {
  const answer = await call<RunView>(relay, "POST", "/v1/workflows/runs", body);
  expect(answer.status, JSON.stringify(answer.body)).toBe(202);
  return answer.body;
}

const step = (run: RunView, id: string) => run.steps.find((s) => s.step_id === id);

describe("workflow runs", () => {
  it("lists the five templates with their required inputs", async () => {
    const list = await call<ListView<{ key: string; required_inputs: string[] }>>(
      relay,
      "GET",
      "/v1/workflows/templates",
    );
    expect(list.body.data.map((t) => [t.key, t.required_inputs])).toEqual([
      ["illustrated-story", ["topic", "scenes", "style"]],
      ["image-variations", ["subject", "count", "vibe"]],
      ["storyboard-to-video", ["concept", "shots"]],
      ["song-and-cover", ["theme", "genre"]],
      ["narrated-explainer", ["topic", "lines"]],
    ]);
  });

  it("runs an inline spec: a chat step's JSON fans out into one image job per title", async () => {
    const run = await start({ spec, inputs: { topic: "distributed AI" } });
    expect(run).toMatchObject({
      object: "workflow.run",
      models: { chat: "chat-1", image: "image-1" },
    });
    const done = await waitRun(relay, run.id, "DONE");
    expect(step(done, "plan")?.output).toEqual(REPLY);
    const images = step(done, "images");
    expect(images?.jobs).toHaveLength(3);
    expect(images?.output).toEqual(
      images?.jobs.map((id) => ({
        job_id: id,
        result_url: `${relay.url}/v1/jobs/${id}/result`,
        content_type: "application/json",
      })),
    );
    const prompts = rig.requests
      .filter((r) => r.path === "/v1/images/generations")
      .map((r) => r.body.prompt);
    expect(prompts.slice(-3).sort()).toEqual([
      "Illustration for: Cloud (1)",
      "Illustration for: Edge (0)",
      "Illustration for: Mesh (2)",
    ]);
  });

  it("never reads another member's job through {{inputs.x.result}}", async () => {
    // Alice's job, with an answer only she may read.
    const secret = await call<JobView>(relay, "POST", "/v1/chat/completions", {
      model: "chat-1",
      messages: [{ role: "user", content: "alice's secret" }],
      async: true,
    });
    expect(secret.status).toBe(202);
    await waitJob(relay, secret.body.id, "PROCESSED");
    // Bob, on his own rig, names her job id as an input of his run.
    const bobs = await startRig(relay, {
      apiKey: BOB,
      name: "bob-rig",
      models: { llm: ["chat-1"] },
      reply: (body) => JSON.stringify(body.messages),
    });
    try {
      const answer = await call<RunView>(
        relay,
        "POST",
        "/v1/workflows/runs",
        {
          spec: {
            steps: [
              {
                id: "leak",
                kind: "inference",
                type: "chat",
                body: { messages: [{ role: "user", content: "{{inputs.x.result}}" }] },
              },
            ],
          },
          inputs: { x: { job_id: secret.body.id } },
        },
        {},
        BOB,
      );
      expect(answer.status, JSON.stringify(answer.body)).toBe(202);
      const failed = await waitRun(relay, answer.body.id, "FAILED", BOB);
      expect(JSON.stringify(failed)).toContain('{{inputs.x.result}} has no \\"result\\"');
      expect(bobs.requests).toEqual([]);
    } finally {
      bobs.stop();
    }
  });

  it("refuses an invalid spec at submission, naming the step", async () => {
    const bad = { steps: [spec.steps[0], { ...spec.steps[1], over: "{{steps.nope.output}}" }] };
    const answer = await call(relay, "POST", "/v1/workflows/runs", {
      spec: bad,
      inputs: { topic: "x" },
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error.message).toContain('step "images" refers to step "nope"');
  });

  it("stops at a gate until it is approved", async () => {
    const run = await start({
      template: "illustrated-story",
      inputs: { topic: "a robot", scenes: 2, style: "oil" },
    });
    const waiting = await waitRun(relay, run.id, "AWAITING");
    expect(step(waiting, "review")?.status).toBe("AWAITING");
    expect(step(waiting, "illustrations")?.status).toBe("PENDING");
    const approved = await call<RunView>(
      relay,
      "POST",
      `/v1/workflows/runs/${run.id}/steps/review/approve`,
      {
        note: "lovely",
      },
    );
    expect(step(approved.body, "review")).toMatchObject({
      status: "DONE",
      output: { approved: true, note: "lovely" },
    });
    const done = await waitRun(relay, run.id, "DONE");
    // Two scenes asked for: the third the LLM wrote is not drawn.
    expect(step(done, "illustrations")?.jobs).toHaveLength(2);
    const again = await call(relay, "POST", `/v1/workflows/runs/${run.id}/steps/review/approve`);
    expect(again.status).toBe(409);
  });

  it("ends the run CANCELED when a gate is rejected", async () => {
    const run = await start({
      template: "illustrated-story",
      inputs: { topic: "t", scenes: 1, style: "s" },
    });
    await waitRun(relay, run.id, "AWAITING");
    await call(relay, "POST", `/v1/workflows/runs/${run.id}/steps/review/reject`, {
      note: "too dark",
    });
    const over = await waitRun(relay, run.id, "CANCELED");
    expect(over.error).toEqual({
      type: "rejected",
      message: 'step "review" was rejected: too dark',
    });
    expect(step(over, "review")).toMatchObject({ status: "CANCELED", output: { approved: false } });
    expect(step(over, "illustrations")?.status).toBe("SKIPPED");
  });

  it("fails the run when a step fails, skipping what depends on it", async () => {
    const failing = {
      steps: [
        { id: "draw", kind: "inference", type: "image", body: { prompt: "x", fail_with: 422 } },
        { id: "after", kind: "transform", op: "passthrough", input: "{{steps.draw.output}}" },
      ],
    };
    const run = await start({ spec: failing });
    const over = await waitRun(relay, run.id, "FAILED");
    expect(over.error?.message).toMatch(
      /^step "draw" failed: job job_\w+ FAILED: refused with 422/,
    );
    expect(step(over, "after")?.status).toBe("SKIPPED");
  });

  it("cancels a run, and its running job at the provider", async () => {
    rig.pause();
    const run = await start({ spec, inputs: { topic: "x" } });
    await expect.poll(() => rig.inFlight).toBe(1);
    const reset = once(rig, "client-closed");
    const canceled = await call<RunView>(relay, "POST", `/v1/workflows/runs/${run.id}/cancel`);
    expect(canceled.body.status).toBe("CANCELED");
    expect(step(canceled.body, "plan")?.status).toBe("CANCELED");
    expect(step(canceled.body, "images")?.status).toBe("SKIPPED");
    await reset;
    rig.resume();
  });

  it("says which model is missing when no provider serves a step's type", async () => {
    const answer = await call(relay, "POST", "/v1/workflows/runs", {
      template: "song-and-cover",
      inputs: { theme: "rain", genre: "jazz" },
    });
    expect(answer.status).toBe(404);
    expect(answer.body.error).toMatchObject({ type: "no_provider" });
    expect(answer.body.error.message).toContain('step "track" needs a music model');
  });

  it("keeps a run waiting at a gate across a relay restart", async () => {
    const run = await start({
      template: "illustrated-story",
      inputs: { topic: "t", scenes: 1, style: "s" },
    });
    await waitRun(relay, run.id, "AWAITING");
    await relay.close();
    relay = await startRelay({ dataDir, port: relay.port });
    expect((await waitRun(relay, run.id, "AWAITING")).id).toBe(run.id);
    await call(relay, "POST", `/v1/workflows/runs/${run.id}/steps/review/approve`);
    const done = await waitRun(relay, run.id, "DONE");
    const [job] = step(done, "illustrations")?.jobs ?? [];
    const result = await call<{ data: { b64_json: string }[] }>(
      relay,
      "GET",
      `/v1/jobs/${job ?? ""}/result`,
    );
    expect(result.body.data[0]?.b64_json).toBe(PNG.toString("base64"));
    const list = await call<ListView<RunView>>(
      relay,
      "GET",
      "/v1/workflows/runs?status=done&limit=1",
    );
    expect(list.body.data[0]?.id).toBe(run.id);
  });
});
