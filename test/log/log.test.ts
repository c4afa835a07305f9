/**
 * The logger both processes use: JSON for services, readable lines for a terminal (pino-pretty,
 * loaded only then), and keys redacted in either.
 */
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, logFlushMs, requestLines } from "../../src/log.ts";
import { expectRefusedAtStart } from "../e2e/harness.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const LOG = JSON.stringify(resolve(ROOT, "src/log.ts"));

/** Runs `body` in a Node process of its own with `log`, a JSON logger on its standard output. */
function child(body: string, env: Record<string, string> = {}) {
  const script = `
    const fs = await import("node:fs");
    const { createLogger } = await import(${LOG});
    // Counts the writes to standard output, told on standard error as the process exits.
    const writeSync = fs.default.writeSync;
    let writes = 0;
    fs.default.writeSync = (fd, ...rest) => { if (fd === 1) writes++; return writeSync(fd, ...rest); };
    process.on("exit", () => process.stderr.write("writes " + writes));
    const log = createLogger({ format: "json" });
    ${body}
  `;
  return {
    args: ["--import", "tsx", "--input-type=module", "-e", script],
    options: { cwd: ROOT, env: { ...process.env, ...env } },
  };
}

function collect(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      callback();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

describe("createLogger", () => {
  it("writes one readable line per entry for a terminal, keys redacted", () => {
    const out = collect();
    const log = createLogger({ format: "pretty", destination: out.stream });
    log.info({ apiKey: "sk-secret-0123456789", member: "alice" }, "hello %s", "world");
    const text = out.text();
    expect(text.trim().split("\n")).toHaveLength(1);
    expect(text).toMatch(/INFO.*hello world/);
    expect(text).toContain("alice");
    expect(text).toContain("[redacted]");
    expect(text).not.toContain("sk-secret");
  });

  it("writes JSON lines otherwise, keys redacted there too", () => {
    const out = collect();
    const log = createLogger({ format: "json", destination: out.stream });
    log.warn({ headers: { authorization: "Bearer sk-secret-0123456789" } }, "refused");
    const line = JSON.parse(out.text()) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 40, msg: "refused" });
    expect(line.headers).toEqual({ authorization: "[redacted]" });
  });
});

describe("the line per request", () => {
  it("says the method, path and status with the fields, and leaves the logger's redaction be", () => {
    const out = collect();
    const log = createLogger({ format: "json", destination: out.stream });
    const logRequest = requestLines(log);
    logRequest(
      { requestId: "req_1", model: "m", endpoint: "/v1/chat/completions", status: 200, ms: 3 },
      "POST",
    );
    log.warn({ apiKey: "sk-secret-0123456789" }, "after");
    const [line, after] = out
      .text()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(line).toMatchObject({
      level: 30,
      msg: "POST /v1/chat/completions 200",
      requestId: "req_1",
      model: "m",
      status: 200,
      ms: 3,
    });
    expect(after).toMatchObject({ msg: "after", apiKey: "[redacted]" });
  });
});

describe("standard output in batches", () => {
  it("writes many lines of one turn in a few writes", () => {
    const { args, options } = child(
      `for (let i = 0; i < 200; i++) log.info({ i }, "request done");`,
    );
    const run = spawnSync(process.execPath, args, { ...options, encoding: "utf8" });
    expect(run.status).toBe(0);
    expect(run.stdout.trim().split("\n")).toHaveLength(200);
    const writes = Number(/writes (\d+)/.exec(run.stderr)?.[1]);
    // About 100 bytes a line, 4 KiB a write: 200 lines in a handful of writes, not 200.
    expect(writes).toBeGreaterThan(0);
    expect(writes).toBeLessThan(20);
  });

  it("writes each line at once with CLUB_LOG_FLUSH_MS=0", () => {
    const { args, options } = child(
      `for (let i = 0; i < 50; i++) log.info({ i }, "request done");`,
      {
        CLUB_LOG_FLUSH_MS: "0",
      },
    );
    const run = spawnSync(process.execPath, args, { ...options, encoding: "utf8" });
    expect(run.status).toBe(0);
    expect(run.stderr).toContain("writes 50");
  });

  it("writes a lone line while the process runs on, nothing after it", async () => {
    const { args, options } = child(`log.info("ready"); setInterval(() => {}, 1000);`);
    const proc = spawn(process.execPath, args, options);
    try {
      let out = "";
      proc.stdout.setEncoding("utf8");
      while (!out.includes('"msg":"ready"')) {
        const [chunk] = (await once(proc.stdout, "data")) as [string];
        out += chunk;
      }
      expect(proc.exitCode).toBeNull();
    } finally {
      proc.kill("SIGKILL");
    }
  });

  it("writes what waits when the process exits, by process.exit or by a throw", () => {
    for (const end of [`process.exit(3)`, `throw new Error("boom")`]) {
      const { args, options } = child(`log.info("last words"); ${end};`);
      const run = spawnSync(process.execPath, args, { ...options, encoding: "utf8" });
      expect(run.status).not.toBe(0);
      expect(run.stdout).toContain('"msg":"last words"');
    }
  });

  it("stops the relay and the daemon at start on a bad CLUB_LOG_FLUSH_MS, saying why, no stack", () => {
    expectRefusedAtStart(
      { CLUB_LOG_FLUSH_MS: "soon" },
      'CLUB_LOG_FLUSH_MS must be a whole number of milliseconds from 0 to 10000, not "soon"',
    );
  });

  it("takes CLUB_LOG_FLUSH_MS from 0 to 10000 ms, and says what is wrong otherwise", () => {
    expect(logFlushMs(undefined)).toBe(100);
    expect(logFlushMs("")).toBe(100);
    expect(logFlushMs("0")).toBe(0);
    expect(logFlushMs("250")).toBe(250);
    for (const bad of ["-1", "1.5", "ten", "10001"])
      expect(() => logFlushMs(bad)).toThrow(/CLUB_LOG_FLUSH_MS must be a whole number/);
  });
});
