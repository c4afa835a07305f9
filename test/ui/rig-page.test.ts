/**
 * The rig's page in headless Chromium, against `club-provider start` run as users run it (fake
 * `nvidia-smi` as its whole PATH, a fake llama-server) behind a real relay: the GPUs' figures,
 * a running request appearing and ending live, the pause button stopping the relay's routing,
 * the static parts with JavaScript off, and an action from another origin refused.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay } from "../../src/relay/server.ts";
import { runCli, scratchDir, type CliProcess } from "../e2e/harness.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { freePort } from "../fakes/util.ts";
import { fakeTools, fixture } from "../hardware/fake-tools.ts";
import {
  HAVE_CHROMIUM,
  axeViolations,
  launch,
  measure,
  screenshot,
  tabTo,
  watchErrors,
} from "./browser.ts";

const KEY = "sk-rig-page-test-0123456789";
const BOB = "sk-rig-page-bob-0123456789";
const MODEL = "tiny-qwen2-chat";
const patiently = { timeout: 20_000 };

describe.skipIf(!HAVE_CHROMIUM)("the rig's page", () => {
  let relay: Relay;
  const llama = new FakeLlamaServer({ tokens: ["all", " done"] });
  let daemon: CliProcess;
  let browser: Browser;
  let page = "";
  let statusPort = 0;
  let client: OpenAI;
  let bob: OpenAI;
  let home = "";

  beforeAll(async () => {
    relay = await createRelay({
      port: 0,
      keys: new KeyRing({ [KEY]: "alice", [BOB]: "bob" }),
      log: silentLogger,
      heartbeatMs: 200,
    });
    const fakes = fakeTools({
      "nvidia-smi": [
        { args: "--query-gpu=index,uuid,name", stdout: fixture("nvidia-smi/4-gpu.csv") },
        { args: "--query-gpu=index,memory.used", stdout: fixture("nvidia-smi/4-gpu-sample.csv") },
      ],
    });
    home = scratchDir();
    mkdirSync(join(home, "config", "club-provider"), { recursive: true });
    writeFileSync(
      join(home, "config", "club-provider", "config.json"),
      JSON.stringify({ heartbeatSeconds: 1 }),
    );
    statusPort = await freePort();
    page = `http://127.0.0.1:${statusPort}/`;
    const url = await llama.start();
    daemon = runCli(
      ["start", "--relay", relay.url.replace("http", "ws"), "--service", url, "--no-autodetect"],
      {
        home,
        env: { PATH: fakes.dir, CLUB_API_KEY: KEY, CLUB_STATUS_PORT: String(statusPort) },
      },
    );
    await daemon.waitFor(/connected to the relay/);
    expect(daemon.output()).toContain(`rig page: ${page}`);
    client = new OpenAI({ baseURL: `${relay.url}/v1`, apiKey: KEY, maxRetries: 0 });
    bob = new OpenAI({ baseURL: `${relay.url}/v1`, apiKey: BOB, maxRetries: 0 });
    browser = await launch();
  });
  afterAll(async () => {
    await browser.close();
    await daemon.stop();
    await relay.close();
    await llama.stop();
  });

  it("shows each GPU's figures, and a running request that ends live, with no console errors", async () => {
    const tab = await browser.newPage();
    const errors = watchErrors(tab);
    await tab.goto(page);
    await expect.poll(() => tab.getByTestId("live").textContent(), patiently).toBe("live");
    const gpus = tab.locator("section", { has: tab.getByRole("heading", { name: "GPUs" }) });
    await expect.poll(() => gpus.locator("tbody tr").count(), patiently).toBeGreaterThanOrEqual(4);
    // The monitor's first sample replaces the figures read at detection.
    await expect
      .poll(() => gpus.locator("tbody tr").nth(2).innerText(), patiently)
      .toMatch(/2: NVIDIA GeForce RTX 3090[\s\S]*41 %[\s\S]*45 °C[\s\S]*187\.3 W/);
    await expect
      .poll(() => gpus.getByRole("img", { name: /utilisation over the last/ }).count(), patiently)
      .toBe(4);

    const running = tab.locator("section", {
      has: tab.getByRole("heading", { name: "Running requests" }),
    });
    expect(await running.innerText()).toContain("Nothing running.");
    llama.pauseGenerations();
    const answer = client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
    });
    await expect.poll(() => running.locator("tbody tr").count(), patiently).toBe(1);
    expect(await running.locator("tbody tr").innerText()).toMatch(
      new RegExp(`${MODEL}\\s+you \\(owner\\)\\s+/v1/chat/completions`),
    );
    await screenshot(browser, tab, "rig-page");
    llama.resumeGenerations();
    expect((await answer).choices[0]?.message.content).toBe("all done");
    await expect.poll(() => running.innerText(), patiently).toContain("Nothing running.");
    const models = tab.locator("section", {
      has: tab.getByRole("heading", { name: "Engines and models" }),
    });
    await expect
      .poll(() => models.innerText(), patiently)
      .toMatch(/tiny-qwen2-chat\s+private\s+Share\s+1\s+0\s+[1-9]\d*\s+[\d.]+ [KMGT]?B\b/);
    expect(errors).toEqual([]);
    await tab.close();
  });

  it("pauses the rig from the page: the relay stops routing to it; Resume serves again", async () => {
    const tab = await browser.newPage();
    const errors = watchErrors(tab);
    await tab.goto(page);
    await tab.getByLabel("Reason").fill("gaming tonight");
    // Keyboard only: the action is reachable without a mouse.
    await tab.getByRole("button", { name: "Pause serving" }).focus();
    await tab.keyboard.press("Enter");
    await expect
      .poll(
        () => tab.getByText("Paused: paused by its owner: gaming tonight", { exact: true }).count(),
        patiently,
      )
      .toBe(1);
    await expect
      .poll(async () => (await client.models.list()).data.map((m) => m.id), patiently)
      .toEqual([]);
    await tab.getByRole("button", { name: "Resume serving" }).click();
    await expect
      .poll(async () => (await client.models.list()).data.map((m) => m.id), patiently)
      .toEqual([MODEL]);
    // The page learns of the resume on its next live update, not at once.
    await expect
      .poll(() => tab.getByRole("button", { name: "Pause serving" }).count(), patiently)
      .toBe(1);
    expect(errors).toEqual([]);
    await tab.close();
  });

  it("shares a model with the club from the page, and unshares it: the relay stops offering it to another member", async () => {
    const tab = await browser.newPage();
    const errors = watchErrors(tab);
    await tab.goto(page);
    const bobsModels = async (): Promise<string[]> =>
      (await bob.models.list()).data.map((m) => m.id);
    expect(await bobsModels()).toEqual([]);
    await tab.getByRole("button", { name: `Share ${MODEL} with the club` }).click();
    await expect.poll(bobsModels, patiently).toEqual([MODEL]);
    const models = tab.locator("section", {
      has: tab.getByRole("heading", { name: "Engines and models" }),
    });
    await expect
      .poll(() => models.innerText(), patiently)
      .toMatch(/tiny-qwen2-chat\s+club\s+Unshare/);
    const shared = await bob.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
    });
    expect(shared.choices[0]?.message.content).toBe("all done");

    // A member's streamed request, held by the engine after its first event: who and how much.
    const running = tab.locator("section", {
      has: tab.getByRole("heading", { name: "Running requests" }),
    });
    llama.pauseGenerations();
    const stream = await bob.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    await expect
      .poll(
        () =>
          running
            .locator("tbody tr")
            .innerText()
            .catch(() => ""),
        patiently,
      )
      .toMatch(
        new RegExp(
          `^${MODEL}\\s+bob\\s+/v1/chat/completions\\s+\\S+\\s+\\d+ s\\s+[1-9]\\d* B\\s+0\\s`,
        ),
      );
    llama.resumeGenerations();
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toBe("all done");
    await expect.poll(() => running.innerText(), patiently).toContain("Nothing running.");

    await tab.getByRole("button", { name: `Unshare ${MODEL}` }).click();
    await expect.poll(bobsModels, patiently).toEqual([]);
    await expect
      .poll(() => models.innerText(), patiently)
      .toMatch(/tiny-qwen2-chat\s+private\s+Share/);
    await expect(
      bob.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
    ).rejects.toMatchObject({ status: 404 });
    // The owner still reaches it, and the setting outlives a restart.
    expect((await client.models.list()).data.map((m) => m.id)).toEqual([MODEL]);
    const stored = JSON.parse(
      readFileSync(join(home, "config", "club-provider", "config.json"), "utf8"),
    ) as { sharing?: Record<string, unknown> };
    expect(stored.sharing).toEqual({ [MODEL]: "private" });
    expect(errors).toEqual([]);
    await tab.close();
  });

  it("refuses a bad /share body and an unknown model with the error envelope", async () => {
    const token = /name="csrf" content="([^"]+)"/.exec(await (await fetch(page)).text())?.[1];
    const share = (body: string) =>
      fetch(`${page}share`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          origin: page.slice(0, -1),
          "x-club-csrf": token ?? "",
        },
        body,
      });
    const bad = await share(JSON.stringify({ model: "x".repeat(300) }));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(
      /at most 256/,
    );
    const members = await share(JSON.stringify({ model: MODEL, access: "bob, ,carol" }));
    expect(members.status).toBe(400);
    const unknown = await share(JSON.stringify({ model: "no-such-model" }));
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { type: string } }).error.type).toBe(
      "not_found_error",
    );
    const noToken = await fetch(`${page}share`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: page.slice(0, -1) },
      body: JSON.stringify({ model: MODEL }),
    });
    expect(noToken.status).toBe(403);
    expect((await bob.models.list()).data).toEqual([]);
  });

  it("has no serious or critical axe-core violations, and pauses and resumes from the keyboard alone", async () => {
    const tab = await browser.newPage();
    const errors = watchErrors(tab);
    await tab.goto(page);
    await expect.poll(() => tab.getByTestId("live").textContent(), patiently).toBe("live");
    // With a request running, so its row and progress are checked too.
    const running = tab.locator("section", {
      has: tab.getByRole("heading", { name: "Running requests" }),
    });
    llama.pauseGenerations();
    const answer = client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
    });
    await expect.poll(() => running.locator("tbody tr").count(), patiently).toBe(1);
    expect(await axeViolations(tab)).toEqual([]);
    llama.resumeGenerations();
    await answer;

    const focused = (name: string) => () =>
      tab.getByRole("button", { name }).evaluate((el) => el === document.activeElement);
    await tabTo(tab, focused("Pause serving"));
    await tab.keyboard.press("Enter");
    await expect
      .poll(async () => (await client.models.list()).data.map((m) => m.id), patiently)
      .toEqual([]);
    await expect
      .poll(() => tab.getByRole("button", { name: "Resume serving" }).count(), patiently)
      .toBe(1);
    expect(await axeViolations(tab)).toEqual([]);
    await tabTo(tab, focused("Resume serving"));
    await tab.keyboard.press("Enter");
    await expect
      .poll(async () => (await client.models.list()).data.map((m) => m.id), patiently)
      .toEqual([MODEL]);
    expect(errors).toEqual([]);
    await tab.close();
  });

  it("shows the static parts with JavaScript off", async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const tab = await context.newPage();
    await tab.goto(page);
    const text = await tab.locator("main").innerText();
    expect(text).toMatch(/2: NVIDIA GeForce RTX 3090\s+[\d.]+ GB \/ 24\.0 GB\s+41 %/);
    expect(text).toContain(MODEL);
    expect(text).toMatch(/Tunnels[\s\S]*connected/);
    await context.close();
  });

  it("refuses an action sent from another origin, so a web page cannot pause the rig", async () => {
    // A page on another loopback port that tries to pause the rig the ways a page can.
    const evil = http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" }).end(
        `<!doctype html><form id="f" method="post" action="${page}pause" enctype="text/plain">` +
          `<input name='{"reason":"pwned","x":"' value='"}'></form><script>
          window.results = [];
          fetch("${page}pause", { method: "POST", mode: "no-cors", body: "{}" })
            .then((r) => results.push("no-cors " + r.type), (e) => results.push("no-cors failed"));
          fetch("${page}pause", { method: "POST", headers: { "content-type": "application/json", "x-club-csrf": "guess" }, body: "{}" })
            .then((r) => results.push("cors " + r.status), (e) => results.push("cors failed"));
          </script>`,
      );
    });
    await new Promise<void>((r) => evil.listen(0, "127.0.0.1", r));
    const tab = await browser.newPage();
    try {
      await tab.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
      await expect
        .poll(() => tab.evaluate(() => (window as unknown as { results: string[] }).results.length))
        .toBe(2);
      expect(
        (await tab.evaluate(() => (window as unknown as { results: string[] }).results)).sort(),
      ).toEqual(["cors failed", "no-cors opaque"]);
      const refused = tab.waitForResponse((r) => r.url() === `${page}pause`);
      await tab.evaluate(() => (document.getElementById("f") as HTMLFormElement).submit());
      expect((await refused).status()).toBe(403);
      const status = (await (await fetch(`${page}status`)).json()) as {
        pause: { paused: string | null };
      };
      expect(status.pause.paused).toBe(null);
      expect((await client.models.list()).data.map((m) => m.id)).toEqual([MODEL]);
    } finally {
      await tab.close();
      evil.close();
    }
  });

  it("stays within its first-load budget (BENCHMARKS.md, Page weight)", async () => {
    const weight = await measure(browser, page);
    process.stdout.write(`page weight: rig ${JSON.stringify(weight)}\n`);
    expect(weight.files).toBe(3);
    expect(weight.renderedMs).toBeGreaterThan(0);
    expect(weight.bytes).toBeLessThan(48 * 1024);
  });
});
