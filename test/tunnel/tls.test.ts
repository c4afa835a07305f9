/**
 * Protocol 2 over TLS, as a daemon reaches a relay behind a TLS proxy (`wss://`): the connect
 * request goes over HTTPS and, after the 101, HTTP/2 runs on the TLS socket itself. A TLS
 * terminator on loopback (a throwaway self-signed certificate) stands in for the proxy.
 */
import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync } from "node:fs";
import https from "node:https";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay } from "../../src/relay/server.ts";
import { TunnelClient } from "../../src/tunnel/client.ts";
import { manifest } from "./tunnel-fixtures.ts";

const KEY = "sk-tls-test-000000000";
const dir = mkdtempSync(join(tmpdir(), "club-tls-"));
const made = spawnSync("openssl", [
  ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"],
  ...["-addext", "subjectAltName=DNS:localhost"],
  ...["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")],
]);

let relay: Relay;
let proxy: tls.Server;
let client: TunnelClient | undefined;

beforeAll(async () => {
  relay = await createRelay({ port: 0, keys: new KeyRing({ [KEY]: "alice" }), log: silentLogger });
  proxy = tls.createServer(
    { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) },
    (socket) => {
      const up = net.connect(relay.port, "127.0.0.1");
      socket.pipe(up).pipe(socket);
      up.on("error", () => socket.destroy());
      socket.on("error", () => up.destroy());
    },
  );
  proxy.listen(0, "127.0.0.1");
  await once(proxy, "listening");
});

afterAll(async () => {
  client?.stop();
  proxy.close();
  await relay.close();
});

it.skipIf(made.status !== 0)("serves over HTTP/2 on the TLS socket of a wss:// relay", async () => {
  // The daemon trusts the system's CAs; this test's certificate is added to them for HTTPS.
  https.globalAgent.options.ca = [...tls.rootCertificates, readFileSync(join(dir, "cert.pem"))];
  client = new TunnelClient({
    relayUrl: `wss://localhost:${(proxy.address() as AddressInfo).port}`,
    apiKey: KEY,
    provider: { name: "rig", version: "0" },
    manifest: () => manifest("m"),
    heartbeat: () => ({ in_flight: 0, queued: 0, services: {}, gpus: [] }),
    onRequest: (x) => x.writeHead(200, { "content-type": "text/plain" }).end("over tls"),
    tunnelProtocol: 2,
    log: silentLogger,
  });
  client.start();
  await once(client, "connected");
  expect(relay.registry.all().map((l) => l.protocol)).toEqual([2]);
  const res = await fetch(`${relay.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "m", messages: [] }),
  });
  expect(await res.text()).toBe("over tls");
});
