/**
 * A gateway behind a real tunnel client, the way a daemon serves it, with a hostile relay
 * (test/tunnel/hostile-relay.ts) as the relay's end: the test speaks HTTP/2 over the tunnel as
 * the relay would, naming whichever member it likes.
 */
import type { ClientHttp2Session } from "node:http2";
import { once } from "node:events";
import type { WelcomeMessage } from "../../src/protocol/index.ts";
import type { TunnelClient, TunnelClientOptions } from "../../src/tunnel/client.ts";
import { HostileRelay, victim } from "../tunnel/hostile-relay.ts";

/** The relay's end of the tunnel, and the daemon's. */
export interface Tunnelled {
  relay: HostileRelay;
  client: TunnelClient;
  /** The relay's HTTP/2 session over the tunnel. */
  session: ClientHttp2Session;
  /** Ends the session, the client and the relay. */
  close(): Promise<void>;
}

/** Serves `onRequest` (a gateway) over a tunnel to a new hostile relay, welcomed with `welcome`. */
export async function behindTunnel(
  onRequest: TunnelClientOptions["onRequest"],
  welcome: Partial<WelcomeMessage> = {},
): Promise<Tunnelled> {
  const relay = new HostileRelay();
  await relay.start();
  const client = victim(relay.url, { onRequest });
  client.start();
  const conn = await relay.connection(0);
  const session = conn.h2();
  conn.welcome(welcome);
  await once(session, "remoteSettings");
  return {
    relay,
    client,
    session,
    async close() {
      session.destroy();
      client.stop();
      await relay.close();
    },
  };
}

/** A POST as the relay sends it over `session`; resolves with status and body once it closes. */
export function relayPost(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  body: string,
  path = "/v1/chat/completions",
): Promise<{ status: number; body: string }> {
  const stream = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/json",
    ...headers,
  });
  stream.end(body);
  return new Promise((resolve) => {
    let status = 0;
    let text = "";
    stream.on("response", (h) => (status = Number(h[":status"])));
    stream.on("data", (d: Buffer) => (text += d.toString()));
    stream.on("close", () => resolve({ status, body: text }));
  });
}
