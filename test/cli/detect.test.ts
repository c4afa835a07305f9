/**
 * `club-provider detect`, run as users run it, with fake hardware tools as the whole PATH.
 * The host's own /sys and /proc are real here, so GPU lists are checked by containment.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, scratchDir } from "../e2e/harness.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { freePort } from "../fakes/util.ts";
import { fakeTools, fixture, type FakeRule } from "../hardware/fake-tools.ts";

const DETECT = "--query-gpu=index,uuid,name";

interface DetectJson {
  gpus: { index: number; model: string | null; vram_mb: number | null }[];
  advertised_gpus: { vendor: string; model: string; vram_gb: number; index: number }[];
  notes: string[];
  host: { hostname: string; arch: string };
  services: {
    name: string;
    url: string;
    origin: string;
    status: string;
    reason: string;
    models: string[];
  }[];
}

async function detect(
  args: string[],
  nvidiaSmi: FakeRule[],
  home = scratchDir(),
): Promise<{ code: number | null; output: string }> {
  const fakes = fakeTools({ "nvidia-smi": nvidiaSmi });
  const cli = runCli(["detect", ...args], { home, env: { PATH: fakes.dir } });
  const code = await cli.exited;
  return { code, output: cli.output() };
}

describe("club-provider detect", () => {
  const llama = new FakeLlamaServer();
  let llamaUrl = "";
  beforeAll(async () => {
    llamaUrl = await llama.start();
  });
  afterAll(() => llama.stop());

  it("prints GPUs, host and every probed URL with its reason as JSON", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const { code, output } = await detect(
      ["--json", "--no-autodetect", "--service", llamaUrl, "--service", dead],
      [{ args: DETECT, stdout: fixture("nvidia-smi/1-gpu.csv") }],
    );
    expect(code).toBe(0);
    const json = JSON.parse(output) as DetectJson;
    expect(json.gpus).toContainEqual(
      expect.objectContaining({ index: 0, model: "NVIDIA GeForce RTX 4090", vram_mb: 24564 }),
    );
    expect(json.advertised_gpus).toContainEqual({
      vendor: "nvidia",
      model: "NVIDIA GeForce RTX 4090",
      vram_gb: 24,
      index: 0,
    });
    expect(typeof json.host.hostname).toBe("string");
    expect(json.services).toEqual([
      expect.objectContaining({
        url: llamaUrl,
        origin: "config",
        status: "ready",
        models: ["tiny-qwen2-chat"],
      }),
      expect.objectContaining({
        url: dead,
        origin: "config",
        status: "down",
        reason: `nothing listening at ${dead} (ECONNREFUSED)`,
      }),
    ]);
  });

  it("prints readable tables, with the notes on what failed", async () => {
    const { code, output } = await detect(
      ["--no-autodetect", "--service", llamaUrl],
      [{ stdout: fixture("nvidia-smi/no-driver.txt"), exit: 9 }],
    );
    expect(code).toBe(0);
    expect(output).toMatch(/^HOST\s+OS\s+ARCH\s+CPU\s+CORES\s+THREADS\s+RAM$/m);
    expect(output).toContain(
      "  - nvidia-smi exited with code 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
    );
    expect(output).toMatch(/^SERVICE\s+ENGINE\s+URL\s+FOUND BY\s+STATUS\s+DETAIL$/m);
    expect(output).toMatch(
      new RegExp(`llamacpp-\\d+\\s+llamacpp\\s+${llamaUrl}\\s+config\\s+ready`),
    );
  });

  it("shows each GPU's figures in the GPU table", async () => {
    const { output } = await detect(
      ["--no-autodetect"],
      [{ args: DETECT, stdout: fixture("nvidia-smi/4-gpu.csv") }],
    );
    expect(output).toMatch(
      /^GPU\s+VENDOR\s+MODEL\s+VRAM\s+USED\s+UTIL\s+TEMP\s+POWER\s+DRIVER\s+SOURCE$/m,
    );
    expect(output).toMatch(
      /^0\s+nvidia\s+NVIDIA GeForce RTX 3090\s+24\.0 GiB\s+19\.6 GiB\s+97%\s+71°C\s+338\.45 W\s+535\.183\.01\s+nvidia-smi$/m,
    );
    expect(output).toContain("Advertised to the club: GPU 0 nvidia NVIDIA GeForce RTX 3090 24 GB;");
  });

  it("advertises the GPUs of the `gpus` setting", async () => {
    const home = scratchDir();
    mkdirSync(join(home, "config", "club-provider"), { recursive: true });
    writeFileSync(
      join(home, "config", "club-provider", "config.json"),
      JSON.stringify({ gpus: [{ vendor: "intel", model: "Arc A770", vram_gb: 16, index: 7 }] }),
    );
    const { output } = await detect(["--json", "--no-autodetect"], [], home);
    const json = JSON.parse(output) as DetectJson;
    expect(json.advertised_gpus).toContainEqual({
      vendor: "intel",
      model: "Arc A770",
      vram_gb: 16,
      index: 7,
    });
  });

  it("lists the default ports it probed, each with why it was or was not recognised", async () => {
    const { output } = await detect(["--json"], []);
    const json = JSON.parse(output) as DetectJson;
    const probed = json.services.filter((s) => s.origin === "autodetect");
    expect(probed.map((s) => s.url)).toEqual(
      expect.arrayContaining(["http://127.0.0.1:8080", "http://127.0.0.1:9931"]),
    );
    for (const s of probed) expect(s.reason).not.toBe("");
  });
});
