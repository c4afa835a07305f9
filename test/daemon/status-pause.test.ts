/** `POST /pause` and `POST /resume` on the status server, over a real loopback socket. */
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PauseState, manualReason } from "../../src/daemon/pause.ts";
import { postStatus, startStatusServer } from "../../src/daemon/status-server.ts";
import { silentLogger } from "../../src/log.ts";

const state = new PauseState();
let server: http.Server;
let port = 0;

beforeAll(async () => {
  const started = await startStatusServer(
    {
      ready: () => true,
      status: () => ({ pause: state.view() }),
      pausing: {
        pause: (reason) => {
          state.pause(manualReason(reason));
          return state.view();
        },
        resume: () => {
          state.resume();
          return state.view();
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

function raw(
  method: string,
  path: string,
  headers: Record<string, string>,
  body = "",
): Promise<{ status: number; body: string; allow: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: text, allow: res.headers.allow }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("status server pause", () => {
  it("pauses with the owner's reason and resumes, answering the state", async () => {
    expect(await postStatus(port, "/pause", { reason: "gaming tonight" })).toEqual({
      status: 200,
      body: {
        paused: "paused by its owner: gaming tonight",
        manual: "paused by its owner: gaming tonight",
        outside_schedule: false,
        paused_models: {},
      },
    });
    expect(state.rig()).toBe("paused by its owner: gaming tonight");
    expect(await postStatus(port, "/resume", {})).toMatchObject({
      status: 200,
      body: { paused: null, manual: null },
    });
    expect(await postStatus(port, "/pause", {})).toMatchObject({
      body: { paused: "paused by its owner" },
    });
    await postStatus(port, "/resume", {});
  });

  it("takes only POST on /pause and /resume", async () => {
    const host = `127.0.0.1:${port}`;
    for (const method of ["GET", "PUT", "DELETE"]) {
      const res = await raw(method, "/pause", { host });
      expect(res.status, method).toBe(405);
      expect(res.allow).toBe("POST");
      expect(JSON.parse(res.body)).toMatchObject({
        error: { message: `/pause takes POST, not ${method}` },
      });
    }
    expect(
      (await raw("POST", "/status", { host, "content-type": "application/json" })).status,
    ).toBe(405);
    expect(state.rig()).toBe(undefined);
  });

  it("stays up when a client hangs up in the middle of a body", async () => {
    const arrived = new Promise<http.IncomingMessage>((resolve) => server.once("request", resolve));
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => undefined);
    socket.write(
      `POST /pause HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
        'Content-Length: 1000\r\n\r\n{"reason":',
    );
    // Hang up once the server reads the body (its handler runs before this listener).
    const req = await arrived;
    const closed = new Promise((resolve) => req.once("close", resolve));
    socket.destroy();
    await closed;
    expect(await postStatus(port, "/resume", {})).toMatchObject({ status: 200 });
    expect(state.rig()).toBe(undefined);
  });

  it("refuses a pause from a web page, a form post, a foreign Host or a bad body", async () => {
    const host = `127.0.0.1:${port}`;
    const json = { "content-type": "application/json" };
    const tries = [
      raw("POST", "/pause", { host, ...json, origin: "https://evil.example" }, "{}"),
      raw("POST", "/pause", { host, ...json, "sec-fetch-site": "cross-site" }, "{}"),
      raw("POST", "/pause", { host, "content-type": "text/plain" }, '{"reason":"x"}'),
      raw("POST", "/pause", { host: `evil.example:${port}`, ...json }, "{}"),
      raw("POST", "/pause", { host, ...json }, "[1]"),
      raw("POST", "/pause", { host, ...json }, '{"reason": 5}'),
      raw("POST", "/pause", { host, ...json }, "x".repeat(20_000)),
    ];
    expect((await Promise.all(tries)).map((r) => r.status)).toEqual([
      403, 403, 415, 421, 400, 400, 400,
    ]);
    expect(state.rig()).toBe(undefined);
  });
});
