/**
 * A real gateway on a loopback listener, as the tests of engines behind it mount it (managed
 * engines, reloads, a paused rig, what the gateway counts), and the chat request they send.
 */
import http from "node:http";
import { once } from "node:events";
import { afterAll, beforeAll } from "vitest";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { Catalog } from "../../src/discovery/catalog.ts";
import type { EngineManager } from "../../src/engines/manager.ts";
import { createGateway, type GatewayOptions } from "../../src/gateway/gateway.ts";
import { silentLogger } from "../../src/log.ts";

/** The gateway listening on 127.0.0.1. */
export interface GatewayServer {
  /** `http://127.0.0.1:<port>`. */
  readonly base: string;
  /** Drops every connection and stops listening. */
  close(): void;
}

/**
 * Starts `createGateway(options)` on a free loopback port.
 * @example
 * const gateway = await listenGateway({ catalog, providerName: "rig", log: silentLogger });
 */
export async function listenGateway(options: GatewayOptions): Promise<GatewayServer> {
  const server = http.createServer(createGateway(options));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    base: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** What {@link postChat} may change in its request. */
export interface ChatOptions {
  stream?: boolean;
  headers?: Record<string, string>;
  /** The raw body, instead of a chat for `model` with one "hi" message. */
  body?: string;
}

/** `POST /v1/chat/completions` to `base` for `model`, with one user message "hi". */
export function postChat(
  base: string,
  model: string,
  options: ChatOptions = {},
): Promise<Response> {
  const chat = {
    model,
    ...(options.stream === undefined ? {} : { stream: options.stream }),
    messages: [{ role: "user", content: "hi" }],
  };
  return fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...options.headers },
    body: options.body ?? JSON.stringify(chat),
  });
}

/**
 * The gateway of rig "rig" in front of `manager`'s engines, for the test file that calls this:
 * started before its tests (after the `beforeAll` hooks registered earlier), and stopped with
 * every engine after them. `chat` posts to it.
 * @example
 * const gateway = managedGateway(manager);
 * const res = await gateway.chat("alpha");
 */
export function managedGateway(manager: EngineManager): {
  chat(model: string, options?: ChatOptions): Promise<Response>;
} {
  let gateway: GatewayServer | undefined;
  beforeAll(async () => {
    gateway = await listenGateway({
      catalog: () => new Catalog(manager.services()),
      providerName: "rig",
      log: silentLogger,
      engines: manager,
    });
  });
  afterAll(async () => {
    gateway?.close();
    await Promise.all([manager.stopAll(), closeUpstreamPools()]);
  });
  return {
    chat(model, options) {
      if (!gateway) throw new Error("the gateway starts in beforeAll: chat from a test");
      return postChat(gateway.base, model, options);
    },
  };
}
