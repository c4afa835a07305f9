/**
 * A club on two relay instances, end to end with real processes as an operator runs them:
 * one PostgreSQL, `club-provider relay` twice with `--database` and `--internal-listen`, nginx
 * in front (round-robin, WebSocket upgrades passed through), a daemon serving a fake
 * llama-server and one serving a fake ComfyUI, both through nginx, and the official `openai`
 * client against nginx and against each instance; a third daemon serves the real llama-server
 * (when the real tier built it: CLUB_LLAMA_DIR, which .ci/run sets). Async jobs, a gated run
 * and a picture's URL cross instances. Then the instance holding the tunnel is killed.
 */
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI, { APIUserAbortError } from "openai";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FakeComfyUI } from "../fakes/comfyui.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { scratchDir, writeSecret, type CliProcess } from "../e2e/harness.ts";
import { LLAMA_DIR, startLlama, type RealLlama } from "../real/llama.ts";
import { freshDatabase, HAVE_PG } from "./db.ts";
import { NGINX, startNginx, type Nginx } from "./nginx.ts";
import { daemonProcess, relayProcess, type RelayProcess } from "./instance.ts";

const ALICE = "sk-alice-cluster-e2e-0123456789";

const MODEL = "tiny-qwen2-chat";

type Instance = RelayProcess;

let home: string;
let fake: FakeLlamaServer;
let nginx: Nginx;
let relays: Instance[];
let daemon: CliProcess;
/** A second rig with fake engines: ComfyUI, for pictures the relays keep. */
let comfy: FakeComfyUI;
let comfyDaemon: CliProcess;
/** The real llama-server behind a second daemon, when the real tier built one. */
let llama: RealLlama | undefined;
let realDaemon: CliProcess | undefined;
const REAL_MODEL = "real-tiny";

/** The fields of job, run and result answers the test reads. */
interface WorkAnswer {
  id: string;
  status: string;
  choices?: { message: { content: string } }[];
}

const client = (base: string, apiKey = ALICE) =>
  new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0 });

const chat = (base: string, apiKey = ALICE) =>
  client(base, apiKey).chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "hi" }],
  });

/** The instance whose log says the rig's tunnel arrived there (the `nth` time). */
async function holder(nth = 1): Promise<Instance> {
  return Promise.race(
    relays.map(async (r) => {
      await r.proc.waitFor(/provider rig1 connected/, { timeoutMs: 30_000, nth });
      return r;
    }),
  );
}

if (HAVE_PG && !LLAMA_DIR) {
  if (process.env.CI)
    throw new Error(
      "the PostgreSQL tier under CI needs CLUB_LLAMA_DIR (test/real/llama-server.sh)",
    );
  console.warn(
    "SKIPPING the real llama-server rig of the two-instance test: CLUB_LLAMA_DIR is not set (run `bash test/real/llama-server.sh`)",
  );
}

if (HAVE_PG && !NGINX) {
  if (process.env.CI) throw new Error("nginx is required by the PostgreSQL tier under CI");
  console.warn(
    "SKIPPING the two-instance nginx test: nginx is not installed (apt-get install -y nginx)",
  );
}

