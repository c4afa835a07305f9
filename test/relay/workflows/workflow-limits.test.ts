/**
 * What a member's workflow runs may hold, at a relay in process: a spec whose templates copy one
 * value into itself step after step, a template that names one job's result many times, the
 * runs a member keeps, and the jobs their steps submit. Each limit is set small here; the
 * defaults are in `DEFAULT_LIMITS`.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Relay } from "../../../src/relay/server.ts";
import {
  call,
  startRelay,
  startRig,
  waitJob,
  waitRun,
  type ErrorView,
  type JobView,
  type ListView,
  type RunView,
} from "../jobs/helpers.ts";
import type { MediaRig } from "../jobs/media-rig.ts";

const RUN_BYTES = 64 * 1024;
const REPLY = "x".repeat(2000);

let relay: Relay;
let rig: MediaRig;

beforeAll(async () => {
  relay = await startRelay({
    dataDir: mkdtempSync(join(tmpdir(), "club-relay-run-limits-")),
    jobLimits: {
      maxRunBytes: RUN_BYTES,
      maxStoredRunsPerMember: 4,
      maxStoredRunBytesPerMember: 3 * RUN_BYTES,
      maxStoredPerMember: 6,
      maxBodyBytes: 100 * 1024,
    },
  });
  rig = await startRig(relay, { models: { llm: ["chat-1"] }, reply: () => REPLY });
});

afterAll(async () => {
  rig.stop();
  await relay.close();
});

const submit = (body: Record<string, unknown>) =>
  call<RunView & ErrorView>(relay, "POST", "/v1/workflows/runs", body);

/** Transform steps, each a list of `fanout` copies of the step before; `depth` of them. */
function amplifier(fanout: number, depth: number): Record<string, unknown> {
  const steps = Array.from({ length: depth }, (_, i) => ({
    id: `s${i}`,
    kind: "transform",
    op: "passthrough",
    input: Array(fanout).fill(i === 0 ? "{{inputs.x}}" : `{{steps.s${i - 1}.output}}`),
  }));
  return { spec: { steps }, inputs: { x: "abcdefgh" } };
}

const chat = (content: string) => ({
  id: "ask",
  kind: "inference",
  type: "chat",
  body: { messages: [{ role: "user", content }] },
});

/** Ends every run of alice's that is still going, so that each test starts with none. */
async function cancelAll(): Promise<void> {
  const runs = await call<ListView<RunView>>(relay, "GET", "/v1/workflows/runs?limit=100");
  for (const run of runs.body.data)
    if (!["DONE", "FAILED", "CANCELED"].includes(run.status))
      await call(relay, "POST", `/v1/workflows/runs/${run.id}/cancel`);
}

async function standaloneJob(): Promise<JobView> {
  const job = await call<JobView>(relay, "POST", "/v1/chat/completions", {
    model: "chat-1",
    async: true,
    messages: [{ role: "user", content: "hi" }],
  });
  return waitJob(relay, job.body.id, "PROCESSED");
}

