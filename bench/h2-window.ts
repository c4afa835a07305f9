/**
 * Node's HTTP/2 loses connection window for streams reset while their body arrives
 * (docs/roadmap.md, "Known problem: cancelled uploads shrink the tunnel's window"): a bare
 * `node:http2` server that reads every body, a client that sends 200 KB on each of `RESETS`
 * streams (default 200) and resets it, and the client's connection send window before and
 * after. With `BENCH_H2_RESTORE=1` the server then raises its window by what it holds
 * unconsumed, the workaround the roadmap describes, and the window is read once more.
 *
 *   node --import tsx bench/h2-window.ts
 */
import { once } from "node:events";
import http2, { type ServerHttp2Session } from "node:http2";
import type { AddressInfo } from "node:net";

const WINDOW = 32 * 1024 * 1024;
const RESETS = Number(process.env.RESETS ?? 200);
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const server = http2.createServer({ settings: { initialWindowSize: 4 * 1024 * 1024 } });
let session: ServerHttp2Session | undefined;
server.on("session", (s) => {
  session = s;
  s.setLocalWindowSize(WINDOW);
});
server.on("stream", (stream) => {
  stream.on("error", () => undefined);
  stream.on("data", () => undefined);
});
server.listen(0, "127.0.0.1");
await once(server, "listening");
const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
await once(client, "remoteSettings");
await pause(100);
const before = client.state.remoteWindowSize ?? 0;
for (let i = 0; i < RESETS; i++) {
  const stream = client.request({ ":method": "POST", ":path": "/" });
  stream.on("error", () => undefined);
  stream.write(Buffer.alloc(200_000, 0x20));
  await pause(2);
  stream.close(http2.constants.NGHTTP2_CANCEL);
  await once(stream, "close");
}
await pause(500);
const after = client.state.remoteWindowSize ?? 0;
const held = session?.state.effectiveRecvDataLength ?? 0;
process.stdout.write(
  `Node ${process.version}: ${RESETS} streams reset mid-body; the client's connection window ` +
    `${before} → ${after} bytes (${before - after} lost); the server holds ${held} unconsumed\n`,
);
if (process.env.BENCH_H2_RESTORE === "1" && session) {
  session.setLocalWindowSize(WINDOW + held);
  session.ping(() => undefined);
  await pause(200);
  process.stdout.write(
    `after the server raised its window by that: ${client.state.remoteWindowSize ?? 0}\n`,
  );
}
client.close();
server.close();