describe.skipIf(!HAVE_PG || !NGINX)("two relay instances behind nginx", () => {
  beforeAll(async () => {
    home = scratchDir();
    writeFileSync(join(home, "keys.json"), JSON.stringify({ [ALICE]: "alice" }));
    writeSecret(home, "cluster-secret", "a-cluster-secret-for-the-e2e-test");
    fake = new FakeLlamaServer({ tokens: ["Hello", " from", " the", " rig", "."] });
    await fake.start();
    const database = await freshDatabase("cluster_e2e");
    relays = await Promise.all([
      relayProcess(home, "relay-a", database),
      relayProcess(home, "relay-b", database),
    ]);
    nginx = await startNginx(relays.map((r) => new URL(r.url).host));
    daemon = await daemonProcess(nginx.url, ALICE, "rig1", fake.url);
    comfy = new FakeComfyUI();
    await comfy.start();
    comfyDaemon = await daemonProcess(nginx.url, ALICE, "rig-comfy", comfy.url, {
      CLUB_POLL_MS: "20",
    });
    if (LLAMA_DIR) {
      llama = await startLlama(["--alias", REAL_MODEL]);
      realDaemon = await daemonProcess(nginx.url, ALICE, "rig-real", llama.url);
    }
  });

  afterAll(async () => {
    await daemon.stop("SIGKILL");
    await comfyDaemon.stop("SIGKILL");
    await comfy.stop();
    await realDaemon?.stop("SIGKILL");
    await llama?.stop();
    await Promise.all(relays.map((r) => r.proc.stop("SIGKILL")));
    await nginx.stop();
    await fake.stop();
  });

  it("serves models and chat through nginx, from whichever instance takes the request", async () => {
    await vi.waitFor(async () => {
      for (const r of relays)
        expect((await client(r.url).models.list()).data.map((m) => m.id)).toContain(MODEL);
    });
    // nginx passes `Upgrade: club-tunnel.2`: the rig's tunnel is HTTP/2 on the socket.
    const line = await (await holder()).proc.waitFor(/provider rig1 connected/);
    expect((JSON.parse(line) as { protocol: number }).protocol).toBe(2);
    // Round-robin: of four calls through nginx, two land on the instance without the tunnel.
    for (let i = 0; i < 4; i++) {
      const reply = await chat(nginx.url);
      expect(reply.choices[0]?.message.content).toBe("Hello from the rig.");
    }
  });

  it("streams whole, and aborts at the engine, from the instance without the tunnel", async () => {
    const near = await holder();
    const far = relays.find((r) => r !== near)!;
    const stream = await client(far.url).chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toBe("Hello from the rig.");

    fake.pauseGenerations();
    const abort = new AbortController();
    const held = await client(far.url).chat.completions.create(
      { model: MODEL, messages: [{ role: "user", content: "wait" }], stream: true },
      { signal: abort.signal },
    );
    const closed = once(fake, "client-closed");
    const reading = (async () => {
      let seen = "";
      for await (const chunk of held) seen += chunk.choices[0]?.delta.content ?? "";
      return seen;
    })().catch((err: unknown) => err);
    await vi.waitFor(() => expect(fake.inFlight).toBe(1));
    abort.abort();
    // The SDK ends an aborted stream's iteration, or throws its abort error.
    const outcome = await reading;
    if (typeof outcome === "string") expect(outcome).not.toBe("Hello from the rig.");
    else expect(outcome).toBeInstanceOf(APIUserAbortError);
    await closed;
    fake.resumeGenerations();
    await vi.waitFor(() => expect(fake.inFlight).toBe(0));
  });

  it("keeps async jobs and workflow runs club-wide: submitted at one instance, read, fetched and approved at the other", async () => {
    const [first, second] = relays as [Instance, Instance];
    const api = async (base: string, method: string, path: string, body?: unknown) => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${ALICE}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as WorkAnswer };
    };
    const job = await api(first.url, "POST", "/v1/chat/completions", {
      model: MODEL,
      messages: [{ role: "user", content: "later" }],
      async: true,
    });
    expect(job.status).toBe(202);
    await vi.waitFor(
      async () =>
        expect((await api(second.url, "GET", `/v1/jobs/${job.body.id}`)).body.status).toBe(
          "PROCESSED",
        ),
      { timeout: 20_000 },
    );
    for (const base of [second.url, nginx.url]) {
      const result = await api(base, "GET", `/v1/jobs/${job.body.id}/result`);
      expect(result.body.choices?.[0]?.message.content).toBe("Hello from the rig.");
    }
    // A run with a gate, started at the second instance and approved at the first.
    const run = await api(second.url, "POST", "/v1/workflows/runs", {
      spec: {
        steps: [
          {
            id: "draft",
            kind: "inference",
            type: "chat",
            body: { messages: [{ role: "user", content: "draft" }] },
          },
          { id: "review", kind: "gate" },
          {
            id: "final",
            kind: "inference",
            type: "chat",
            body: { messages: [{ role: "user", content: "{{steps.draft.output}}" }] },
          },
        ],
      },
      models: { chat: MODEL },
    });
    expect(run.status, JSON.stringify(run.body)).toBe(202);
    const status = async (base: string) =>
      (await api(base, "GET", `/v1/workflows/runs/${run.body.id}`)).body.status;
    await vi.waitFor(async () => expect(await status(first.url)).toBe("AWAITING"), {
      timeout: 20_000,
    });
    const approved = await api(
      first.url,
      "POST",
      `/v1/workflows/runs/${run.body.id}/steps/review/approve`,
      {},
    );
    expect(approved.status).toBe(200);
    await vi.waitFor(async () => expect(await status(nginx.url)).toBe("DONE"), { timeout: 20_000 });

    // A picture drawn through one instance: its URL works at the other and through nginx.
    await vi.waitFor(
      async () => {
        for (const r of relays)
          expect((await client(r.url).models.list()).data.map((m) => m.id)).toContain("sdxl");
      },
      { timeout: 20_000 },
    );
    const drawn = await client(first.url).images.generate({
      model: "sdxl",
      prompt: "two relays",
      response_format: "url",
    });
    const url = drawn.data?.[0]?.url ?? "";
    expect(url.startsWith(`${first.url}/v1/media/`)).toBe(true);
    const original = Buffer.from(await (await fetch(url)).arrayBuffer());
    expect(original.length).toBeGreaterThan(0);
    for (const base of [second.url, nginx.url]) {
      const copy = await fetch(`${base}${new URL(url).pathname}`);
      expect(copy.status).toBe(200);
      expect(Buffer.from(await copy.arrayBuffer()).equals(original)).toBe(true);
    }
  });

  it.skipIf(!LLAMA_DIR)(
    "serves a real llama-server's model from either instance and through nginx",
    async () => {
      await vi.waitFor(
        async () => {
          for (const r of relays)
            expect((await client(r.url).models.list()).data.map((m) => m.id)).toContain(REAL_MODEL);
        },
        { timeout: 20_000 },
      );
      for (const base of [...relays.map((r) => r.url), nginx.url]) {
        const reply = await client(base).chat.completions.create({
          model: REAL_MODEL,
          messages: [{ role: "user", content: "Say hi" }],
          max_tokens: 8,
        });
        expect(reply.model).toBe(REAL_MODEL);
        expect(reply.choices[0]?.message.role).toBe("assistant");
        expect(reply.usage?.completion_tokens).toBeGreaterThan(0);
      }
      // Streamed from each instance: chunks arrive and the stream ends with a finish reason.
      for (const r of relays) {
        const stream = await client(r.url).chat.completions.create({
          model: REAL_MODEL,
          messages: [{ role: "user", content: "Count" }],
          max_tokens: 8,
          stream: true,
        });
        const finish: (string | null)[] = [];
        for await (const chunk of stream) finish.push(chunk.choices[0]?.finish_reason ?? null);
        expect(finish.filter((f) => f !== null)).toHaveLength(1);
      }
    },
  );

  it("survives SIGKILL of the instance holding the tunnel: the rig reconnects to the other", async () => {
    const near = await holder();
    const survivor = relays.find((r) => r !== near)!;
    near.proc.child.kill("SIGKILL");
    await near.proc.exited;
    // The daemon reconnects through nginx, which now reaches only the survivor.
    await survivor.proc.waitFor(/provider rig1 connected/, { timeoutMs: 30_000 });
    await vi.waitFor(
      async () => {
        const reply = await chat(nginx.url);
        expect(reply.choices[0]?.message.content).toBe("Hello from the rig.");
      },
      { timeout: 20_000, interval: 200 },
    );
    const direct = await chat(survivor.url);
    expect(direct.choices[0]?.message.content).toBe("Hello from the rig.");
  });
});
