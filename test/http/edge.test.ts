/**
 * The HTTP edge on a real loopback server: capped body reading, the JSON-object parser, and
 * every thrown value answered in the club's envelope by `answerError`.
 */
import http from "node:http";
import { once } from "node:events";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  HttpError,
  answerError,
  parseJsonObject,
  readBody,
  readCapped,
  sendJson,
  unknownEndpoint,
} from "../../src/http/index.ts";

const LIMIT = 1024;
let server: http.Server;
let base: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const run = async (): Promise<void> => {
      if (req.url === "/fault") throw new Error("boom");
      if (req.url === "/limited")
        throw new HttpError(429, "rate_limit_error", "slow down", {
          code: "too_fast",
          expose: true,
          headers: { "retry-after": "3" },
        });
      if (req.url !== "/echo") throw unknownEndpoint(req.method ?? "GET", req.url ?? "", new Set());
      sendJson(res, 200, parseJsonObject(await readBody(req, LIMIT)));
    };
    run().catch((err: unknown) => answerError(res, err, "the test server failed"));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
});

async function call(path: string, body?: string) {
  const res = await fetch(base + path, { method: "POST", ...(body === undefined ? {} : { body }) });
  return { status: res.status, headers: res.headers, json: await res.json() };
}

describe("the HTTP edge", () => {
  it("reads a JSON object up to the limit, and refuses one past it with 413", async () => {
    expect(await call("/echo", JSON.stringify({ a: 1 }))).toMatchObject({
      status: 200,
      json: { a: 1 },
    });
    const big = JSON.stringify({ a: "x".repeat(LIMIT) });
    expect(await call("/echo", big)).toMatchObject({
      status: 413,
      json: {
        error: { type: "request_too_large", message: `request body is larger than ${LIMIT} bytes` },
      },
    });
  });

  it("refuses a body that is not a JSON object with 400, saying why", async () => {
    const notJson = await call("/echo", "{");
    expect(notJson.status).toBe(400);
    expect(notJson.json).toMatchObject({ error: { type: "invalid_request_error" } });
    expect(JSON.stringify(notJson.json)).toMatch(/not valid JSON/);
    expect((await call("/echo", "[1]")).json).toEqual({
      error: { type: "invalid_request_error", message: "request body must be a JSON object" },
    });
  });

  it("answers an HttpError with its status, headers and exposed code; anything else 500", async () => {
    const limited = await call("/limited");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("3");
    expect(limited.json).toEqual({
      error: { message: "slow down", type: "rate_limit_error", code: "too_fast" },
    });
    expect(await call("/fault")).toEqual(
      expect.objectContaining({
        status: 500,
        json: { error: { message: "the test server failed", type: "server_error" } },
      }),
    );
    expect(await call("/nowhere")).toMatchObject({
      status: 404,
      json: { error: { type: "not_found_error", message: "unknown endpoint POST /nowhere" } },
    });
  });

  it("names 405 for a known path and another method", () => {
    const err = unknownEndpoint("GET", "/v1/chat/completions", new Set(["/v1/chat/completions"]));
    expect(err).toMatchObject({ status: 405, code: "invalid_request_error" });
    expect(err.envelope).toEqual({
      error: {
        type: "invalid_request_error",
        message: "GET is not allowed on /v1/chat/completions",
      },
    });
  });

  it("reads a reply whole up to its cap, and gives undefined past it", async () => {
    expect((await readCapped(Readable.from([Buffer.from("abc")]), 3))?.toString()).toBe("abc");
    const long = Readable.from([Buffer.from("abc"), Buffer.from("d")]);
    expect(await readCapped(long, 3)).toBeUndefined();
    expect(long.destroyed).toBe(true);
  });

  it("rejects a reply that fails or closes before its end, and reads one that already ended", async () => {
    const failing = new Readable({ read() {} });
    const read = readCapped(failing, 100);
    failing.push("ab");
    failing.destroy(new Error("engine reset"));
    await expect(read).rejects.toThrow("engine reset");
    const cut = new Readable({ read() {} });
    const early = readCapped(cut, 100);
    cut.push("ab");
    cut.destroy();
    await expect(early).rejects.toThrow(/premature close/i);
    const empty = Readable.from([]);
    empty.resume();
    await new Promise((r) => empty.once("end", r));
    expect((await readCapped(empty, 100))?.length).toBe(0);
  });
});
