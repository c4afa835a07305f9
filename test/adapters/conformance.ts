/**
 * The one suite every adapter runs against its fake engine, over real loopback sockets.
 * Engine-specific cases live beside it in `<adapter>.test.ts`.
 */
import { once } from "node:events";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Adapter, DiscoveredModel, Upstream } from "../../adapters/adapter.ts";
import { closeUpstreamPools } from "../../adapters/openai-style.ts";
import { probeUrl } from "../../src/discovery/probe.ts";
import type { FakeServer } from "../fakes/fake-server.ts";
import { chatCall, freePort, readAll, readUntil, sseContent } from "../fakes/util.ts";

/** What the suite asks of an adapter's fake; each option must be honoured. */
export interface ConformanceFakeOptions {
  loading?: boolean;
  tokens?: string[];
  apiKey?: string;
}

export interface ConformanceOptions {
  adapter: () => Adapter;
  /** Creates (not starts) the adapter's fake engine. */
  fake: (options: ConformanceFakeOptions) => FakeServer;
}

const TOKENS = [" alpha", " beta", " gamma", " delta", " epsilon", " zeta"];

const signal = (): AbortSignal => AbortSignal.timeout(5_000);

export function describeAdapterConformance(name: string, options: ConformanceOptions): void {
  describe(`${name}: adapter conformance`, () => {
    const adapter = options.adapter();
    const running: FakeServer[] = [];

    async function start(
      opts: ConformanceFakeOptions = {},
    ): Promise<{ fake: FakeServer; upstream: Upstream }> {
      const fake = options.fake({ tokens: TOKENS, ...opts });
      running.push(fake);
      const url = await fake.start();
      return { fake, upstream: opts.apiKey ? { url, apiKey: opts.apiKey } : { url } };
    }

    async function firstModel(upstream: Upstream): Promise<DiscoveredModel> {
      const info = await adapter.describe(upstream, signal());
      const model = info.models[0];
      if (!model) throw new Error("describe listed no model");
      return model;
    }

    afterEach(async () => {
      await Promise.all(running.splice(0).map((f) => f.stop()));
    });
    afterAll(() => closeUpstreamPools());

    it("probes a ready engine as ready", async () => {
      const { upstream } = await start();
      const result = await adapter.probe(upstream, signal());
      expect(result.status).toBe("ready");
      expect(result.reason).not.toBe("");
    });

    it("probes a loading engine as loading, then ready once loaded", async () => {
      const { fake, upstream } = await start({ loading: true });
      expect((await adapter.probe(upstream, signal())).status).toBe("loading");
      fake.setLoading(false);
      expect((await adapter.probe(upstream, signal())).status).toBe("ready");
    });

    it("rejects a probe of a dead port with upstream_unreachable; probeUrl explains it", async () => {
      const upstream = { url: `http://127.0.0.1:${await freePort()}` };
      await expect(adapter.probe(upstream, signal())).rejects.toMatchObject({
        code: "upstream_unreachable",
      });
      const outcome = await probeUrl(upstream, { engine: adapter.name });
      expect(outcome.adapter).toBeUndefined();
      expect(outcome.result).toEqual({
        status: "no",
        reason: `nothing listening at ${upstream.url} (ECONNREFUSED)`,
      });
    });

    it("describes at least one llm model with streaming", async () => {
      const { upstream } = await start();
      const info = await adapter.describe(upstream, signal());
      expect(info.models.length).toBeGreaterThan(0);
      for (const model of info.models) {
        expect(model.type).toBe("llm");
        expect(model.servedId).not.toBe("");
        expect(model.id).not.toBe("");
        expect(model.features).toContain("streaming");
        expect(model.outputModalities).toEqual(["text"]);
      }
    });

    it("executes a non-streaming chat and forwards only the given headers", async () => {
      const { fake, upstream } = await start();
      const model = await firstModel(upstream);
      const messages = [{ role: "user", content: "Say hello" }];
      const reply = await adapter.execute(chatCall(upstream, model, { messages, max_tokens: 3 }));
      expect(reply.status).toBe(200);
      expect(reply.headers["content-type"]).toMatch(/^application\/json/);
      expect(
        Object.keys(reply.headers).every((h) =>
          ["content-type", "content-length", "cache-control", "x-request-id"].includes(h),
        ),
      ).toBe(true);
      const body = JSON.parse(await readAll(reply.body));
      expect(body.choices[0].message.content).toBe(TOKENS.slice(0, 3).join(""));
      expect(body.choices[0].finish_reason).toBe("length");
      const seen = fake.requests.at(-1)!;
      expect(seen.body).toEqual({ model: model.servedId, messages, max_tokens: 3 });
      expect(seen.headers.accept).toBe("application/json");
      expect(seen.headers.authorization).toBeUndefined();
    });

    it("streams: the first chunk arrives before the engine has finished", async () => {
      const { fake, upstream } = await start();
      const model = await firstModel(upstream);
      fake.pauseGenerations();
      const reply = await adapter.execute(
        chatCall(upstream, model, { messages: [{ role: "user", content: "hi" }], stream: true }),
      );
      expect(reply.status).toBe(200);
      expect(reply.headers["content-type"]).toMatch(/^text\/event-stream/);
      const first = await readUntil(reply.body, "\n\n");
      expect(first).toContain('"role":"assistant"');
      expect(fake.completed).toBe(0);
      fake.resumeGenerations();
      const text = first + (await readAll(reply.body));
      expect(sseContent(text)).toBe(TOKENS.join(""));
      expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
      expect(fake.completed).toBe(1);
    });

    it("closes the upstream connection when the call is aborted mid-stream", async () => {
      const { fake, upstream } = await start();
      const model = await firstModel(upstream);
      const controller = new AbortController();
      fake.pauseGenerations();
      const call = chatCall(
        upstream,
        model,
        { messages: [{ role: "user", content: "hi" }], stream: true },
        controller.signal,
      );
      const reply = await adapter.execute(call);
      await readUntil(reply.body, "\n\n");
      const closed = once(fake, "client-closed");
      controller.abort();
      await closed;
      expect(fake.closedEarly).toBe(1);
      expect(fake.inFlight).toBe(0);
      expect(fake.completed).toBe(0);
      await expect(readAll(reply.body)).rejects.toThrow();
    });

    it("passes an engine error status and body through", async () => {
      const { upstream } = await start();
      const model = await firstModel(upstream);
      const reply = await adapter.execute(chatCall(upstream, model, { max_tokens: 2 }));
      expect(reply.status).toBe(400);
      expect(JSON.parse(await readAll(reply.body))).toHaveProperty("error");
    });

    it("rejects with upstream_unreachable when the engine dies before answering", async () => {
      const { fake, upstream } = await start();
      const model = await firstModel(upstream);
      fake.pauseGenerations();
      const arrived = once(fake, "request");
      const pending = adapter.execute(
        chatCall(upstream, model, { messages: [{ role: "user", content: "hi" }] }),
      );
      await arrived;
      fake.kill();
      await expect(pending).rejects.toMatchObject({
        name: "UpstreamError",
        code: "upstream_unreachable",
      });
      await expect(pending).rejects.toThrow(upstream.url);
    });

    it("rejects with a message naming the URL when nothing listens", async () => {
      const { upstream } = await start();
      const model = await firstModel(upstream);
      const dead = { url: `http://127.0.0.1:${await freePort()}` };
      const pending = adapter.execute(chatCall(dead, model, { messages: [] }));
      await expect(pending).rejects.toMatchObject({ code: "upstream_unreachable" });
      await expect(pending).rejects.toThrow(`at ${dead.url} (ECONNREFUSED)`);
    });

    it("needs the engine's key: refused without it, sent as Bearer with it", async () => {
      const { fake, upstream } = await start({ apiKey: "sk-conformance" });
      const anonymous = await adapter.probe({ url: upstream.url }, signal());
      expect(anonymous.status).toBe("no");
      expect(anonymous.reason).toMatch(/apiKey/);
      expect((await adapter.probe(upstream, signal())).status).toBe("ready");
      const model = await firstModel(upstream);
      const reply = await adapter.execute(
        chatCall(upstream, model, { messages: [{ role: "user", content: "hi" }] }),
      );
      expect(reply.status).toBe(200);
      await readAll(reply.body);
      expect(fake.requests.at(-1)!.headers.authorization).toBe("Bearer sk-conformance");
    });
  });
}
