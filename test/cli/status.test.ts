/**
 * `club-provider status` and the status server's `/metrics`, against a real relay, daemon and
 * fake llama-server, each its own process or server on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../e2e/harness.ts";
import { startStack, type Stack } from "../e2e/stack.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { freePort } from "../fakes/util.ts";

const MODEL = "tiny-qwen2-chat";
let fake: FakeLlamaServer;
let doomed: FakeLlamaServer;
let stack: Stack;
let port = 0;

async function status(args: string[] = []): Promise<{ code: number | null; output: string }> {
  const p = runCli(["status", "--status-port", String(port), ...args], { home: stack.home });
  const code = await p.exited;
  return { code, output: p.output() };
}

/** Polls until `check` holds; the test's own timeout bounds the wait. */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 50));
}

beforeAll(async () => {
  fake = new FakeLlamaServer({ tokens: ["Hi", "."] });
  doomed = new FakeLlamaServer({ alias: "doomed" });
  await Promise.all([fake.start(), doomed.start()]);
  port = await freePort();
  stack = await startStack([fake.url, doomed.url], ["--status-port", String(port)]);
});

afterAll(async () => {
  await stack.stop();
  await Promise.all([fake.stop(), doomed.stop()]);
});

describe("club-provider status", () => {
  it("prints tunnels, services and models of the running daemon", async () => {
    const { code, output } = await status();
    expect(code, output).toBe(0);
    expect(output).toMatch(/^club-provider \S+, provider "rig1", up \d+s$/m);
    expect(output).toContain(`relay:     ${stack.relayUrl.replace("http", "ws")}`);
    expect(output).toContain("ready:     yes (1 of 1 tunnel connected)");
    expect(output).toMatch(/^0 +connected +1 +conn_\w+$/m);
    expect(output).toMatch(new RegExp(`^llamacpp-\\d+ +llamacpp +${fake.url} +ready +0/\\d+`, "m"));
    const models = /^models \(2\): (.*)$/m.exec(output)?.[1]?.split(", ");
    expect(models?.sort()).toEqual(["doomed [llm]", `${MODEL} [llm]`]);
    expect(output).toContain("recent errors: none");
  });

  it("counts requests in /metrics and shows failures among the recent errors", async () => {
    await stack.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
    });
    await doomed.stop();
    await expect(
      stack.client.chat.completions.create({
        model: "doomed",
        messages: [{ role: "user", content: "hi" }],
      }),
    ).rejects.toMatchObject({ status: 502 });

    // The daemon counts a request when its stream closes, just after the consumer has the answer.
    let metrics = "";
    await until(async () => {
      metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return metrics.includes("club_provider_requests_in_flight 0\n");
    });
    const labels = `endpoint="/v1/chat/completions",model="${MODEL}"`;
    expect(metrics).toContain(`club_provider_requests_total{${labels},status="200"} 1\n`);
    expect(metrics).toContain(
      'club_provider_requests_total{endpoint="/v1/chat/completions",model="doomed",status="502"} 1\n',
    );
    expect(metrics).toMatch(
      new RegExp(`^club_provider_request_duration_seconds_count\\{${labels}\\} 1$`, "m"),
    );
    expect(metrics).toMatch(
      /^club_provider_response_bytes_total\{.*model="tiny-qwen2-chat"\} [1-9]/m,
    );
    expect(metrics).toContain('club_provider_tunnel_connected{tunnel="0"} 1\n');

    const { output } = await status();
    expect(output).toContain("recent errors (oldest first):");
    expect(output).toMatch(
      /request {2}\/v1\/chat\/completions \(doomed\) answered 502 \[req_[0-9a-f]{24}\]/,
    );
    const json = JSON.parse((await status(["--json"])).output) as {
      recent_errors: { kind: string }[];
      models: { id: string }[];
    };
    expect(json.recent_errors).toContainEqual(expect.objectContaining({ kind: "request" }));
    // The failure also makes the daemon re-scan at once, which may already report the engine down.
    expect(json.recent_errors.every((e) => ["request", "engine"].includes(e.kind))).toBe(true);
    expect(json.models.map((m) => m.id)).toContain(MODEL);
  });

  it("shows a lost tunnel once the relay is gone", async () => {
    await stack.relay.stop("SIGKILL");
    await until(async () => (await fetch(`http://127.0.0.1:${port}/ready`)).status === 503);
    const { code, output } = await status();
    expect(code).toBe(0);
    expect(output).toContain("ready:     NO (0 of 1 tunnel connected)");
    expect(output).toMatch(/tunnel {2}tunnel 0 lost: /);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain('club_provider_tunnel_connected{tunnel="0"} 0\n');
  });

  it("exits 1 with a fix when no daemon answers", async () => {
    const p = runCli(["status", "--status-port", String(await freePort())], {
      home: stack.home,
    });
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(
      /club-provider: no daemon answers on 127\.0\.0\.1:\d+\. Start one \(`club-provider start`/,
    );
  });
});
