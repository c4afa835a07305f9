import { once } from "node:events";
import { describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { WsDuplex } from "../../src/transport/ws-duplex.ts";

async function pair(): Promise<{ client: WebSocket; server: WebSocket; close: () => void }> {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", perMessageDeflate: false });
  await once(wss, "listening");
  const port = (wss.address() as { port: number }).port;
  const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  const [server] = (await once(wss, "connection")) as [WebSocket];
  await once(client, "open");
  return {
    client,
    server,
    close: () => {
      client.terminate();
      wss.close();
    },
  };
}

describe("WsDuplex", () => {
  it("gathers the writes of one tick into one binary message", async () => {
    const { client, server, close } = await pair();
    const messages: Buffer[] = [];
    server.on("message", (data: Buffer, isBinary) => {
      expect(isBinary).toBe(true);
      messages.push(data);
    });
    const twoMessages = new Promise<void>((resolve) =>
      server.on("message", () => messages.length === 2 && resolve()),
    );
    const duplex = new WsDuplex(client);
    duplex.write(Buffer.from("a"));
    duplex.write(Buffer.from("b"));
    duplex.write(Buffer.from("c"));
    // A write of a later turn of the event loop goes in a message of its own; ws keeps order.
    setImmediate(() => duplex.write(Buffer.from("d")));
    await twoMessages;
    expect(messages.map(String)).toEqual(["abc", "d"]);
    close();
  });

  it("delivers binary messages as stream data and leaves text frames alone", async () => {
    const { client, server, close } = await pair();
    const duplex = new WsDuplex(client);
    const texts: string[] = [];
    client.on("message", (data: Buffer, isBinary) => {
      if (isBinary) duplex.receive(data);
      else texts.push(data.toString());
    });
    server.send(Buffer.from("bin1"));
    server.send("control");
    server.send(Buffer.from("bin2"));
    const chunks: string[] = [];
    for await (const chunk of duplex) {
      chunks.push(String(chunk));
      if (chunks.join("") === "bin1bin2") break;
    }
    expect(texts).toEqual(["control"]);
    close();
  });

  it("stops accepting writes while the socket holds more than the high-water mark", async () => {
    const { client, server, close } = await pair();
    // The peer does not read: the kernel buffers fill, then ws's bufferedAmount grows.
    server.pause();
    const duplex = new WsDuplex(client, { highWaterMark: 256 * 1024 });
    const chunk = Buffer.alloc(64 * 1024);
    let accepted = 0;
    // Held: the duplex has not called back its last write (its bytes still count in
    // writableLength) while the socket holds the high-water mark or more. Without backpressure
    // every write calls back at once and this never holds.
    const held = (): boolean =>
      duplex.writableNeedDrain && duplex.writableLength > 0 && client.bufferedAmount >= 256 * 1024;
    let blocked = false;
    for (let i = 0; i < 2000 && !blocked; i++) {
      if (duplex.write(chunk)) accepted += chunk.length;
      else {
        // Either it drains (the kernel took the bytes) and writing goes on, or it is held.
        await expect.poll(() => !duplex.writableNeedDrain || held(), { interval: 5 }).toBe(true);
        blocked = held();
      }
    }
    expect(blocked).toBe(true);
    // What the process holds is bounded: one high-water mark plus the chunk that crossed it.
    expect(client.bufferedAmount).toBeLessThan(256 * 1024 + 2 * chunk.length);
    expect(accepted).toBeGreaterThan(0);
    server.resume();
    await once(duplex, "drain");
    close();
  });
});
