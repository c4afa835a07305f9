/**
 * The daemon refuses to send its key over plain ws:// to a relay off this machine unless the
 * operator passed --insecure, and then says so. Loopback in any spelling is not "off this machine".
 */
import { Writable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config.ts";
import { Daemon } from "../../src/daemon/daemon.ts";
import { UserError } from "../../src/errors.ts";
import { createLogger, silentLogger } from "../../src/log.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay } from "../../src/relay/server.ts";

const KEY = "sk-insecure-relay-test-0001";
let relay: Relay;
let port = 0;
let daemon: Daemon | undefined;

beforeAll(async () => {
  relay = await createRelay({ port: 0, keys: new KeyRing({ [KEY]: "m" }), log: silentLogger });
  port = Number(new URL(relay.url).port);
});
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
});
afterAll(() => relay.close());

function daemonFor(url: string, insecure?: boolean): { daemon: Daemon; warnings: string[] } {
  const warnings: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      const line = JSON.parse(chunk.toString()) as { level: number; msg: string };
      if (line.level >= 40) warnings.push(line.msg);
      done();
    },
  });
  const config = resolveConfig(
    { statusPort: 0 },
    { CLUB_API_KEY: KEY },
    { relay: url, autodetect: false, ...(insecure ? { insecure } : {}) },
  );
  return {
    daemon: new Daemon({ config, log: createLogger({ format: "json", destination }) }),
    warnings,
  };
}

describe("plain ws:// relays", () => {
  it("refuses a relay off this machine without --insecure, naming the flag", async () => {
    const made = daemonFor("ws://192.0.2.10:8787");
    daemon = made.daemon;
    const err = await daemon.start().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).code).toBe("insecure_relay");
    expect((err as UserError).message).toMatch(/in clear text: use wss:\/\/, or pass --insecure/);
    expect(daemon.tunnels).toHaveLength(0);
  });

  it("connects with --insecure, and warns", async () => {
    // 0.0.0.0 is not loopback by name, yet on this machine it reaches the relay on 127.0.0.1.
    const made = daemonFor(`ws://0.0.0.0:${port}`, true);
    daemon = made.daemon;
    await daemon.start();
    expect(made.warnings.some((w) => w.startsWith("INSECURE: the relay ws://0.0.0.0"))).toBe(true);
    await expect.poll(() => daemon?.ready()).toBe(true);
  });

  it.each(["localhost", "127.0.0.1", "[::ffff:127.0.0.1]"])(
    "treats ws://%s as loopback without --insecure",
    async (host) => {
      const made = daemonFor(`ws://${host}:${port}`);
      daemon = made.daemon;
      await daemon.start();
      expect(made.warnings.filter((w) => w.startsWith("INSECURE"))).toEqual([]);
    },
  );
});
