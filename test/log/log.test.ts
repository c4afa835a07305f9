/**
 * The logger both processes use: JSON for services, readable lines for a terminal (pino-pretty,
 * loaded only then), and keys redacted in either.
 */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.ts";

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
