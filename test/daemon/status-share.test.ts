/** `POST /share` and `POST /unshare` on the status server, over a real loopback socket. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postStatus, startStatusServer } from "../../src/daemon/status-server.ts";
import { silentLogger } from "../../src/log.ts";
import type { Access } from "../../src/protocol/index.ts";

const calls: [string, Access][] = [];
let server: http.Server;
let port = 0;

beforeAll(async () => {
  const started = await startStatusServer(
    {
      ready: () => true,
      status: () => ({}),
      sharingControl: {
        set: (name, access) => {
          if (name !== "qwen3-8b") return undefined;
          calls.push([name, access]);
          return { name, access };
        },
      },
    },
    0,
    silentLogger,
  );
  if (!started) throw new Error("status server did not start");
  server = started;
  port = (server.address() as AddressInfo).port;
});

afterAll(() => server.close());

describe("status server sharing", () => {
  it("shares with the club by default, with members named as a list or in words, and unshares", async () => {
    expect(await postStatus(port, "/share", { model: "qwen3-8b" })).toEqual({
      status: 200,
      body: { name: "qwen3-8b", access: "club" },
    });
    expect((await postStatus(port, "/share", { model: "qwen3-8b", access: ["bob"] }))?.status).toBe(
      200,
    );
    expect(
      (await postStatus(port, "/share", { model: "qwen3-8b", access: "bob,carol" }))?.status,
    ).toBe(200);
    expect(
      (await postStatus(port, "/unshare", { model: "qwen3-8b", access: "club" }))?.status,
    ).toBe(200);
    expect(calls).toEqual([
      ["qwen3-8b", "club"],
      ["qwen3-8b", ["bob"]],
      ["qwen3-8b", ["bob", "carol"]],
      ["qwen3-8b", "private"],
    ]);
  });

  it("answers bad bodies 400, unknown names 404 and other methods 405, changing nothing", async () => {
    calls.length = 0;
    const bad = [
      {},
      { model: 7 },
      { model: "" },
      { model: "x".repeat(257) },
      { model: "qwen3-8b", access: 3 },
      { model: "qwen3-8b", access: [1, 2] },
      { model: "qwen3-8b", access: "bob carol" },
      { model: "qwen3-8b", access: Array.from({ length: 300 }, (_, i) => `m${i}`) },
    ];
    for (const body of bad) {
      const res = await postStatus(port, "/share", body);
      expect(res?.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res?.body).toMatchObject({ error: { type: "invalid_request_error" } });
    }
    const unknown = await postStatus(port, "/share", { model: "nope" });
    expect(unknown).toMatchObject({ status: 404, body: { error: { type: "not_found_error" } } });
    const get = await fetch(`http://127.0.0.1:${port}/share`);
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    const notJson = await fetch(`http://127.0.0.1:${port}/share`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: '{"model":"qwen3-8b"}',
    });
    expect(notJson.status).toBe(415);
    expect(calls).toEqual([]);
  });
});
