/**
 * `node --import tsx bench/cold-start.ts`: what the daemon adds to a managed engine's cold start.
 * Each round starts the real llama-server (CLUB_LLAMA_DIR, built by test/real/llama-server.sh)
 * twice: by hand (spawn, poll /health every 10 ms, then a streamed chat) and as a managed engine
 * behind the gateway (a streamed chat to the stopped engine). Both clocks start at the spawn
 * (by hand) or at the request (managed), and stop at the first health OK and at the first byte
 * of the answer. Prints medians and the ratio managed / by hand.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import { join } from "node:path";
import { Catalog } from "../src/discovery/catalog.ts";
import { EngineManager } from "../src/engines/manager.ts";
import { createGateway } from "../src/gateway/gateway.ts";
import { silentLogger } from "../src/log.ts";
import { median } from "./common.ts";

const DIR =
  process.env.CLUB_LLAMA_DIR ?? join(process.env.HOME ?? "", ".cache/club-provider/llama-v0.4.0");
const BIN = join(DIR, "llama-server");
const MODEL = join(DIR, "tiny-qwen2-chat.gguf");
const ARGS = ["-c", "512", "-np", "1", "-t", "1"];
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const BODY = JSON.stringify({
  model: "tiny",
  messages: [{ role: "user", content: "hi" }],
  max_tokens: 4,
  stream: true,
});

async function firstByte(url: string): Promise<void> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: BODY,
  });
  const reader = res.body!.getReader();
  await reader.read();
  await reader.cancel();
}

async function byHand(port: number): Promise<{ health: number; byte: number }> {
  const t0 = performance.now();
  const child = spawn(
    BIN,
    ["-m", MODEL, "--host", "127.0.0.1", "--port", String(port), "--alias", "tiny", ...ARGS],
    { stdio: "ignore" },
  );
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    const ok = await fetch(`${url}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const health = performance.now() - t0;
  await firstByte(url);
  const byte = performance.now() - t0;
  child.kill("SIGKILL");
  await once(child, "exit");
  return { health, byte };
}

async function managed(): Promise<{ health: number; byte: number }> {
  const manager = new EngineManager({
    specs: [
      {
        name: "tiny",
        command: [
          BIN,
          "-m",
          MODEL,
          "--host",
          "127.0.0.1",
          "--port",
          "{port}",
          "--alias",
          "tiny",
          ...ARGS,
        ],
        adapter: "llamacpp",
        models: [
          {
            id: "tiny",
            servedId: "tiny",
            type: "llm",
            contextLength: 512,
            features: ["streaming"],
          },
        ],
        gpus: [],
        vramMiB: undefined,
        health: undefined,
        idleMs: 0,
        startMs: 60_000,
        port: undefined,
        env: {},
        cwd: undefined,
        maxConcurrent: undefined,
      },
    ],
    settings: {
      waitMs: 60_000,
      reserveMiB: 0,
      budgetMiB: {},
      maxFailures: 3,
      stopMs: 5000,
      logLines: 100,
      retryBaseMs: 1000,
    },
    log: silentLogger,
  });
  const server = http.createServer(
    createGateway({
      catalog: () => new Catalog(manager.services()),
      providerName: "bench",
      log: silentLogger,
      engines: manager,
    }),
  );
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const engine = manager.get("tiny")!;
  const t0 = performance.now();
  let health = 0;
  engine.once("ready", () => (health = performance.now() - t0));
  await firstByte(url);
  const byte = performance.now() - t0;
  server.closeAllConnections();
  server.close();
  await manager.stopAll();
  return { health, byte };
}

const hand: { health: number; byte: number }[] = [];
const ours: { health: number; byte: number }[] = [];
for (let i = 0; i < ROUNDS; i++) {
  hand.push(await byHand(20_000 + i));
  ours.push(await managed());
}
const m = (xs: { health: number; byte: number }[], k: "health" | "byte") =>
  median(xs.map((x) => x[k]));
const row = (k: "health" | "byte", label: string) =>
  `| ${label} | ${m(hand, k).toFixed(0)} | ${m(ours, k).toFixed(0)} | ${(m(ours, k) - m(hand, k)).toFixed(0)} | ${(m(ours, k) / m(hand, k)).toFixed(2)} |`;
console.log(`cold start of llama-server (tiny model), median of ${ROUNDS} rounds, ms`);
console.log("| to | by hand | managed | added | ratio |\n|---|---|---|---|---|");
console.log(row("health", "first health OK"));
console.log(row("byte", "first byte of a streamed answer"));
