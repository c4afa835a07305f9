/**
 * The fake llama-server against the real one: same requests, and the answers must agree in
 * status, content type and JSON shape (key paths and value types; values may differ).
 * Where they differ, the real server is right.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { startLlama, type RealLlama } from "./llama.ts";

let real: RealLlama;
let fake: FakeLlamaServer;

beforeAll(async () => {
  real = await startLlama();
  fake = new FakeLlamaServer();
  await fake.start();
}, 120_000);

afterAll(async () => {
  await real.stop();
  await fake.stop();
});

/** Every key path of a JSON value with the type found there; arrays contribute their first item. */
function shape(value: unknown, path = "$", out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(value)) {
    out.set(path, "array");
    if (value.length > 0) shape(value[0], `${path}[]`, out);
  } else if (value !== null && typeof value === "object") {
    out.set(path, "object");
    for (const [k, v] of Object.entries(value)) shape(v, `${path}.${k}`, out);
  } else out.set(path, value === null ? "null" : typeof value);
  return out;
}

interface Answer {
  status: number;
  type: string;
  server: string | null;
  shapes: Map<string, string>[];
}

async function ask(base: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(base + path, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  const type = (res.headers.get("content-type") ?? "").split(";")[0] ?? "";
  const events =
    type === "text/event-stream"
      ? text
          .split("\n")
          .filter((l) => l.startsWith("data: ") && l !== "data: [DONE]")
          .map((l) => JSON.parse(l.slice(6)) as unknown)
      : [JSON.parse(text) as unknown];
  return {
    status: res.status,
    type,
    server: res.headers.get("server"),
    shapes: events.map((e) => shape(e)),
  };
}

/** Key paths whose type differs or that only one side has; `ignore` lists paths left out on purpose. */
function differences(
  a: Map<string, string>,
  b: Map<string, string>,
  ignore: RegExp[] = [],
): string[] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys]
    .filter((k) => a.get(k) !== b.get(k) && !ignore.some((r) => r.test(k)))
    .map((k) => `${k}: real ${a.get(k) ?? "absent"}, fake ${b.get(k) ?? "absent"}`);
}

const chat = {
  messages: [{ role: "user", content: "Say hello" }],
  max_tokens: 3,
  ignore_eos: true,
};

// Sampling parameters and generation settings the fake trims: they tell us nothing about capabilities.
const PROPS_TRIMMED = [/^\$\.default_generation_settings\.params\./, /^\$\.ui_settings\./];

describe.each([
  ["GET /health", "/health", undefined, []],
  ["GET /v1/models", "/v1/models", undefined, []],
  ["GET /props", "/props", undefined, PROPS_TRIMMED],
  ["GET /slots (idle)", "/slots", undefined, [/^\$\[\]\.params\./]],
  ["chat", "/v1/chat/completions", chat, []],
  ["streamed chat", "/v1/chat/completions", { ...chat, stream: true }, []],
  [
    "streamed chat with usage",
    "/v1/chat/completions",
    { ...chat, stream: true, stream_options: { include_usage: true } },
    [],
  ],
  ["completions", "/v1/completions", { prompt: "Hello", max_tokens: 3, ignore_eos: true }, []],
  [
    "streamed completions",
    "/v1/completions",
    { prompt: "Hello", max_tokens: 3, ignore_eos: true, stream: true },
    [],
  ],
  ["malformed JSON", "/v1/chat/completions", "{not json", []],
  ["unknown path", "/v1/nothing-here", undefined, []],
] as [string, string, unknown, RegExp[]][])(
  "fake matches real llama-server: %s",
  (_name, path, body, ignore) => {
    it("in status, content type, Server header and JSON shape", async () => {
      const [r, f] = await Promise.all([ask(real.url, path, body), ask(fake.url, path, body)]);
      expect({ status: f.status, type: f.type, server: f.server, events: f.shapes.length }).toEqual(
        {
          status: r.status,
          type: r.type,
          server: r.server,
          events: r.shapes.length,
        },
      );
      r.shapes.forEach((rs, i) => {
        expect(
          differences(rs, f.shapes[i] ?? new Map<string, string>(), ignore),
          `event ${i}`,
        ).toEqual([]);
      });
    });
  },
);
