/** The status server over a real loopback socket, with a stub source. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Counter, METRICS_CONTENT_TYPE, Registry } from "../../src/daemon/metrics.ts";
import { fetchStatus, startStatusServer } from "../../src/daemon/status-server.ts";
import { createLogger, silentLogger } from "../../src/log.ts";

let ready = false;
const registry = new Registry();
registry.register(new Counter("hits_total", "Hits")).inc();
let server: http.Server;
let base = "";

beforeAll(async () => {
  const started = await startStatusServer(
    { ready: () => ready, status: () => ({ name: "rig1" }), metrics: registry },
    0,
    silentLogger,
  );
  if (!started) throw new Error("status server did not start");
  server = started;
  const { address, port } = server.address() as AddressInfo;
  expect(address).toBe("127.0.0.1");
  base = `http://127.0.0.1:${port}`;
});

afterAll(() => server.close());

describe("status server", () => {
  it("answers /healthz", async () => {
    const res = await fetch(`${base}/healthz`);
    expect([res.status, await res.text()]).toEqual([200, "ok\n"]);
  });

  it("answers /ready 503 without a tunnel and 200 with one", async () => {
    ready = false;
    const down = await fetch(`${base}/ready`);
    expect([down.status, await down.text()]).toEqual([503, "no tunnel is up\n"]);
    ready = true;
    const up = await fetch(`${base}/ready`);
    expect([up.status, await up.text()]).toEqual([200, "ready\n"]);
  });

  it("serves /status as JSON, which fetchStatus reads", async () => {
    const { port } = server.address() as AddressInfo;
    expect(await fetchStatus(port)).toEqual({ name: "rig1" });
  });

  it("serves /metrics as Prometheus text", async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(METRICS_CONTENT_TYPE);
    expect(await res.text()).toContain("hits_total 1\n");
  });

  it("answers 404 in the club's envelope, naming the endpoints", async () => {
    const res = await fetch(`${base}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: {
        message: "no status endpoint /nope; try /healthz, /ready, /status or /metrics",
        type: "not_found_error",
      },
    });
  });

  /** One request with headers fetch would not let us set (Host). */
  function raw(
    method: string,
    path: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; body: string }> {
    const { port } = server.address() as AddressInfo;
    return new Promise((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end();
    });
  }

  it("answers only loopback Host values, so a DNS-rebound page cannot read /status", async () => {
    const { port } = server.address() as AddressInfo;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, "localhost"])
      expect((await raw("GET", "/status", { host })).status, host).toBe(200);
    for (const host of [
      `evil.example:${port}`,
      "evil.example",
      `127.0.0.1.nip.io:${port}`,
      `localhost:${port + 1}`,
    ]) {
      const res = await raw("GET", "/status", { host });
      expect(res.status, host).toBe(421);
      expect(res.body).not.toContain("rig1");
      expect(JSON.parse(res.body)).toMatchObject({
        error: { message: expect.stringMatching(/only loopback Host values/) as string },
      });
    }
  });

  it("refuses cross-site requests that are not GET or HEAD", async () => {
    const { port } = server.address() as AddressInfo;
    const host = `127.0.0.1:${port}`;
    expect((await raw("POST", "/status", { host, origin: "https://evil.example" })).status).toBe(
      403,
    );
    expect((await raw("POST", "/ready", { host, "sec-fetch-site": "cross-site" })).status).toBe(
      403,
    );
    expect((await raw("DELETE", "/status", { host })).status).toBe(405);
    expect((await raw("HEAD", "/healthz", { host, origin: "https://evil.example" })).status).toBe(
      200,
    );
  });

  it("warns and resolves null when the port is taken", async () => {
    const { port } = server.address() as AddressInfo;
    const warnings: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        warnings.push((JSON.parse(chunk.toString()) as { msg: string }).msg);
        done();
      },
    });
    const log = createLogger({ format: "json", destination });
    expect(await startStatusServer({ ready: () => true, status: () => ({}) }, port, log)).toBe(
      null,
    );
    expect(warnings[0]).toMatch(/is in use .*set --status-port to another port/);
  });

  it("fetchStatus gives null when nothing answers", async () => {
    expect(await fetchStatus(1)).toBe(null);
  });
});
