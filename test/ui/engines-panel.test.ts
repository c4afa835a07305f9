/**
 * The rig page's managed-engines panel in headless Chromium: shown only when the status server
 * answers `GET /engines`, with Start and Stop buttons that POST `/engines/<name>/start|stop`
 * with the page's token. The server here is the status server's own checks (`refusal`) and
 * page in front of a stand-in for the engines endpoints, in their documented shape.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HourUsage } from "../../src/daemon/hour-usage.ts";
import { RigView } from "../../src/daemon/rig-view.ts";
import { refusal } from "../../src/daemon/status-server.ts";
import { RigPage } from "../../src/daemon/status-ui.ts";
import { HAVE_CHROMIUM, launch, watchErrors } from "./browser.ts";

const patiently = { timeout: 20_000 };

describe.skipIf(!HAVE_CHROMIUM)("the rig page's engines panel", () => {
  const state: Record<string, string> = { "qwen-8b": "stopped", whisper: "ready" };
  const posts: string[] = [];
  let engines = true;
  const page = new RigPage({
    view: new RigView(
      {
        name: "rig1",
        version: "0.0.0",
        started: 1,
        relay: "ws://127.0.0.1:1",
        pause: () => ({ paused: null, manual: null, outside_schedule: false, paused_models: {} }),
        tunnels: () => [],
        gpus: () => [],
        gpuLoad: () => [],
        manifest: () => ({ schema_version: 1, agent: { name: "rig1" }, hosts: [] }),
        services: () => [],
        jobs: () => [],
        errors: () => [],
        hourUsage: new HourUsage(),
      },
      1000,
    ),
  });
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const refused = refusal(req, (server.address() as AddressInfo).port, page);
    if (refused) return res.writeHead(refused.status).end(refused.message);
    const action = /^\/engines\/([^/]+)\/(start|stop)$/.exec(path);
    if (req.method === "POST" && action) {
      posts.push(`${action[1]} ${action[2]}`);
      state[action[1] ?? ""] = action[2] === "start" ? "ready" : "stopped";
      return res.writeHead(200, { "content-type": "application/json" }).end("{}");
    }
    if (path === "/engines" && engines)
      return res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          engines: Object.entries(state).map(([name, s]) => ({
            name,
            state: s,
            models: [name],
            gpus: [0],
            vramMiB: 6144,
            lastUsedAt: null,
            starts: 1,
            failures: 0,
          })),
        }),
      );
    if (!page.handle(path, req, res)) res.writeHead(404).end();
  });
  let browser: Browser;
  let base = "";

  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launch();
  });
  afterAll(async () => {
    await browser.close();
    page.close();
    server.close();
  });

  it("lists the engines and starts and stops them from the page, with its token", async () => {
    const tab = await browser.newPage();
    const errors = watchErrors(tab);
    await tab.goto(`${base}/`);
    const panel = tab.locator("section", {
      has: tab.getByRole("heading", { name: "Managed engines" }),
    });
    await expect.poll(() => panel.innerText(), patiently).toMatch(/qwen-8b\s+stopped/);
    expect(await panel.innerText()).toMatch(/whisper\s+ready\s+whisper\s+6\.0 GB/);
    await tab.getByRole("button", { name: "Start qwen-8b" }).click();
    await expect.poll(() => panel.innerText(), patiently).toMatch(/qwen-8b\s+ready/);
    await tab.getByRole("button", { name: "Stop whisper" }).click();
    await expect.poll(() => panel.innerText(), patiently).toMatch(/whisper\s+stopped/);
    expect(posts).toEqual(["qwen-8b start", "whisper stop"]);
    expect(errors).toEqual([]);
    await tab.close();
  });

  it("shows no panel when the status server has no GET /engines", async () => {
    engines = false;
    const tab = await browser.newPage();
    await tab.goto(`${base}/`);
    await expect.poll(() => tab.getByRole("heading", { name: "Tunnels" }).count()).toBe(1);
    expect(await tab.getByRole("heading", { name: "Managed engines" }).count()).toBe(0);
    await tab.close();
    engines = true;
  });
});
