/**
 * The club's page in headless Chromium, against `club-provider relay` and `club-provider
 * start` run as users run them (a fake llama-server behind the daemon, a media provider for
 * pictures and video): sign-in with the key (kept in session storage only), the models and
 * rigs, a workflow gate shown with its pictures and approved from the page until the run
 * finishes, and the admin view only for the operator's key.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, scratchDir, writeSecret, type CliProcess } from "../e2e/harness.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { MediaRig } from "../relay/jobs/media-rig.ts";
import {
  HAVE_CHROMIUM,
  axeViolations,
  launch,
  measure,
  screenshot,
  watchErrors,
} from "./browser.ts";

const ADMIN_KEY = "sk-club-page-admin-0123456789";
const BOB_KEY = "sk-club-page-bob-0123456789";
const MODEL = "tiny-qwen2-chat";
const patiently = { timeout: 30_000 };
/** A real 1×1 PNG, so the page's pictures decode. */
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==",
  "base64",
);
const REPLY = { shots: ["Wide shot of a city.", "Close-up of a door."] };
const TOKENS = JSON.stringify(REPLY).match(/.{1,24}/g) ?? [];

describe.skipIf(!HAVE_CHROMIUM)("the club's page", () => {
  const llama = new FakeLlamaServer({ tokens: TOKENS, nCtx: 4096 });
  let relay: CliProcess;
  let daemon: CliProcess;
  let media: MediaRig;
  let browser: Browser;
  let base = "";

  beforeAll(async () => {
    const home = scratchDir();
    // The operator's key in the admin form, a member's in the old one: both load.
    writeFileSync(
      join(home, "keys.json"),
      JSON.stringify({ [ADMIN_KEY]: { member: "alice", admin: true }, [BOB_KEY]: "bob" }),
    );
    relay = runCli(
      ["relay", "--host", "127.0.0.1", "--port", "0", "--keys", join(home, "keys.json")],
      { home },
    );
    const line = await relay.waitFor(/relay ready: OpenAI base URL (http:\/\/\S+)\/v1/);
    base = /(http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1] ?? "";
    await llama.start();
    daemon = runCli(
      [
        "start",
        "--relay",
        base.replace("http", "ws"),
        "--api-key-file",
        writeSecret(home, "key.txt", ADMIN_KEY),
        "--name",
        "rig1",
        "--no-autodetect",
        "--status-port",
        "0",
        "--service",
        llama.url,
      ],
      { home },
    );
    await daemon.waitFor(/connected to the relay/);
    media = new MediaRig({ relayUrl: base, apiKey: ADMIN_KEY, image: PNG });
    await media.start();
    browser = await launch();
  });
  afterAll(async () => {
    await browser.close();
    media.stop();
    await Promise.all([daemon.stop(), relay.stop()]);
    await llama.stop();
  });

  const section = (tab: Page, name: string) =>
    tab.locator("section", { has: tab.getByRole("heading", { name, exact: true }) });

  async function signIn(tab: Page, key: string): Promise<void> {
    await tab.goto(`${base}/`);
    await tab.getByLabel("API key").fill(key);
    await tab.getByLabel("API key").press("Enter");
  }

  it("signs in, shows the models and rigs, and a gate approved from the page finishes its run", async () => {
    const context = await browser.newContext();
    const tab = await context.newPage();
    const errors = watchErrors(tab);
    await signIn(tab, ADMIN_KEY);
    await expect
      .poll(() => tab.getByText("Signed in as alice (operator)").count(), patiently)
      .toBe(1);
    await expect
      .poll(() => section(tab, "Models you can use").innerText(), patiently)
      .toContain(MODEL);
    expect(await section(tab, "Your rigs").innerText()).toMatch(/rig1\s+serving/);
    // The key is in this tab's session storage, nowhere a page of another site could read it.
    expect(tab.url()).not.toContain(ADMIN_KEY);
    expect(await context.cookies()).toEqual([]);
    expect(await tab.evaluate(() => sessionStorage.getItem("club-key"))).toBe(ADMIN_KEY);

    const submitted = await fetch(`${base}/v1/workflows/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({
        template: "storyboard-to-video",
        inputs: { concept: "a city wakes up", shots: 2 },
        models: { chat: MODEL },
      }),
    });
    expect(submitted.status).toBe(202);
    const run = (await submitted.json()) as { id: string };
    const gate = tab.getByRole("article", { name: new RegExp(`gate .* of run ${run.id}`) });
    await expect.poll(() => gate.count(), patiently).toBe(1);
    // The first frames before the gate are shown as pictures that decoded.
    await expect
      .poll(
        () =>
          gate
            .locator("img")
            .evaluateAll(
              (imgs) => imgs.filter((i) => (i as HTMLImageElement).naturalWidth > 0).length,
            ),
        patiently,
      )
      .toBe(2);
    await screenshot(browser, tab, "club-page");
    await gate.getByRole("button", { name: "Approve" }).click();
    const runStatus = async (): Promise<string> =>
      (
        (await (
          await fetch(`${base}/v1/workflows/runs/${run.id}`, {
            headers: { authorization: `Bearer ${ADMIN_KEY}` },
          })
        ).json()) as { status: string }
      ).status;
    await expect.poll(runStatus, patiently).toBe("DONE");
    await expect
      .poll(() => section(tab, "Workflow runs").innerText(), patiently)
      .toMatch(new RegExp(`${run.id}\\s+storyboard-to-video\\s+DONE`));
    expect(await gate.count()).toBe(0);

    // The operator's view: providers online and per-member usage.
    await expect
      .poll(() => section(tab, "Providers online").innerText(), patiently)
      .toMatch(/rig1\s+alice/);
    await expect
      .poll(() => section(tab, "Usage per member (last 30 days)").innerText(), patiently)
      .toMatch(/alice\s+[1-9]/);
    expect(errors).toEqual([]);
    await context.close();
  });

  it("shows a job running and then finished without a reload, from the relay's live stream", async () => {
    const context = await browser.newContext();
    const tab = await context.newPage();
    const errors = watchErrors(tab);
    await signIn(tab, ADMIN_KEY);
    await expect.poll(() => tab.getByTestId("live").textContent(), patiently).toBe("live");
    llama.pauseGenerations();
    const submitted = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: "user", content: "hi" }],
        async: true,
      }),
    });
    expect(submitted.status).toBe(202);
    const job = (await submitted.json()) as { id: string };
    // Well inside the 30 s the page waits between reads while its stream is up: what shows
    // here came from the stream's events.
    const soon = { timeout: 15_000 };
    const jobs = section(tab, "Jobs");
    await expect
      .poll(() => jobs.innerText(), soon)
      .toMatch(new RegExp(`${job.id}\\s+${MODEL}\\s+/v1/chat/completions\\s+(QUEUED|PROCESSING)`));
    llama.resumeGenerations();
    await expect
      .poll(() => jobs.innerText(), soon)
      .toMatch(new RegExp(`${job.id}\\s+${MODEL}\\s+/v1/chat/completions\\s+PROCESSED`));
    expect(errors).toEqual([]);
    await context.close();
  });

  it("shows a picture in the owner's media library and, made public, in everyone's gallery, as images that load", async () => {
    const made = await fetch(`${base}/v1/images/generations`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "image-1", prompt: "a lighthouse", visibility: "PUBLIC" }),
    });
    expect(made.status).toBe(200);
    const id = ((await made.json()) as { data: { id: string }[] }).data[0]?.id ?? "";
    expect(id).not.toBe("");
    const decoded = (tab: Page, name: string) =>
      section(tab, name)
        .locator(`figure[data-file="${id}"] img`)
        .evaluateAll((imgs) =>
          imgs.map((i) => ({
            width: (i as HTMLImageElement).naturalWidth,
            alt: (i as HTMLImageElement).alt,
          })),
        );
    const context = await browser.newContext();
    const tab = await context.newPage();
    const errors = watchErrors(tab);
    await signIn(tab, ADMIN_KEY);
    const loaded = [{ width: 1, alt: "image from image-1" }];
    await expect.poll(() => decoded(tab, "Your media library"), patiently).toEqual(loaded);
    await expect.poll(() => decoded(tab, "Public gallery"), patiently).toEqual(loaded);
    expect(errors).toEqual([]);
    // Another member sees it in the gallery only.
    const other = await browser.newContext();
    const bobs = await other.newPage();
    await signIn(bobs, BOB_KEY);
    await expect.poll(() => decoded(bobs, "Public gallery"), patiently).toEqual(loaded);
    expect(await decoded(bobs, "Your media library")).toEqual([]);
    await other.close();
    await context.close();
  });

  it("shows a member no admin view, and refuses the admin API to their key", async () => {
    const context = await browser.newContext();
    const tab = await context.newPage();
    const errors = watchErrors(tab);
    await signIn(tab, BOB_KEY);
    await expect.poll(() => tab.getByText("Signed in as bob").count(), patiently).toBe(1);
    await expect
      .poll(() => section(tab, "Models you can use").innerText(), patiently)
      .toContain("No model is online for you now.");
    expect(await section(tab, "Providers online").count()).toBe(0);
    expect(errors).toEqual([]);
    const refused = await fetch(`${base}/ui/api/admin`, {
      headers: { authorization: `Bearer ${BOB_KEY}` },
    });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { type: string } }).error.type).toBe(
      "permission_error",
    );
    await context.close();
  });

  it("says so when the key is wrong, and keeps nothing", async () => {
    const context = await browser.newContext();
    const tab = await context.newPage();
    await signIn(tab, "sk-not-a-key-of-this-club-000");
    await expect
      .poll(() => tab.getByRole("alert").innerText(), patiently)
      .toMatch(/missing or invalid API key/);
    expect(await tab.evaluate(() => sessionStorage.getItem("club-key"))).toBe(null);
    await context.close();
  });

  it("has no serious or critical axe-core violations, signed out, signed in, and in the admin view", async () => {
    const context = await browser.newContext();
    const tab = await context.newPage();
    await tab.goto(`${base}/`);
    await expect.poll(() => tab.getByLabel("API key").count(), patiently).toBe(1);
    expect(await axeViolations(tab)).toEqual([]);
    // Signed in with the keyboard: the key, then Enter on the button reached by Tab.
    await tab.getByLabel("API key").fill(ADMIN_KEY);
    await tab.keyboard.press("Tab");
    expect(
      await tab
        .getByRole("button", { name: "Sign in" })
        .evaluate((el) => el === document.activeElement),
    ).toBe(true);
    await tab.keyboard.press("Enter");
    // The earlier tests left runs, jobs, pictures and usage to show.
    await expect
      .poll(() => section(tab, "Usage per member (last 30 days)").count(), patiently)
      .toBe(1);
    await expect
      .poll(
        () =>
          section(tab, "Your media library")
            .locator("img")
            .evaluateAll(
              (imgs) => imgs.filter((i) => (i as HTMLImageElement).naturalWidth > 0).length,
            ),
        patiently,
      )
      .toBeGreaterThan(0);
    expect(await axeViolations(tab)).toEqual([]);
    await context.close();
  });

  it("stays within its first-load budget (BENCHMARKS.md, Page weight)", async () => {
    const weight = await measure(browser, `${base}/`);
    process.stdout.write(`page weight: club ${JSON.stringify(weight)}\n`);
    expect(weight.files).toBe(3);
    expect(weight.renderedMs).toBeGreaterThan(0);
    expect(weight.bytes).toBeLessThan(56 * 1024);
  });
});
