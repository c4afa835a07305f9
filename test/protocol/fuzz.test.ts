/**
 * A structure-aware fuzzer for the control-message schema: valid `hello` and `heartbeat`
 * messages with one to three fields replaced by values of other shapes, or removed, for a fixed
 * number of seeded rounds. Each must be accepted (and then usable by the relay's code that reads
 * manifests) or refused with a `ControlMessageError` naming a field; never another exception.
 */
import { describe, expect, it } from "vitest";
import {
  ControlMessageError,
  manifestAccess,
  manifestCards,
  parseControl,
} from "../../src/protocol/index.ts";

/** mulberry32: a small seeded PRNG, so a failing round can be replayed. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const model = {
  id: "qwen3-8b",
  input_modalities: ["text"],
  output_modalities: ["text"],
  features: ["streaming"],
  context_length: 8192,
  access: ["bob"],
};
const hello = {
  type: "hello",
  v: 1,
  provider: { name: "rig", version: "1" },
  manifest: {
    schema_version: 1,
    agent: { name: "rig" },
    hosts: [
      {
        id: "h",
        gpus: [{ vendor: "nvidia", model: "RTX", vram_gb: 24, index: 0 }],
        services: [
          {
            name: "s",
            engine: "llamacpp",
            type: "llm",
            features: [],
            max_concurrent: 2,
            access: "club",
            models: [model],
          },
        ],
      },
    ],
  },
};
const heartbeat = {
  type: "heartbeat",
  v: 1,
  seq: 3,
  in_flight: 0,
  queued: 0,
  services: { s: { in_flight: 0, queued: 0, up: true } },
  gpus: [{ index: 0, vram_used_mb: 1, utilization_pct: 2, temperature_c: 3, power_w: 4 }],
  paused_models: { "qwen3-8b": "GPU busy" },
};

const ODD: unknown[] = [
  null,
  undefined,
  0,
  -1,
  1e308,
  Number.NaN,
  "",
  "x".repeat(5000),
  true,
  [],
  [null],
  {},
  { __proto__: { polluted: true } },
  [[[[]]]],
  "__proto__",
];

/** Every path to a value inside `v`. */
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (typeof v === "object" && v !== null)
    for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  return out;
}

function mutate(base: unknown, next: () => number): unknown {
  const copy = structuredClone(base) as Record<string, unknown>;
  const all = paths(copy).filter((p) => p.length > 0);
  for (let n = 1 + Math.floor(next() * 3); n > 0; n--) {
    const path = all[Math.floor(next() * all.length)] ?? [];
    let parent: Record<string | number, unknown> = copy;
    for (const key of path.slice(0, -1)) {
      const child = parent[key];
      if (typeof child !== "object" || child === null) break;
      parent = child as Record<string | number, unknown>;
    }
    const last = path.at(-1) ?? "";
    if (next() < 0.2) Reflect.deleteProperty(parent, last);
    else parent[last] = structuredClone(ODD[Math.floor(next() * ODD.length)]);
  }
  return copy;
}

describe("control-message fuzzing", () => {
  it.each([
    ["hello", hello],
    ["heartbeat", heartbeat],
  ])("%s: 3000 mutated messages are each accepted or refused by name", (_kind, base) => {
    const next = rng(20261203);
    let accepted = 0;
    for (let round = 0; round < 3000; round++) {
      const text = JSON.stringify(mutate(base, next));
      try {
        const msg = parseControl(text);
        accepted++;
        const manifest = "manifest" in msg ? msg.manifest : undefined;
        if (manifest) {
          manifestCards(manifest, 0);
          manifestAccess(manifest);
        }
      } catch (err) {
        if (!(err instanceof ControlMessageError))
          throw new Error(`round ${round}: ${String(err)} for ${text.slice(0, 300)}`);
      }
    }
    // The mutations reach both sides of the schema.
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(3000);
  });
});
