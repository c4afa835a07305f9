/**
 * The internal listener: other instances of the club open HTTP/2 streams here for providers
 * whose tunnel this instance holds, and each stream is passed into that tunnel as it is. Only
 * instances that know the operator's cluster secret get in; a member's key opens nothing here.
 * A reset travels both ways: the consumer who leaves resets the stream to the engine, a provider
 * that fails resets it to the consumer's instance. A stream naming a member instead of a
 * connection is a work request for a record this instance owns (`work.ts`); it is answered by
 * the work API as the member's own request would be.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import http2, {
  type Http2ServerRequest,
  type Http2ServerResponse,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import { createHash, timingSafeEqual } from "node:crypto";
import { pipeline } from "node:stream";
import type { Logger } from "../../log.ts";
import { envelope, type ErrorType } from "../../protocol/index.ts";
import { CONNECTION_WINDOW, tunnelSettings } from "../../transport/h2-settings.ts";
import { resetStream } from "../../transport/h2-stream.ts";
import type { Registry } from "../registry.ts";
import { describeError } from "../../errors.ts";
import { answerError } from "../../http/respond.ts";
import { HEADER_CLUSTER_SECRET, HEADER_CONNECTION } from "./remote.ts";
import { HEADER_WORK_MEMBER } from "./work.ts";

/** Answers a work request another instance passed on: the member's, for a record kept here. */
export type WorkHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  member: string,
  url: URL,
) => Promise<void>;

export interface InternalServer {
  /** `http://host:port` the listener is bound to. */
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface InternalOptions {
  host: string;
  port: number;
  secret: string;
  registry: Registry;
  /** The work API, once the relay has one (asked per request). */
  work?: () => WorkHandler | undefined;
  log: Logger;
}

const digest = (s: string): Buffer => createHash("sha256").update(s).digest();

function answer(stream: ServerHttp2Stream, status: number, type: ErrorType, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  const body = JSON.stringify(envelope(type, message));
  stream.respond({ ":status": status, "content-type": "application/json" });
  stream.end(body);
}

/** The headers passed into the tunnel: the request's own, less the internal ones. */
function tunnelHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ":method": h[":method"], ":path": h[":path"] };
  for (const [name, value] of Object.entries(h)) {
    if (name.startsWith(":") || name === HEADER_CLUSTER_SECRET || name === HEADER_CONNECTION)
      continue;
    out[name] = value;
  }
  return out;
}

export async function startInternal(o: InternalOptions): Promise<InternalServer> {
  const secret = digest(o.secret);
  const log = o.log.child({ component: "internal" });
  const server = http2.createServer({ settings: tunnelSettings() });
  const open = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    open.add(session);
    session.on("close", () => open.delete(session));
    session.on("connect", () => session.setLocalWindowSize(CONNECTION_WINDOW));
    session.on("error", (err: Error) => log.debug({ err: err.message }, "internal session error"));
  });
  // Work requests are answered through HTTP/2's compatibility API, as the public API answers:
  // this server never listens, it only turns the streams given to it into requests.
  const compat = http2.createServer();
  compat.on("request", (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const member = String(req.headers[HEADER_WORK_MEMBER]);
    const handler = o.work?.();
    const url = new URL(req.url, "http://internal");
    if (!handler) {
      answer(res.stream, 503, "server_error", "this relay instance has no work API yet");
      return;
    }
    // The work routes read and write only what both request types have (`src/http` types).
    handler(req as unknown as IncomingMessage, res as unknown as ServerResponse, member, url).catch(
      (err: unknown) => {
        if (answerError(res, err, "the relay failed to handle this request")) return;
        log.error({ err: describeError(err), path: url.pathname }, "internal work request failed");
      },
    );
  });
  server.on("stream", (stream, headers, flags, rawHeaders) => {
    stream.on("error", (err) => log.debug({ err: err.message }, "internal stream error"));
    const offered = headers[HEADER_CLUSTER_SECRET];
    if (typeof offered !== "string" || !timingSafeEqual(digest(offered), secret)) {
      log.warn("internal stream without the cluster secret refused");
      answer(stream, 401, "authentication_error", "the cluster secret was refused");
      return;
    }
    if (typeof headers[HEADER_WORK_MEMBER] === "string") {
      compat.emit("stream", stream, headers, flags, rawHeaders);
      return;
    }
    const connId = headers[HEADER_CONNECTION];
    const link = typeof connId === "string" ? o.registry.find(connId) : undefined;
    if (!link?.routable) {
      answer(
        stream,
        502,
        "upstream_error",
        `provider connection ${String(connId).slice(0, 64)} is not on this instance any more`,
      );
      return;
    }
    const up = link.request(tunnelHeaders(headers), stream.endAfterHeaders);
    link.inFlight++;
    let ended = false;
    if (!stream.endAfterHeaders)
      pipeline(stream, up, (err) => {
        if (err) resetStream(up);
      });
    up.on("response", (h) => {
      const { ":status": status, ...rest } = h;
      if (stream.destroyed) return;
      stream.respond({ ...rest, ":status": Number(status) });
      up.pipe(stream);
    });
    up.on("end", () => (ended = !up.rstCode));
    up.on("error", () => undefined);
    up.on("close", () => {
      link.inFlight--;
      if (!stream.destroyed && !ended)
        resetStream(stream, up.rstCode || http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
    stream.on("close", () => resetStream(up));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const url = `http://${o.host.includes(":") ? `[${o.host}]` : o.host}:${port}`;
  log.info({ url }, "internal listener on %s", url);
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Sessions still open (peers' idle sessions) end now, not when they time out.
        for (const session of open) session.destroy();
      }),
  };
}
