import { describe, expect, it } from "vitest";
import { ControlMessageError, encodeControl, parseControl } from "../../src/protocol/index.ts";

const manifest = { schema_version: 1, agent: { name: "rig" }, hosts: [] };
const service = { name: "s", engine: "llamacpp", type: "llm", features: [], max_concurrent: 1 };

describe("control messages", () => {
  it("stamps the protocol version and reads it back", () => {
    const text = encodeControl({ type: "drain" });
    expect(JSON.parse(text)).toEqual({ type: "drain", v: 1 });
    expect(parseControl(text)).toEqual({ type: "drain", v: 1 });
  });

  it("accepts a hello with a manifest", () => {
    const msg = parseControl(
      JSON.stringify({ type: "hello", v: 1, provider: { name: "rig", version: "1" }, manifest }),
    );
    expect(msg.type).toBe("hello");
  });

  it("reads each service's and model's access, and refuses a setting it does not know", () => {
    const model = {
      id: "m",
      input_modalities: ["text"],
      output_modalities: ["text"],
      features: [],
      context_length: null,
    };
    const helloWith = (svc: Record<string, unknown>, m: Record<string, unknown>) =>
      JSON.stringify({
        type: "hello",
        v: 1,
        provider: { name: "rig", version: "1" },
        manifest: {
          ...manifest,
          hosts: [
            { id: "h", gpus: [], services: [{ ...service, ...svc, models: [{ ...model, ...m }] }] },
          ],
        },
      });
    const msg = parseControl(helloWith({ access: "club" }, { access: ["bob", "carol"] }));
    if (msg.type !== "hello") throw new Error("not a hello");
    const svc = msg.manifest.hosts[0]?.services[0];
    expect([svc?.access, svc?.models[0]?.access]).toEqual(["club", ["bob", "carol"]]);
    expect(() => parseControl(helloWith({ access: "public" }, {}))).toThrow(
      /access must be one of/,
    );
    expect(() => parseControl(helloWith({}, { access: [""] }))).toThrow(/access\[0\]/);
    expect(() =>
      parseControl(helloWith({}, { access: Array.from({ length: 300 }, (_, i) => `m${i}`) })),
    ).toThrow(/access/);
  });

  it.each([
    ["not JSON", "{", /not valid JSON/],
    ["an array", "[]", /object with a string type/],
    ["another version", JSON.stringify({ type: "drain", v: 2 }), /unsupported protocol version 2/],
    [
      "an unknown type",
      JSON.stringify({ type: "teleport", v: 1 }),
      /unknown control message type "teleport"/,
    ],
    [
      "a hello without a manifest",
      JSON.stringify({ type: "hello", v: 1, provider: { name: "r" } }),
      /hello\.manifest must be an object/,
    ],
    [
      "a model without an id",
      JSON.stringify({
        type: "hello",
        v: 1,
        provider: { name: "r" },
        manifest: {
          ...manifest,
          hosts: [{ id: "h", gpus: [], services: [{ ...service, models: [{}] }] }],
        },
      }),
      /hosts\[0\]\.services\[0\]\.models\[0\]\.id/,
    ],
    [
      "a heartbeat without seq",
      JSON.stringify({ type: "heartbeat", v: 1, services: {} }),
      /heartbeat\.seq must be an integer/,
    ],
    [
      "an oversize message",
      JSON.stringify({ type: "drain", v: 1, pad: "x".repeat(1024 * 1024) }),
      /too large/,
    ],
  ])("rejects %s, saying what is wrong", (_what, text, message) => {
    expect(() => parseControl(text)).toThrow(ControlMessageError);
    expect(() => parseControl(text)).toThrow(message);
  });
});
