/**
 * `club-provider doctor`, run as users run it against a real relay, daemon and fake engine,
 * with fake hardware tools as the whole PATH: every failure says how to fix it and exits 1.
 */
import { chmodSync } from "node:fs";
import { hostname } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, scratchDir, writeSecret } from "../e2e/harness.ts";
import { ALICE_KEY, startStack, type Stack } from "../e2e/stack.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { freePort } from "../fakes/util.ts";
import { fakeTools, fixture, type FakeRule } from "../hardware/fake-tools.ts";

const GPU_OK: FakeRule[] = [
  { args: "--query-gpu=index,uuid,name", stdout: fixture("nvidia-smi/1-gpu.csv") },
  { stdout: "" },
];
const GPU_BROKEN: FakeRule[] = [{ stdout: fixture("nvidia-smi/no-driver.txt"), exit: 9 }];

let fake: FakeLlamaServer;
let stack: Stack;
let statusPort = 0;

async function doctor(
  args: string[],
  nvidiaSmi: FakeRule[] = GPU_OK,
): Promise<{ code: number | null; output: string }> {
  const tools = fakeTools({ "nvidia-smi": nvidiaSmi });
  const p = runCli(["doctor", "--no-autodetect", "--timeout", "3", ...args], {
    home: scratchDir(),
    env: { PATH: tools.dir },
  });
  const code = await p.exited;
  return { code, output: p.output() };
}

beforeAll(async () => {
  fake = new FakeLlamaServer();
  await fake.start();
  statusPort = await freePort();
  stack = await startStack([fake.url], ["--status-port", String(statusPort)]);
});

afterAll(async () => {
  await stack.stop();
  await fake.stop();
});

const relayWs = (): string => stack.relayUrl.replace("http", "ws");

describe("club-provider doctor", () => {
  it("passes every check against a working club", async () => {
    const keyFile = writeSecret(scratchDir(), "key.txt", ALICE_KEY);
    const { code, output } = await doctor([
      ...["--relay", relayWs(), "--api-key-file", keyFile, "--service", fake.url],
      ...["--status-port", String(statusPort)],
    ]);
    expect(code, output).toBe(0);
    const lines = output.split("\n");
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^ok {4}Node\.js: v\d+\.\d+\.\d+ \(needs ≥ 22\.19\)$/),
        `ok    config: relay ${relayWs()}, key from the key file ${keyFile}, provider "${hostname()}"`,
        expect.stringMatching(
          new RegExp(`^ok {4}relay reachable: ${stack.relayUrl} answered in \\d+ ms$`),
        ),
        "ok    API key accepted: the relay accepted the key (club-tunnel.2 handshake)",
        expect.stringMatching(
          new RegExp(`^ok {4}engine llamacpp-\\d+: ${fake.url}: 1 model\\(s\\): tiny-qwen2-chat$`),
        ),
        "ok    GPU tools: GPU 0: NVIDIA GeForce RTX 4090 (nvidia-smi)",
        "ok    daemon: running; 1 tunnel(s) connected",
        "No problems found.",
      ]),
    );
    expect(output).not.toContain(ALICE_KEY);
  });

  it("names each failure with its fix and exits 1", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const keyFile = writeSecret(scratchDir(), "key.txt", "sk-nobody-0123456789");
    const { code, output } = await doctor(
      ["--relay", relayWs(), "--api-key-file", keyFile, "--service", dead],
      GPU_BROKEN,
    );
    expect(code).toBe(1);
    expect(output).toContain(
      "FAIL  API key accepted: the relay refused the API key (HTTP 401)\n" +
        "      fix: use the key the club gave you: CLUB_API_KEY, --api-key-file FILE, or `club-provider config set apiKey <key>`",
    );
    expect(output).toContain(
      `: ${dead}: nothing listening at ${dead} (ECONNREFUSED)\n` +
        "      fix: start it, or correct or remove its URL",
    );
    expect(output).toMatch(/^FAIL {2}engines: no model server answers\n {6}fix: start one/m);
    expect(output).toMatch(
      /^FAIL {2}GPU tools: nvidia-smi exited with code 9: NVIDIA-SMI has failed .*\n {6}fix: run the tool yourself/m,
    );
    expect(output).toMatch(/^\d+ problems found\.$/m);
    expect(output).not.toContain("sk-nobody-0123456789");
  });

  it("reports an unreachable relay and skips the key check", async () => {
    const { code, output } = await doctor([
      ...["--relay", `ws://127.0.0.1:${await freePort()}`, "--service", fake.url],
    ]);
    expect(code).toBe(1);
    expect(output).toMatch(
      /^FAIL {2}relay reachable: cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)\n {6}fix: is the relay running, and is the URL right\?/m,
    );
    expect(output).toMatch(/^FAIL {2}config: no API key\n {6}fix: set CLUB_API_KEY/m);
    expect(output).toContain("skip  API key accepted: no API key");
  });

  it("refuses a key file others can read, saying to chmod it", async () => {
    const keyFile = writeSecret(scratchDir(), "key.txt", ALICE_KEY);
    chmodSync(keyFile, 0o644);
    const { code, output } = await doctor(["--relay", relayWs(), "--api-key-file", keyFile]);
    expect(code).toBe(1);
    expect(output).toContain(`FAIL  config: configuration problems:`);
    expect(output).toContain(`run chmod 600 ${keyFile}`);
    expect(output).toContain("skip  engines: the config has problems");
  });
});
