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
    const duplex = new WsDuplex(client);
    duplex.write(Buffer.from("a"));
    duplex.write(Buffer.from("b"));
    duplex.write(Buffer.from("c"));
    await new Promise((r) => setTimeout(r, 50));
    expect(messages.map(String)).toEqual(["abc"]);
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
    const stillBlocked = async (): Promise<boolean> => {
      await Promise.race([once(duplex, "drain"), new Promise((r) => setTimeout(r, 200))]);
      return duplex.writableNeedDrain;
    };
    let blocked = false;
    for (let i = 0; i < 2000; i++) {
      if (duplex.write(chunk)) accepted += chunk.length;
      else if (await stillBlocked()) {
        blocked = true;
        break;
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
