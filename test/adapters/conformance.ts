/**
 * The one suite every adapter runs against its fake engine, over real loopback sockets.
 * Engine-specific cases live beside it in `<adapter>.test.ts`. Chat engines run it as is;
 * other engines pass the calls to make (`calls`) and what their models are (`models`).
 */
import { once } from "node:events";
import type { Readable } from "node:stream";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type {
  Adapter,
  DiscoveredModel,
  EngineCall,
  EngineReply,
  Upstream,
} from "../../adapters/adapter.ts";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { probeUrl } from "../../src/discovery/probe.ts";
import { readBytes } from "../fakes/audio-calls.ts";
import type { FakeServer } from "../fakes/fake-server.ts";
import { freePort } from "../fakes/util.ts";
import { CHAT_CALLS, TOKENS, llmModel } from "./chat-calls.ts";

/** What the suite asks of an adapter's fake; each option must be honoured. */
export interface ConformanceFakeOptions {
  loading?: boolean;
  tokens?: string[];
  apiKey?: string;
}

/** Builds one call to `model` at `upstream`. */
export type CallBuilder = (
  upstream: Upstream,
  model: DiscoveredModel,
  signal?: AbortSignal,
) => EngineCall;

/** The calls the suite makes, and what their answers must hold. */
export interface ConformanceCalls {
  /** A call answered whole; `check` gets the 200 reply and its body. */
  execute: {
    call: CallBuilder;
    check(reply: EngineReply, body: Buffer, fake: FakeServer, model: DiscoveredModel): void;
  };
  /**
   * A streamed call: `first` reads (and checks) its first piece without ending the body,
   * `check` gets the whole. Absent when the engine does not stream: the abort case then
   * aborts while the engine works on a call from `execute`.
   */
  stream?: {
    call: CallBuilder;
    contentType: RegExp;
    first(body: Readable): Promise<Buffer>;
    check(all: Buffer): void;
  };
  /** A call the engine refuses; `check` gets the status and body passed through. */
  error: { call: CallBuilder; check(status: number, body: string): void };
}

export interface ConformanceOptions {
  adapter: () => Adapter;
  /** Creates (not starts) the adapter's fake engine. */
  fake: (options: ConformanceFakeOptions) => FakeServer;
  /** Asserts what each described model is; default an `llm` with streaming text out. */
  models?: (model: DiscoveredModel) => void;
  /** The model the calls use; default the first described. */
  pick?: (models: DiscoveredModel[]) => DiscoveredModel | undefined;
  /** Default: chat completions. */
  calls?: ConformanceCalls;
  /** False when the engine shows no loading state over HTTP (say why where it is set). */
  loading?: boolean;
  /** False when the engine takes no API key. */
  apiKey?: boolean;
  /**
   * False when the engine has no way to be told a call was given up (say why where it is set):
   * the abort case then checks only that the call rejects.
   */
  cancel?: boolean;
}

const signal = (): AbortSignal => AbortSignal.timeout(5_000);

