/**
 * The last line of defence: a fault inside one request is answered 500, logged with the request
 * id, and the relay goes on; a fault that escapes every handler exits 70 with a clear message,
 * for the supervisor to start a clean process.
 */
import { spawnSync } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import { PassThrough } from "node:stream";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.ts";
import { createApi } from "../../src/relay/api.ts";
import type { Work } from "../../src/relay/jobs/work.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { Registry } from "../../src/relay/registry.ts";

const KEY = "sk-defence-test-0123456789";

describe("the relay's last line of defence", () => {
  it("answers a request whose handler throws with 500, logs its id, and serves the next", async () => {
    const out = new PassThrough();
    let logged = "";
    out.on("data", (d: Buffer) => (logged += d.toString()));
    const work = {
      handle: () => Promise.reject(new TypeError("a bug of ours")),
    } as unknown as Work;
    const api = createApi({
      keys: new KeyRing({ [KEY]: "alice" }),
      registry: new Registry(),
      log: createLogger({ format: "json", level: "info", destination: out }),
      work,
    });
    const server = http.createServer(api).listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as { port: number };
    const headers = { authorization: `Bearer ${KEY}` };
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v1/jobs`, { headers });
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ error: { type: "server_error" } });
      const line = JSON.parse(logged.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>;
      expect(line).toMatchObject({ level: 50, msg: "relay request failed", path: "/v1/jobs" });
      expect(line.requestId).toMatch(/^req_[0-9a-f]{24}$/);
      expect(JSON.stringify(line.err)).toContain("a bug of ours");
      const next = await fetch(`http://127.0.0.1:${port}/v1/models`, { headers });
      expect(next.status).toBe(200);
    } finally {
      server.close();
    }
  });

  it("exits 70 with a clear message when a fault escapes every handler", () => {
    const signals = resolve(import.meta.dirname, "../../src/cli/signals.ts");
    const log = resolve(import.meta.dirname, "../../src/log.ts");
    const script = `
      const { exitOnFault } = await import(${JSON.stringify(signals)});
      const { createLogger } = await import(${JSON.stringify(log)});
      exitOnFault(createLogger({ format: "json" }));
      setTimeout(() => { throw new Error("state half changed"); }, 1);
      setTimeout(() => process.exit(0), 5000);
    `;
    const run = spawnSync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      { encoding: "utf8", cwd: resolve(import.meta.dirname, "../..") },
    );
    expect(run.status).toBe(70);
    expect(run.stdout).toMatch(/uncaught exception: state half changed; exiting \(status 70\)/);
  });
});
