/**
 * The rig's own check of sharing, against a relay that lies: a hostile relay (a real WebSocket
 * server speaking the tunnel) names whichever member it likes in `x-club-member`. The rig
 * serves its owner everything, other members only what the owner shared with them, and
 * refuses the rest with 403 before the engine sees a byte.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { discover, type Catalog } from "../../src/discovery/catalog.ts";
import { createGateway, type RequestDoneInfo } from "../../src/gateway/gateway.ts";
import { silentLogger } from "../../src/log.ts";
import { HEADER_MEMBER, HEADER_MODEL, type Access } from "../../src/protocol/index.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { behindTunnel, relayPost, type Tunnelled } from "./tunnelled.ts";

const models = ["shared-chat", "carol-chat", "private-chat"];
const sharing: Record<string, Access> = { "shared-chat": "club", "carol-chat": ["carol"] };
let engines: FakeLlamaServer[];
let catalog: Catalog;
let tunnel: Tunnelled;
const done: RequestDoneInfo[] = [];

beforeAll(async () => {
  engines = models.map((alias) => new FakeLlamaServer({ alias, tokens: ["ok"] }));
  await Promise.all(engines.map((e) => e.start()));
  catalog = await discover({ services: engines.map((e) => ({ url: e.url })), autodetect: false });
  const gateway = createGateway({
    catalog: () => catalog,
    providerName: "alice-rig",
    log: silentLogger,
    sharing: { owner: () => tunnel.client.welcome?.member, sharing: () => sharing },
    memberLimits: () => ({ dave: { requestsPerDay: 1 } }),
    onRequestDone: (info) => done.push(info),
  });
  tunnel = await behindTunnel(gateway, { member: "alice" });
  while (tunnel.client.welcome?.member !== "alice") await new Promise((r) => setTimeout(r, 10));
});

afterAll(async () => {
  await tunnel.close();
  await Promise.all([...engines.map((e) => e.stop()), closeUpstreamPools()]);
});

/** A chat request as the relay sends it, naming `member` (or none) and the model in headers. */
function chat(
  model: string,
  member: string | undefined,
  options: { modelHeader?: boolean } = {},
): Promise<{ status: number; body: string }> {
  return relayPost(
    tunnel.session,
    {
      ...(options.modelHeader === false ? {} : { [HEADER_MODEL]: model }),
      ...(member === undefined ? {} : { [HEADER_MEMBER]: member }),
    },
    JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
  );
}

const served = (): number => engines.reduce((n, e) => n + e.requests.length, 0);

describe("a rig's sharing, checked by the rig", () => {
  it("serves its owner every model, named or not", async () => {
    for (const model of models) {
      expect((await chat(model, "alice")).status).toBe(200);
      expect((await chat(model, undefined)).status).toBe(200);
    }
    await expect.poll(() => done.length).toBe(6);
    expect(done.every((d) => d.member === undefined)).toBe(true);
  });

  it("serves another member what was shared with them, and says for whom when it is done", async () => {
    expect((await chat("shared-chat", "mallory")).status).toBe(200);
    await expect.poll(() => done.at(-1)?.member).toBe("mallory");
    expect((await chat("carol-chat", "carol")).status).toBe(200);
  });

  it("refuses with 403 what was not shared with the member the relay names, engine untouched", async () => {
    const before = served();
    for (const [model, member] of [
      ["private-chat", "mallory"],
      ["carol-chat", "mallory"],
      ["private-chat", "carol"],
    ] as const) {
      const res = await chat(model, member);
      expect(res.status).toBe(403);
      expect(JSON.parse(res.body)).toMatchObject({
        error: {
          type: "permission_error",
          message: expect.stringContaining(`does not share "${model}" with ${member}`) as string,
        },
      });
    }
    // The model named only in the body is checked too.
    expect((await chat("private-chat", "mallory", { modelHeader: false })).status).toBe(403);
    expect(served()).toBe(before);
  });

  it("answers 429 past the owner's limit for a member, saying which, and the relay may go elsewhere", async () => {
    expect((await chat("shared-chat", "dave")).status).toBe(200);
    const refused = await chat("shared-chat", "dave");
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body)).toMatchObject({
      error: {
        type: "rate_limit_error",
        message: expect.stringContaining("dave used the 1 requests a day") as string,
      },
    });
    // The owner has no such limit.
    expect((await chat("shared-chat", "alice")).status).toBe(200);
  });
});