/** Registers the suite for one adapter. */
export function describeAdapterConformance(name: string, options: ConformanceOptions): void {
  describe(`${name}: adapter conformance`, () => {
    const adapter = options.adapter();
    const calls = options.calls ?? CHAT_CALLS;
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
      const model = (options.pick ?? ((m) => m[0]))(info.models);
      if (!model) throw new Error("describe listed no model to call");
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

    it.skipIf(options.loading === false)(
      "probes a loading engine as loading, then ready once loaded",
      async () => {
        const { fake, upstream } = await start({ loading: true });
        expect((await adapter.probe(upstream, signal())).status).toBe("loading");
        fake.setLoading(false);
        expect((await adapter.probe(upstream, signal())).status).toBe("ready");
      },
    );

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

    it("describes its models in the club's terms", async () => {
      const { upstream } = await start();
      const info = await adapter.describe(upstream, signal());
      expect(info.models.length).toBeGreaterThan(0);
      for (const model of info.models) {
        expect(model.servedId).not.toBe("");
        expect(model.id).not.toBe("");
        (options.models ?? llmModel)(model);
      }
    });

    it("executes a call and forwards only the given headers", async () => {
      const { fake, upstream } = await start();
      const model = await firstModel(upstream);
      const reply = await adapter.execute(calls.execute.call(upstream, model));
      expect(reply.status).toBe(200);
      expect(
        Object.keys(reply.headers).every((h) =>
          ["content-type", "content-length", "cache-control", "x-request-id"].includes(h),
        ),
      ).toBe(true);
      calls.execute.check(reply, await readBytes(reply.body), fake, model);
      expect(fake.requests.at(-1)!.headers.authorization).toBeUndefined();
    });

    const stream = calls.stream;
    if (stream) {
      it("streams: the first chunk arrives before the engine has finished", async () => {
        const { fake, upstream } = await start();
        const model = await firstModel(upstream);
        fake.pauseGenerations();
        const reply = await adapter.execute(stream.call(upstream, model));
        expect(reply.status).toBe(200);
        expect(reply.headers["content-type"]).toMatch(stream.contentType);
        const first = await stream.first(reply.body);
        expect(fake.completed).toBe(0);
        fake.resumeGenerations();
        stream.check(Buffer.concat([first, await readBytes(reply.body)]));
        expect(fake.completed).toBe(1);
      });

      it("closes the upstream connection when the call is aborted mid-stream", async () => {
        const { fake, upstream } = await start();
        const model = await firstModel(upstream);
        const controller = new AbortController();
        fake.pauseGenerations();
        const reply = await adapter.execute(stream.call(upstream, model, controller.signal));
        await stream.first(reply.body);
        const closed = once(fake, "client-closed");
        controller.abort();
        await closed;
        expect(fake.closedEarly).toBe(1);
        expect(fake.inFlight).toBe(0);
        expect(fake.completed).toBe(0);
        await expect(readBytes(reply.body)).rejects.toMatchObject({ name: "AbortError" });
      });
    } else if (options.cancel === false) {
      it("rejects when the call is aborted while the engine works", async () => {
        const { fake, upstream } = await start();
        const model = await firstModel(upstream);
        const controller = new AbortController();
        fake.pauseGenerations();
        const arrived = once(fake, "request");
        const pending = adapter.execute(calls.execute.call(upstream, model, controller.signal));
        pending.catch(() => undefined); // checked below
        await arrived;
        controller.abort();
        await expect(pending).rejects.toMatchObject({ name: "AbortError" });
        expect(fake.completed).toBe(0);
      });
    } else {
      it("closes the upstream connection when the call is aborted while the engine works", async () => {
        const { fake, upstream } = await start();
        const model = await firstModel(upstream);
        const controller = new AbortController();
        fake.pauseGenerations();
        const arrived = once(fake, "request");
        const pending = adapter.execute(calls.execute.call(upstream, model, controller.signal));
        pending.catch(() => undefined); // checked below, once the engine saw the close
        await arrived;
        const closed = once(fake, "client-closed");
        controller.abort();
        await closed;
        await expect(pending).rejects.toMatchObject({ name: "AbortError" });
        expect(fake.closedEarly).toBe(1);
        expect(fake.inFlight).toBe(0);
        expect(fake.completed).toBe(0);
      });
    }

    it("passes an engine error status and body through", async () => {
      const { upstream } = await start();
      const model = await firstModel(upstream);
      const reply = await adapter.execute(calls.error.call(upstream, model));
      calls.error.check(reply.status, (await readBytes(reply.body)).toString("utf8"));
    });

    it("rejects with upstream_unreachable when the engine dies before answering", async () => {
      const { fake, upstream } = await start();
      const model = await firstModel(upstream);
      fake.pauseGenerations();
      const arrived = once(fake, "request");
      const pending = adapter.execute(calls.execute.call(upstream, model));
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
      const pending = adapter.execute(calls.execute.call(dead, model));
      await expect(pending).rejects.toMatchObject({ code: "upstream_unreachable" });
      await expect(pending).rejects.toThrow(`at ${dead.url} (ECONNREFUSED)`);
    });

    it.skipIf(options.apiKey === false)(
      "needs the engine's key: refused without it, sent as Bearer with it",
      async () => {
        const { fake, upstream } = await start({ apiKey: "sk-conformance" });
        const anonymous = await adapter.probe({ url: upstream.url }, signal());
        expect(anonymous.status).toBe("no");
        expect(anonymous.reason).toMatch(/apiKey/);
        expect((await adapter.probe(upstream, signal())).status).toBe("ready");
        const model = await firstModel(upstream);
        const reply = await adapter.execute(calls.execute.call(upstream, model));
        expect(reply.status).toBe(200);
        await readBytes(reply.body);
        expect(fake.requests.at(-1)!.headers.authorization).toBe("Bearer sk-conformance");
      },
    );
  });
}
