/**
 * The daemon carries hardware to the relay: static GPU facts in the manifest, live figures in
 * every heartbeat. A real relay runs in this process; `club-provider start` runs as users run
 * it, with fake GPU tools as its whole PATH.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay } from "../../src/relay/server.ts";
import { runCli, scratchDir, type CliProcess } from "./harness.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { fakeTools, fixture } from "../hardware/fake-tools.ts";

const KEY = "sk-hardware-daemon-test-1234";

describe("daemon hardware", () => {
  let relay: Relay;
  const llama = new FakeLlamaServer();
  let daemon: CliProcess | undefined;

  beforeAll(async () => {
    relay = await createRelay({
      port: 0,
      keys: new KeyRing({ [KEY]: "alice" }),
      log: silentLogger,
      heartbeatMs: 200,
    });
  });
  afterAll(async () => {
    await daemon?.stop();
    await relay.close();
    await llama.stop();
  });

  it("advertises detected GPUs in the manifest and sends their live figures in heartbeats", async () => {
    const fakes = fakeTools({
      "nvidia-smi": [
        { args: "--query-gpu=index,uuid,name", stdout: fixture("nvidia-smi/4-gpu.csv") },
        { args: "--query-gpu=index,memory.used", stdout: fixture("nvidia-smi/4-gpu-sample.csv") },
      ],
    });
    const home = scratchDir();
    mkdirSync(join(home, "config", "club-provider"), { recursive: true });
    writeFileSync(
      join(home, "config", "club-provider", "config.json"),
      JSON.stringify({ heartbeatSeconds: 1 }),
    );
    const url = await llama.start();
    daemon = runCli(
      ["start", "--relay", relay.url.replace("http", "ws"), "--service", url, "--no-autodetect"],
      { home, env: { PATH: fakes.dir, CLUB_API_KEY: KEY, CLUB_STATUS_PORT: "0" } },
    );
    await daemon.waitFor(/connected to the relay/);
    const link = () => relay.registry.all()[0];

    expect(link()?.manifest?.hosts[0]?.gpus.slice(0, 4)).toEqual(
      [0, 1, 2, 3].map((index) => ({
        vendor: "nvidia",
        model: "NVIDIA GeForce RTX 3090",
        vram_gb: 24,
        index,
      })),
    );
    // Sampled once per heartbeat interval (1 s here); the fixture differs from detection's.
    await vi.waitFor(
      () =>
        expect(link()?.lastHeartbeat?.gpus[2]).toEqual({
          index: 2,
          vram_used_mb: 8211,
          utilization_pct: 41,
          temperature_c: 45,
          power_w: 187.3,
        }),
      { timeout: 10_000 },
    );
    expect(daemon.output()).toMatch(/hardware: NVIDIA GeForce RTX 3090 \(24 GB\)/);
  });
});
