/**
 * A real llama-server that is still loading its model is reported as loading, not missing,
 * and is advertised once it is ready.
 */
import { afterEach, describe, expect, it } from "vitest";
import llamacpp from "../../adapters/llamacpp.ts";
import { probeUrl } from "../../src/discovery/probe.ts";
import { startLlama, type RealLlama } from "./llama.ts";

let llama: RealLlama | undefined;

afterEach(async () => {
  await llama?.stop();
});

describe("real llama-server while it loads", () => {
  it("is probed as loading, then as ready", async () => {
    // Caught while /health says 503 "Loading model" (about a second on the tiny model).
    llama = await startLlama([], 503);
    const during = await probeUrl({ url: llama.url });
    expect(during.result.status).toBe("loading");
    expect(during.adapter?.name).toBe("llamacpp");
    await expect
      .poll(async () => (await probeUrl({ url: llama!.url })).result.status, {
        timeout: 30_000,
        interval: 100,
      })
      .toBe("ready");
    const info = await llamacpp().describe({ url: llama.url }, AbortSignal.timeout(5000));
    expect(info.models.map((m) => m.id)).toEqual(["tiny-qwen2-chat"]);
    expect(info.label).toBe("llama.cpp b1-80fb11a");
  });
});
