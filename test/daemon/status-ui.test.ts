/**
 * The rig page's server side over a real loopback socket, with a stub daemon: the shell and its
 * headers, the built assets' caching, the live stream and its limit, and the CSRF token that
 * the page's actions need.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HourUsage } from "../../src/daemon/hour-usage.ts";
import { LogRing } from "../../src/daemon/log-ring.ts";
import { RigView, type RigViewSource } from "../../src/daemon/rig-view.ts";
import { startStatusServer } from "../../src/daemon/status-server.ts";
import { CSRF_HEADER, RigPage } from "../../src/daemon/status-ui.ts";
import { silentLogger } from "../../src/log.ts";
import { UiAssets } from "../../src/ui/assets.ts";

const assetDir = mkdtempSync(join(tmpdir(), "club-ui-assets-"));
writeFileSync(join(assetDir, "rig-ABC123.js"), "console.log('rig');\n");
writeFileSync(join(assetDir, "style-DEF456.css"), "body{}\n");
writeFileSync(
  join(assetDir, "manifest.json"),
  JSON.stringify({ "rig.js": "rig-ABC123.js", "style.css": "style-DEF456.css" }),
);

const logTail = new LogRing(3);
const paused: string[] = [];
const source: RigViewSource = {
  // A hostile name: the shell must not let it end the script element or the markup.
  name: "rig</script><script>alert(1)</script>",
  version: "0.0.0",
  started: 1,
  relay: "ws://127.0.0.1:1",
  pause: () => ({ paused: null, manual: null, outside_schedule: false, paused_models: {} }),
  tunnels: () => [{ state: "connected", connects: 1, since: 2 }],
  gpus: () => [],
  gpuLoad: () => [],
  manifest: () => ({ schema_version: 1, agent: { name: "rig" }, hosts: [] }),
  services: () => [],
  jobs: () => [],
  errors: () => [],
  hourUsage: new HourUsage(),
  logTail,
};
const page = new RigPage({
  view: new RigView(source, 1000),
  maxStreams: 2,
  assets: new UiAssets(assetDir),
});
let server: http.Server;
let port = 0;
let base = "";

beforeAll(async () => {
  const started = await startStatusServer(
    {
      ready: () => true,
      status: () => ({}),
      page,
      pausing: {
        pause: (reason) => paused.push(reason ?? ""),
        resume: () => ({}),
      },
    },
    0,
    silentLogger,
  );
  if (!started) throw new Error("status server did not start");
  server = started;
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});
afterAll(() => {
  page.close();
  server.close();
});

/** One request with the headers a browser would send (fetch cannot set Origin). */
function raw(
  method: string,
  path: string,
  headers: Record<string, string>,
  body = "",
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Opens `/events` and resolves with the response once its first event arrived. */
function openStream(): Promise<{
  res: http.IncomingMessage;
  first: string;
  req: http.ClientRequest;
}> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}/events`, (res) => {
      let text = "";
      res.setEncoding("utf8");
      const onData = (d: string): void => {
        text += d;
        if (res.statusCode !== 200 || text.includes("\n\n", text.indexOf("event:"))) {
          res.off("data", onData);
          resolve({ res, first: text, req });
        }
      };
      res.on("data", onData);
      res.on("end", () => resolve({ res, first: text, req }));
    });
    req.on("error", reject);
  });
}

describe("the rig page's server side", () => {
  it("serves the shell no-cache with a strict CSP, the token, and hostile text escaped", async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-cache");
    expect(res.headers.get("content-security-policy")).toMatch(/script-src 'self'/);
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    const text = await res.text();
    expect(text).toContain(`<meta name="csrf" content="${page.token}">`);
    expect(text).toContain('<script type="module" src="/ui/assets/rig-ABC123.js"></script>');
    expect(text).not.toContain("<script>alert(1)");
    expect(text).toContain("rig&lt;/script&gt;");
    const inline = /<script type="application\/json" id="snapshot">(.*?)<\/script>/.exec(text);
    expect((JSON.parse(inline?.[1] ?? "null") as { name: string }).name).toBe(source.name);
  });

  it("serves hashed assets as immutable, and answers 404 for others", async () => {
    const res = await fetch(`${base}/ui/assets/rig-ABC123.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(await res.text()).toBe("console.log('rig');\n");
    for (const path of [
      "/ui/assets/manifest.json",
      "/ui/assets/../../package.json",
      "/ui/assets/x.js",
    ]) {
      const other = await fetch(`${base}${path}`);
      expect(other.status, path).toBe(404);
    }
  });

  it("streams the snapshot, and refuses streams beyond --page-streams until one closes", async () => {
    logTail.write(`${JSON.stringify({ level: 30, time: 5, msg: "hello" })}\n`);
    const a = await openStream();
    expect(a.res.headers["content-type"]).toBe("text/event-stream");
    const data = JSON.parse(/data: (.*)/.exec(a.first)?.[1] ?? "null") as {
      log: { msg: string }[];
    };
    expect(data.log.map((l) => l.msg)).toEqual(["hello"]);
    const b = await openStream();
    const c = await openStream();
    expect(c.res.statusCode).toBe(503);
    expect(JSON.parse(c.first)).toMatchObject({
      error: { message: expect.stringMatching(/raise --page-streams/) as string },
    });
    expect(page.streams).toBe(2);
    a.req.destroy();
    await expect.poll(() => page.streams).toBe(1);
    const d = await openStream();
    expect(d.res.statusCode).toBe(200);
    b.req.destroy();
    d.req.destroy();
  });

  it("keeps the log tail bounded", () => {
    for (let i = 0; i < 10; i++) logTail.write(`${JSON.stringify({ level: 40, msg: `m${i}` })}\n`);
    expect(logTail.list().map((l) => `${l.level} ${l.msg}`)).toEqual([
      "warn m7",
      "warn m8",
      "warn m9",
    ]);
  });

  it("takes a page's action only with its token, and never from another origin", async () => {
    const host = `127.0.0.1:${port}`;
    const json = { host, "content-type": "application/json" };
    const same = { ...json, origin: `http://${host}`, "sec-fetch-site": "same-origin" };
    const noToken = await raw("POST", "/pause", same, "{}");
    expect(noToken.status).toBe(403);
    expect(noToken.body).toContain(CSRF_HEADER);
    expect(
      (await raw("POST", "/pause", { ...same, [CSRF_HEADER]: "x".repeat(32) }, "{}")).status,
    ).toBe(403);
    const evil = { ...json, origin: "http://127.0.0.1:1", [CSRF_HEADER]: page.token };
    expect((await raw("POST", "/pause", evil, "{}")).status).toBe(403);
    expect(
      (await raw("POST", "/pause", { ...json, origin: "null", [CSRF_HEADER]: page.token }, "{}"))
        .status,
    ).toBe(403);
    expect(paused).toEqual([]);
    const ok = await raw(
      "POST",
      "/pause",
      { ...same, [CSRF_HEADER]: page.token },
      '{"reason":"r"}',
    );
    expect(ok.status).toBe(200);
    // The CLI sends no Origin: it needs no token.
    expect((await raw("POST", "/pause", json, "{}")).status).toBe(200);
    expect(paused).toEqual(["r", ""]);
  });
});

describe("HourUsage", () => {
  it("counts the last sixty minutes only, tokens included", () => {
    const usage = new HourUsage();
    const t0 = 1_000 * 60_000;
    usage.add({ model: "m", status: 200, bytes: 10, tokens: 8 }, t0);
    usage.add({ model: "m", status: 500, bytes: 5, tokens: null }, t0 + 30 * 60_000);
    expect(usage.figures("m", t0 + 30 * 60_000)).toEqual({
      requests: 2,
      errors: 1,
      bytes: 15,
      tokens: 8,
    });
    expect(usage.figures("m", t0 + 61 * 60_000)).toEqual({
      requests: 1,
      errors: 1,
      bytes: 5,
      tokens: 0,
    });
    expect(usage.figures("other", t0)).toEqual({ requests: 0, errors: 0, bytes: 0, tokens: 0 });
  });
});
