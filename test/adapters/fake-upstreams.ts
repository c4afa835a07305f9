/** Starting fake engines for adapter tests, and stopping them (and the pools) afterwards. */
import { afterAll, afterEach } from "vitest";
import type { Upstream } from "../../adapters/adapter.ts";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import type { FakeServer } from "../fakes/fake-server.ts";

/** A fresh probe or describe signal: generous, since nothing here should ever wait. */
export const signal = (): AbortSignal => AbortSignal.timeout(5_000);

/**
 * Registers cleanup hooks in the calling `describe` and returns a starter: it starts a fake and
 * resolves to its upstream, with `apiKey` when given.
 * @example const start = fakeUpstreams(); const upstream = await start(new FakeVllm());
 */
export function fakeUpstreams(): (fake: FakeServer, apiKey?: string) => Promise<Upstream> {
  const running: FakeServer[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((f) => f.stop()));
  });
  afterAll(() => closeUpstreamPools());
  return async (fake, apiKey) => {
    running.push(fake);
    const url = await fake.start();
    return apiKey === undefined ? { url } : { url, apiKey };
  };
}
