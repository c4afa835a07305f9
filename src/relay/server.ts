/**
 * The relay: an HTTP server for the club's public API plus the WebSocket endpoint providers
 * connect to. `createRelay` starts it; everything it holds is released by `close()`.
 */
import http, { type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type pg from "pg";
import { WebSocketServer } from "ws";
import type { Logger } from "../log.ts";
import {
  CONNECT_PATH,
  CloseCode,
  TUNNEL_SUBPROTOCOL,
  TUNNEL_UPGRADE_2,
} from "../protocol/index.ts";
import { H2Carrier, SWITCH_TO_2 } from "../transport/h2-carrier.ts";
import { WsCarrier } from "../transport/ws-carrier.ts";
import { createApi } from "./api.ts";
import { RateLimiter, type KeyLimiter } from "./rate-limit.ts";
import { createWork, type Work } from "./jobs/work.ts";
import { SharedWork } from "./cluster/work.ts";
import { MediaMirror } from "./cluster/media.ts";
import { createMedia } from "./media/media.ts";
import type { MediaLimits } from "./media/types.ts";
import type { JobLimits } from "./jobs/types.ts";
import { AuthThrottle, type AuthThrottleOptions } from "./auth-throttle.ts";
import { KeyRing } from "./keys.ts";
import { DEFAULT_PROVIDER_LIMITS, ProviderLink, type ProviderLimits } from "./provider-link.ts";
import { parseTarget } from "./target.ts";
import { Registry } from "./registry.ts";
import { openPool } from "./pg/pool.ts";
import { SharedRateLimiter } from "./cluster/rate.ts";
import { joinCluster, type ClusterJoin, type ClusterMember } from "./cluster/index.ts";
import { DEFAULT_MAX_JSON_BYTES, Uploads, bodyToCome, type UploadLimits } from "./uploads.ts";
import {
  DEFAULT_CONNECTION_LIMITS,
  limitConnections,
  type ConnectionLimits,
} from "./connection-limit.ts";
import { ClubUi } from "./ui-routes.ts";

export interface RelayOptions {
  host?: string;
  port?: number;
  keys: KeyRing;
  log: Logger;
  /** Heartbeat interval providers are told to use (default 15 s). */
  heartbeatMs?: number;
  /** How long a new provider connection may take to say hello (default 10 s). */
  helloTimeoutMs?: number;
  maxJsonBytes?: number;
  /** Requests per second per key, with a burst of twice that (default 50; 0 turns it off). */
  rateLimit?: number;
  /**
   * Where async jobs, batches, workflow runs and results are kept (created if missing; one relay
   * per directory). Without it they are kept in memory and lost when the relay stops.
   */
  dataDir?: string;
  /**
   * A `postgres://` URL: the relay opens one connection pool to it (`relay.pool`), shared by
   * every part that keeps state in PostgreSQL, and ends it at close. Without `cluster`, jobs,
   * batches, workflow runs, their bodies and usage are kept there (one relay per database,
   * `pg/store.ts`); byte results and the media library stay under `dataDir`. Cluster instances
   * keep their jobs under `dataDir`.
   */
  database?: string;
  /** A pool the caller opened and ends itself; takes the place of `database`. */
  pool?: pg.Pool;
  /**
   * Run as one instance of a club of several relays sharing `database`/`pool`: providers whose
   * tunnel another instance holds are reached through it (`cluster/`).
   */
  cluster?: ClusterJoin;
  /** The lease of the lone relay holding the database, in ms (default 15 000; `--instance-lease`). */
  instanceLeaseMs?: number;
  /** Bounds and timings of async work (tests shorten them). */
  jobLimits?: Partial<JobLimits>;
  /** SSE comments on a streamed answer not begun yet, this often (default 15 s; 0 never). */
  keepAliveMs?: number;
  /** Bounds on what providers may send and hold; see `ProviderLimits`. */
  providerLimits?: Partial<ProviderLimits>;
  /** Failed key checks per source address: see `AuthThrottleOptions`. */
  authThrottle?: AuthThrottleOptions;
  /** Request bodies per member and the stall cut: see `UploadLimits`. */
  uploadLimits?: Partial<UploadLimits>;
  /** How long a client may take to send a request's headers (default 60 s). */
  headersTimeoutMs?: number;
  /** Connections open at once per source address and in all: see `ConnectionLimits`. */
  connectionLimits?: Partial<ConnectionLimits>;
  /** Keyless requests (media URLs, the gallery) per second per source address (default 50). */
  openRate?: number;
  /** Retention and quota of the media library: see `MediaLimits`. */
  mediaLimits?: Partial<MediaLimits>;
  /** Live club pages (`/ui/api/events` streams) one member may hold at once (default 4). */
  uiStreams?: number;
}

export interface Relay {
  /** `http://host:port`: the base URL for consumers is this plus `/v1`. */
  url: string;
  port: number;
  registry: Registry;
  /** The PostgreSQL pool, when the relay was given `database` or `pool`. */
  pool?: pg.Pool;
  /** This instance's name and internal URL, when it is one of several. */
  cluster?: { instanceId: string; internalUrl: string };
  close(): Promise<void>;
}

const REFUSAL_TYPES: Record<number, string> = {
  401: "authentication_error",
  429: "rate_limit_error",
};

/**
 * Answers on a raw socket (a refused upgrade, a request Node's parser refused, CONNECT) in the
 * club's envelope and closes it. The socket is the server's no longer, so none of its timeouts
 * hold it: a peer that keeps its half open after the answer is cut after `graceMs`, or each such
 * connection, a stranger's included, would hold a file descriptor for as long as it liked.
 */
function refuseOnSocket(
  socket: Duplex,
  graceMs: number,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify({
    error: { message, type: REFUSAL_TYPES[status] ?? "invalid_request_error" },
  });
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`,
  );
  const cut = setTimeout(() => socket.destroy(), graceMs);
  cut.unref();
  socket.once("close", () => clearTimeout(cut));
}

/**
 * An answer that left before its request's body had all come (a refusal: no key, too large, no
 * provider; or a provider's early answer) leaves a connection that can carry no other request
 * until the rest arrives, and no timeout of Node's covers a request whose headers are in: a
 * client that sent neither the rest nor its FIN held the connection as long as it liked, and
 * with it a place under `--max-connections-per-address`. So after such an answer the relay ends
 * its side, reads and drops whatever still comes, and closes after `graceMs`. Reading on rather
 * than closing at once: a socket closed with bytes unread sends a reset, which can cost the
 * client the answer it has not read yet.
 */
function closeAfterEarlyAnswer(req: IncomingMessage, res: http.ServerResponse, graceMs: number) {
  res.once("finish", () => {
    if (req.complete) return;
    const socket = req.socket;
    req.resume();
    socket.end();
    const cut = setTimeout(() => socket.destroy(), graceMs);
    cut.unref();
    socket.once("close", () => clearTimeout(cut));
  });
}

/** What Node's HTTP parser says of a request it refused, as the status and message answered. */
const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, "the request's headers are larger than this relay takes"],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, "the request's chunk extensions are too large"],
  ERR_HTTP_REQUEST_TIMEOUT: [408, "the request's headers did not all arrive in time"],
};

/**
 * A request Node's HTTP parser refused (a malformed request line or header, two or a negative
 * Content-Length, headers too large or too slow) is answered in the club's envelope like every
 * other refusal, where Node would send a bare status line. As Node does, only on a connection
 * that has had nothing written to it yet (so no answer can be cut into); otherwise it is closed.
 */
function answerClientError(
  err: Error & { code?: string; reason?: unknown },
  socket: Duplex,
  graceMs: number,
): void {
  const written = (socket as Duplex & { bytesWritten?: number }).bytesWritten ?? 0;
  if (!socket.writable || written > 0 || err.code === "ECONNRESET") {
    socket.destroy();
    return;
  }
  const reason = typeof err.reason === "string" ? `: ${err.reason.slice(0, 200)}` : "";
  const [status, message] = CLIENT_ERRORS[err.code ?? ""] ?? [
    400,
    `malformed HTTP request${reason}`,
  ];
  refuseOnSocket(socket, graceMs, status, message);
}

export async function createRelay(options: RelayOptions): Promise<Relay> {
  const { keys, log } = options;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const registry = new Registry();
  const providerLimits = { ...DEFAULT_PROVIDER_LIMITS, ...options.providerLimits };
  const throttle = new AuthThrottle(options.authThrottle);
  /** Open tunnels per member, counted from the upgrade (before hello) to the close. */
  const tunnels = new Map<string, number>();
  const ownPool = !options.pool && options.database !== undefined;
  const pool =
    options.pool ??
    (options.database === undefined
      ? undefined
      : openPool(options.database, {
          onError: (err) => log.warn({ err: err.message }, "PostgreSQL connection lost"),
        }));
  let cluster: ClusterMember | undefined;
  const endPool = async (): Promise<void> => {
    // A failed start leaves the club's tables first (shutdown has already).
    await cluster?.close();
    if (ownPool) await pool?.end();
  };
  if (pool) {
    // Fail at start, with the reason, when the database cannot be reached.
    await pool.query("SELECT 1").catch(async (err: unknown) => {
      await endPool();
      throw err;
    });
  }
  // An instance joins the club before its work loads: what it owns, and what dead instances
  // left, is then found by name. Work requests other instances pass on wait for `work`.
  const late: { work?: Work } = {};
  if (options.cluster)
    cluster = await joinCluster(options.cluster, pool, registry, log, (req, res, member, url) =>
      late.work ? late.work.handle(req, res, member, url, { fromPeer: true }) : Promise.resolve(),
    ).catch(async (err: unknown) => {
      await endPool();
      throw err;
    });
  const shared =
    cluster && pool
      ? {
          work: new SharedWork(pool, cluster.instanceId, log),
          peers: cluster.directory.peers,
          onInstanceGone: (listener: () => void) => cluster?.directory.onInstanceGone(listener),
          onExpired: (listener: () => void) => cluster?.directory.onExpired(listener),
        }
      : undefined;
  // Jobs that were running when the relay stopped are queued again; they wait for providers.
  const work = await createWork({
    registry,
    log,
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    ...(pool ? { pool } : {}),
    ...(shared ? { shared } : {}),
    ...(options.instanceLeaseMs === undefined ? {} : { instanceLeaseMs: options.instanceLeaseMs }),
    ...(options.jobLimits ? { limits: options.jobLimits } : {}),
    ...(options.maxJsonBytes ? { maxJsonBytes: options.maxJsonBytes } : {}),
  }).catch(async (err: unknown) => {
    await endPool();
    throw err;
  });
  const mirror =
    shared && pool
      ? await MediaMirror.open(pool, shared.work.instanceId).catch(async (err: unknown) => {
          await work.close();
          await endPool();
          throw err;
        })
      : undefined;
  const media = await createMedia({
    log,
    maxJsonBytes: options.maxJsonBytes ?? DEFAULT_MAX_JSON_BYTES,
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    ...(work.database ? { database: work.database } : {}),
    ...(options.mediaLimits ? { limits: options.mediaLimits } : {}),
    ...(mirror ? { mirror } : {}),
  }).catch(async (err: unknown) => {
    await work.close();
    await endPool();
    throw err;
  });
  // Instances of one club share each key's bucket in PostgreSQL (cluster/rate.ts).
  const rateLimit: KeyLimiter | undefined =
    options.rateLimit === 0
      ? undefined
      : pool && options.cluster
        ? await SharedRateLimiter.start(pool, { perSecond: options.rateLimit ?? 50, log }).catch(
            async (err: unknown) => {
              await media.close();
              await work.close();
              await endPool();
              throw err;
            },
          )
        : new RateLimiter({ perSecond: options.rateLimit ?? 50 });
  // The cluster is joined after the API exists; the page asks for its instance id later.
  const clusterInfo: { instanceId?: string } = {};
  const ui = new ClubUi({
    registry,
    keys,
    work,
    instance: () => clusterInfo.instanceId,
    ...(options.uiStreams === undefined ? {} : { streamsPerMember: options.uiStreams }),
  });
  const api = createApi({
    keys,
    media,
    ui,
    registry,
    log,
    work,
    throttle,
    uploads: new Uploads(options.uploadLimits),
    ...(options.maxJsonBytes ? { maxJsonBytes: options.maxJsonBytes } : {}),
    ...(options.keepAliveMs === undefined ? {} : { keepAliveMs: options.keepAliveMs }),
    ...(options.openRate === 0
      ? {}
      : {
          openRateLimit: new RateLimiter({
            perSecond: options.openRate ?? 50,
            burst: Math.max(1, 2 * (options.openRate ?? 50)),
          }),
        }),
    ...(rateLimit ? { rateLimit } : {}),
  });
  // Generations may be silent for minutes before the first byte: no request timeout. A body
  // that stops arriving is cut by `Uploads`; headers that never end, by `headersTimeout`.
  const headersTimeout = options.headersTimeoutMs ?? 60_000;
  const server = http.createServer(
    {
      keepAliveTimeout: 65_000,
      requestTimeout: 0,
      headersTimeout,
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, headersTimeout / 4)),
    },
    (req, res) => {
      if (bodyToCome(req)) closeAfterEarlyAnswer(req, res, headersTimeout);
      api(req, res);
    },
  );

  /** A refused socket's answer, the peer given the headers timeout to take it and hang up. */
  const refuseUpgrade = (
    socket: Duplex,
    status: number,
    message: string,
    headers?: Record<string, string>,
  ): void => refuseOnSocket(socket, headersTimeout, status, message, headers);
  limitConnections(
    server,
    { ...DEFAULT_CONNECTION_LIMITS, ...options.connectionLimits },
    {
      trustProxy: options.authThrottle?.trustProxy ?? false,
      onRefused: (source) => log.debug({ source }, "connection refused: too many from its address"),
    },
  );
  server.on("clientError", (err: Error, socket: Duplex) =>
    answerClientError(err, socket, headersTimeout),
  );
  // CONNECT is a proxy's method; nothing here tunnels to a host a request names.
  server.on("connect", (_req: IncomingMessage, socket: Duplex) => {
    socket.on("error", () => socket.destroy());
    refuseUpgrade(socket, 405, "CONNECT is not served by this relay");
  });

  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 16 * 1024 * 1024,
    handleProtocols: (protocols) =>
      protocols.has(TUNNEL_SUBPROTOCOL) ? TUNNEL_SUBPROTOCOL : false,
  });

  const links = new Set<ProviderLink>();
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    const url = parseTarget(req.url);
    if (!url) return refuseUpgrade(socket, 400, "malformed request target");
    if (url.pathname !== CONNECT_PATH)
      return refuseUpgrade(socket, 404, `no WebSocket endpoint at ${url.pathname.slice(0, 200)}`);
    const wait = throttle.wait(req);
    if (wait)
      return refuseUpgrade(
        socket,
        429,
        `too many refused keys from this address: retry in ${wait} s`,
        {
          "Retry-After": String(wait),
        },
      );
    const member = keys.member(KeyRing.bearer(req.headers.authorization));
    if (!member) {
      throttle.fail(req);
      return refuseUpgrade(socket, 401, "the API key was refused");
    }
    // Protocol 2 asks `Upgrade: club-tunnel.2`; protocol 1 is a WebSocket with the subprotocol.
    const raw = (req.headers.upgrade ?? "").trim().toLowerCase() === TUNNEL_UPGRADE_2;
    const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim());
    if (!raw && !offered.includes(TUNNEL_SUBPROTOCOL))
      return refuseUpgrade(
        socket,
        426,
        `unsupported tunnel protocol; this relay speaks ${TUNNEL_UPGRADE_2} and ${TUNNEL_SUBPROTOCOL}`,
      );
    const open = tunnels.get(member) ?? 0;
    if (open >= providerLimits.maxTunnelsPerMember)
      return refuseUpgrade(
        socket,
        429,
        `this member already has ${open} provider tunnels open; the limit is ${providerLimits.maxTunnelsPerMember}`,
        { "Retry-After": "30" },
      );
    tunnels.set(member, open + 1);
    let counted = true;
    const release = (): void => {
      if (!counted) return;
      counted = false;
      const n = (tunnels.get(member) ?? 1) - 1;
      if (n > 0) tunnels.set(member, n);
      else tunnels.delete(member);
    };
    socket.once("close", release);
    const link = (carrier: H2Carrier | WsCarrier): void => {
      const made = new ProviderLink(carrier, {
        member,
        registry,
        heartbeatMs,
        log,
        limits: providerLimits,
        ...(options.helloTimeoutMs ? { helloTimeoutMs: options.helloTimeoutMs } : {}),
      });
      // Upgraded sockets are not the HTTP server's to close: shutdown cuts them through this.
      links.add(made);
      socket.once("close", () => links.delete(made));
    };
    if (raw) {
      socket.write(SWITCH_TO_2);
      link(new H2Carrier(socket, head, { maxControlBytes: providerLimits.maxControlBytes }));
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.once("close", release);
      link(new WsCarrier(ws));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8787, options.host ?? "127.0.0.1", () => resolve());
  }).catch(async (err: unknown) => {
    ui.close();
    await media.close();
    await work.close();
    await endPool();
    throw err;
  });
  late.work = work;
  if (cluster) clusterInfo.instanceId = cluster.instanceId;
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const host = options.host ?? "127.0.0.1";
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  log.info({ url, keys: keys.size }, "relay listening on %s", url);

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    registry,
    ...(pool ? { pool } : {}),
    ...(cluster
      ? { cluster: { instanceId: cluster.instanceId, internalUrl: cluster.internalUrl } }
      : {}),
    close: () => (closing ??= shutdown()),
  };
  async function shutdown(): Promise<void> {
    // Leave the club's tables first: the other instances stop routing here.
    const leaving = cluster;
    cluster = undefined;
    await leaving?.close();
    rateLimit?.close?.();
    ui.close();
    await media.close();
    // Then: running jobs are reset at their providers and saved as queued.
    await work.close();
    for (const link of registry.all()) link.close(CloseCode.goingAway, "relay shutting down");
    for (const ws of wss.clients) ws.terminate();
    for (const link of links) link.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await endPool();
  }
}