describe("workflow limits", () => {
  it("fails the step that would copy a value past maxRunBytes, and stays small", async () => {
    // Written out, step 3 would be 100^3 copies of the input, 10 MB (each step more 100 times
    // more: the unit tests in workflow-spec.test.ts render 100^6).
    const answer = await submit(amplifier(100, 3));
    expect(answer.status).toBe(202);
    const run = await waitRun(relay, answer.body.id, "FAILED");
    const failed = run.steps.find((s) => s.status === "FAILED");
    expect(failed?.error).toMatchObject({ type: "too_large" });
    expect(failed?.error?.message).toMatch(
      new RegExp(
        `step "s\\d"'s (input|output) comes to more than \\d+ bytes of JSON \\(maxRunBytes`,
      ),
    );
    expect(run.steps.filter((s) => s.status === "DONE").length).toBeGreaterThan(0);
    const again = await call(relay, "GET", `/v1/workflows/runs/${run.id}`);
    expect(Buffer.byteLength(JSON.stringify(again.body))).toBeLessThan(2 * RUN_BYTES);
  });

  it("counts text written out from a value, and a join's separators, before making them", async () => {
    const text = await submit({
      spec: {
        steps: [
          {
            id: "list",
            kind: "transform",
            op: "passthrough",
            input: Array(60).fill("{{inputs.x}}"),
          },
          {
            id: "text",
            kind: "transform",
            op: "passthrough",
            input: "{{steps.list.output}} ".repeat(40),
          },
        ],
      },
      inputs: { x: "y".repeat(100) },
    });
    const failedText = await waitRun(relay, text.body.id, "FAILED");
    expect(failedText.error?.message).toMatch(/step "text"'s input comes to more than/);
    const joined = await submit({
      spec: {
        steps: [
          {
            id: "join",
            kind: "transform",
            op: "join",
            separator: "-".repeat(1000),
            input: Array(200).fill("{{inputs.x}}"),
          },
        ],
      },
      inputs: { x: "z" },
    });
    const failedJoin = await waitRun(relay, joined.body.id, "FAILED");
    expect(failedJoin.error?.message).toMatch(/step "join"'s output comes to more than/);
  });

  it("bounds a step whose requests name one job's result many times", async () => {
    const job = await standaloneJob();
    const content = Array(100).fill("{{inputs.j.result.choices.0.message.content}}").join(" ");
    const answer = await submit({
      spec: { steps: [chat(content)] },
      inputs: { j: { job_id: job.id } },
    });
    const run = await waitRun(relay, answer.body.id, "FAILED");
    expect(run.steps[0]?.error).toMatchObject({ type: "too_large" });
    expect(run.steps[0]?.error?.message).toMatch(
      /step "ask"'s requests comes to more than \d+ bytes of JSON \(maxBodyBytes\)/,
    );
  });

  it("refuses inputs larger than maxRunBytes with 413", async () => {
    const answer = await submit({
      spec: { steps: [{ id: "t", kind: "transform", op: "passthrough", input: "{{inputs.x}}" }] },
      inputs: { x: "a".repeat(RUN_BYTES) },
    });
    expect(answer.status).toBe(413);
    expect(answer.body.error).toMatchObject({ type: "request_too_large" });
    expect(answer.body.error.message).toMatch(/the run's inputs comes to more than .*maxRunBytes/);
  });

  it("keeps at most maxStoredRunsPerMember runs, dropping the oldest finished", async () => {
    await cancelAll();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const answer = await submit({
        spec: { steps: [{ id: "t", kind: "transform", op: "passthrough", input: `run ${i}` }] },
      });
      expect(answer.status).toBe(202);
      ids.push(answer.body.id);
    }
    const list = await call<ListView<RunView>>(relay, "GET", "/v1/workflows/runs?limit=100");
    expect(list.body.data.map((r) => r.id)).toEqual(ids.slice(-4).reverse());
    expect((await call(relay, "GET", `/v1/workflows/runs/${ids[0]}`)).status).toBe(404);
  });

  it("drops finished runs to keep their bytes under maxStoredRunBytesPerMember", async () => {
    await cancelAll();
    const big = { x: "b".repeat(RUN_BYTES / 2 - 100) };
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const answer = await submit({
        spec: { steps: [{ id: "t", kind: "transform", op: "passthrough", input: "{{inputs.x}}" }] },
        inputs: big,
      });
      expect(answer.status).toBe(202);
      ids.push(answer.body.id);
    }
    // Each holds its input and its output, just under RUN_BYTES: a fourth would pass
    // 3 × RUN_BYTES, though the count allows four.
    const list = await call<ListView<RunView>>(relay, "GET", "/v1/workflows/runs?limit=100");
    const kept = list.body.data.map((r) => r.id).filter((id) => ids.includes(id));
    expect(kept).toEqual(ids.slice(-3).reverse());
  });

  it("answers 429 when only unfinished runs are kept", async () => {
    await cancelAll();
    const gate = { spec: { steps: [{ id: "g", kind: "gate" }] } };
    const going: string[] = [];
    for (let i = 0; i < 4; i++) going.push((await submit(gate)).body.id);
    const refused = await submit(gate);
    expect(refused.status).toBe(429);
    expect(refused.body.error.message).toMatch(
      /you keep 4 workflow runs; the limit is 4 \(maxStoredRunsPerMember\)/,
    );
    for (const id of going) await call(relay, "POST", `/v1/workflows/runs/${id}/cancel`);
    expect((await submit(gate)).status).toBe(202);
  });

  it("counts a step's jobs against maxStoredPerMember, dropping old standalone jobs first", async () => {
    await cancelAll();
    const map = (n: number) => ({
      spec: {
        steps: [
          {
            id: "each",
            kind: "map",
            type: "chat",
            over: "{{inputs.items}}",
            body: { messages: [{ role: "user", content: "{{item}}" }] },
          },
        ],
      },
      inputs: { items: Array.from({ length: n }, (_, i) => `item ${i}`) },
    });
    const old = await standaloneJob();
    const tooMany = await waitRun(relay, (await submit(map(7))).body.id, "FAILED");
    expect(tooMany.steps[0]?.error).toMatchObject({ type: "rate_limit_error" });
    expect(tooMany.steps[0]?.error?.message).toMatch(/the limit is 6 \(maxStoredPerMember\)/);
    const done = await waitRun(relay, (await submit(map(6))).body.id, "DONE");
    expect(done.steps[0]?.jobs).toHaveLength(6);
    expect((await call(relay, "GET", `/v1/jobs/${old.id}`)).status).toBe(404);
    const jobs = await call<ListView<JobView>>(relay, "GET", "/v1/jobs?limit=100");
    expect(jobs.body.data.map((j) => j.id).sort()).toEqual([...(done.steps[0]?.jobs ?? [])].sort());
  });
});
