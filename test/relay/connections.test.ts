/**
 * Connections held open at once (`--max-connections-per-address`, `--max-connections`): a
 * real relay process and raw sockets from three loopback addresses, each a source of its own.
 */
import { once } from "node:events";
import { connect, createServer, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_CONNECTION_LIMITS, limitConnections } from "../../src/relay/connection-limit.ts";
import { runCli, scratchDir, writeSecret, type CliProcess } from "../e2e/harness.ts";
import { freePort } from "../fakes/util.ts";

let relay: CliProcess;
let port: number;

beforeAll(async () => {
  const home = scratchDir();
  writeSecret(home, "keys.json", JSON.stringify({ "sk-connections-test-0123456789": "alice" }));
  port = await freePort();
  relay = runCli(
    [
      ...["relay", "--port", String(port), "--keys", `${home}/keys.json`],
      ...["--data-dir", `${home}/data`],
      ...["--max-connections-per-address", "3", "--max-connections", "5"],
    ],
    { home },
  );
  await relay.waitFor(/relay ready/);
});

afterAll(async () => {
  await relay.stop();
});

/** An idle connection from `from`, once the relay has accepted it. */
async function open(from: string): Promise<Socket> {
  const socket = connect({ port, host: "127.0.0.1", localAddress: from });
  socket.on("error", () => undefined);
  await once(socket, "connect");
  // The relay counts it once it has taken it: a round trip of a request makes that sure.
  return socket;
}

/** Whether the relay answers a request on a fresh connection from `from` (else: closed). */
async function answers(from: string): Promise<boolean> {
  const socket = await open(from);
  socket.write("GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n");
  let out = "";
  socket.on("data", (d: Buffer) => (out += d.toString("latin1")));
  await new Promise((resolve) => socket.once("close", resolve));
  return out.startsWith("HTTP/1.1 200");
}

describe("connections held open", () => {
  it("are at most --max-connections-per-address per source, and a closed one frees its place", async () => {
    const held = [await open("127.0.0.1"), await open("127.0.0.1"), await open("127.0.0.1")];
    await expect.poll(() => answers("127.0.0.1")).toBe(false);
    // Another address is another source.
    expect(await answers("127.0.0.2")).toBe(true);
    held[0]?.destroy();
    await expect.poll(() => answers("127.0.0.1")).toBe(true);
    for (const s of held) s.destroy();
  });

  it("are at most --max-connections in all, whatever their sources", async () => {
    const held = [
      ...[await open("127.0.0.1"), await open("127.0.0.1"), await open("127.0.0.1")],
      ...[await open("127.0.0.2"), await open("127.0.0.2")],
    ];
    await expect.poll(() => answers("127.0.0.3")).toBe(false);
    for (const s of held) s.destroy();
    await expect.poll(() => answers("127.0.0.3")).toBe(true);
    expect(relay.child.exitCode).toBeNull();
    expect(relay.output()).not.toMatch(/"level":(50|60)/);
  });
});

describe("the connection bounds behind a proxy (--trust-proxy)", () => {
  it("count no address, since every connection is the proxy's; the total still holds", async () => {
    expect(DEFAULT_CONNECTION_LIMITS).toEqual({ perAddress: 1024, total: 10_000 });
    const server = createServer((socket) => socket.on("error", () => undefined));
    const open = limitConnections(server, { perAddress: 1, total: 3 }, { trustProxy: true });
    expect(server.maxConnections).toBe(3);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    const sockets = await Promise.all(
      [1, 2].map(async () => {
        const s = connect(address.port, "127.0.0.1");
        await once(s, "connect");
        return s;
      }),
    );
    await expect
      .poll(() => new Promise<number>((r) => server.getConnections((_e, n) => r(n))))
      .toBe(2);
    expect(open.size).toBe(0);
    for (const s of sockets) s.destroy();
    server.close();
  });
});
