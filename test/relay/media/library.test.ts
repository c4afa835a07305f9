/**
 * The media library's own bounds, on an in-process relay with a `MediaRig`: age pruning skips
 * pinned items, a SECRET URL's bytes go at their expiry unfetched, and an image answer past
 * `maxImageAnswerBytes` is 502 with nothing stored.
 */
import { mkdtempSync, readdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Relay } from "../../../src/relay/server.ts";
import { DEFAULT_MEDIA_LIMITS, type MediaLimits } from "../../../src/relay/media/types.ts";
import { call, startRelay, startRig } from "../jobs/helpers.ts";
import type { MediaRig } from "../jobs/media-rig.ts";

let relay: Relay | undefined;
let rig: MediaRig | undefined;
let dir: string | undefined;

afterEach(async () => {
  rig?.stop();
  await relay?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  relay = rig = dir = undefined;
});

interface Made {
  data: { url?: string; id?: string }[];
}

async function setUp(limits: Partial<MediaLimits> | undefined): Promise<Relay> {
  dir = mkdtempSync(join(tmpdir(), "club-media-lib-"));
  relay = await startRelay({ dataDir: dir, ...(limits ? { mediaLimits: limits } : {}) });
  rig = await startRig(relay, { image: Buffer.alloc(2000, 9) });
  return relay;
}

describe("media library bounds", () => {
  it("has the documented defaults", () => {
    expect(DEFAULT_MEDIA_LIMITS).toMatchObject({
      maxAgeMs: 30 * 86_400_000,
      maxBytesPerMember: 1024 ** 3,
      secretTtlMs: 300_000,
      maxImageAnswerBytes: 64 * 1024 ** 2,
    });
  });

  it("age pruning removes old unpinned items at start, and keeps pinned ones", async () => {
    const r = await setUp(undefined);
    const a = (
      await call<Made>(r, "POST", "/v1/images/generations", { model: "image-1", prompt: "a" })
    ).body.data[0];
    const b = (
      await call<Made>(r, "POST", "/v1/images/generations", { model: "image-1", prompt: "b" })
    ).body.data[0];
    expect((await call(r, "PATCH", `/v1/files/${b?.id ?? ""}`, { pinned: true })).status).toBe(200);
    rig?.stop();
    await r.close();
    // Started again with an age limit both items are past: the unpinned one goes.
    relay = await startRelay({ dataDir: dir ?? "", port: r.port, mediaLimits: { maxAgeMs: 1 } });
    await expect.poll(() => readdirSync(join(dir ?? "", "media")).sort()).toEqual([b?.id]);
    expect((await fetch(a?.url ?? "")).status).toBe(404);
    expect((await fetch(b?.url ?? "")).status).toBe(200);
  });

  it("a SECRET URL not fetched before its expiry is gone, bytes and all", async () => {
    const r = await setUp({ secretTtlMs: 50 });
    const made = await call<Made>(r, "POST", "/v1/images/generations", {
      model: "image-1",
      prompt: "x",
      visibility: "SECRET",
    });
    expect(made.status).toBe(200);
    await expect.poll(() => readdirSync(join(dir ?? "", "media")).length).toBe(0);
    expect((await fetch(made.body.data[0]?.url ?? "")).status).toBe(404);
  });

  it("an image answer past maxImageAnswerBytes is 502, and nothing is stored", async () => {
    const r = await setUp({ maxImageAnswerBytes: 1000 });
    const made = await call(r, "POST", "/v1/images/generations", { model: "image-1", prompt: "x" });
    expect(made.status).toBe(502);
    expect(made.body.error.message).toContain("--media-max-image-answer");
    expect(readdirSync(join(dir ?? "", "media"))).toEqual([]);
  });
});
