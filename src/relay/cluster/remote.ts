/**
 * Providers whose tunnel another instance of the club holds, and the internal HTTP/2 sessions
 * that reach those instances: one session per peer instance, opened on first use and opened
 * again after it dies. A stream to a remote provider is a stream to its instance, which passes
 * it into the tunnel (`internal.ts`).
 */
import http2, {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type OutgoingHttpHeaders,
} from "node:http2";
import type { Logger } from "../../log.ts";
import { describeError } from "../../errors.ts";
import type { Manifest, PauseFields } from "../../protocol/index.ts";
import { CONNECTION_WINDOW, tunnelSettings } from "../../transport/h2-settings.ts";
import { ProviderState } from "../provider-state.ts";

/** The header that carries the operator's cluster secret on internal streams. */
export const HEADER_CLUSTER_SECRET = "x-club-cluster-secret";
/** The header that names the provider connection an internal stream is for. */
export const HEADER_CONNECTION = "x-club-connection";

/** One row of the cluster's provider table, as `directory.ts` reads it. */
export interface ProviderRow {
  conn_id: string;
  instance_id: string;
  instance_url: string;
  member: string;
  name: string;
  version: string;
  connected_at: string | number;
  manifest: Manifest;
  pause: PauseFields | null;
  draining: boolean;
  load: number;
}

/** The HTTP/2 sessions to the other instances, by their internal URL. */
export class Peers {
  readonly #sessions = new Map<string, ClientHttp2Session>();
  readonly #streams = new WeakMap<ClientHttp2Session, number>();
  readonly #secret: string;
  readonly #log: Logger;
  #closed = false;

  constructor(secret: string, log: Logger) {
    this.#secret = secret;
    this.#log = log;
  }

  /** The live session to `url`, opened now if there is none. */
  session(url: string): ClientHttp2Session {
    const open = this.#sessions.get(url);
    if (open && !open.destroyed && !open.closed) return open;
    const session = http2.connect(url, { settings: tunnelSettings() });
    session.on("connect", () => session.setLocalWindowSize(CONNECTION_WINDOW));
    session.on("error", (err) =>
      this.#log.warn({ peer: url, err: describeError(err) }, "internal link to %s failed", url),
    );
    session.on("close", () => {
      if (this.#sessions.get(url) === session) this.#sessions.delete(url);
    });
    // An idle session must not keep a relay that is stopping alive.
    session.unref();
    if (!this.#closed) this.#sessions.set(url, session);
    else session.destroy();
    return session;
  }

  /** Whether a session to `url` is open now (it is not opened by asking). */
  connected(url: string): boolean {
    const open = this.#sessions.get(url);
    return open !== undefined && !open.destroyed;
  }

  /** Opens one stream to the provider `connId` on the instance at `url`. */
  request(
    url: string,
    connId: string,
    headers: OutgoingHttpHeaders,
    endStream: boolean,
  ): ClientHttp2Stream {
    return this.open(url, { ...headers, [HEADER_CONNECTION]: connId }, endStream);
  }

  /** Opens one internal stream to the instance at `url`, the cluster secret added. */
  open(url: string, headers: OutgoingHttpHeaders, endStream: boolean): ClientHttp2Stream {
    const session = this.session(url);
    // A session carrying streams keeps the process alive; an idle one does not.
    const open = (this.#streams.get(session) ?? 0) + 1;
    this.#streams.set(session, open);
    session.ref();
    const stream = session.request(
      { ...headers, [HEADER_CLUSTER_SECRET]: this.#secret },
      { endStream },
    );
    stream.once("close", () => {
      const left = (this.#streams.get(session) ?? 1) - 1;
      this.#streams.set(session, left);
      if (left === 0 && !session.destroyed) session.unref();
    });
    return stream;
  }

  close(): void {
    this.#closed = true;
    for (const session of this.#sessions.values()) session.destroy();
    this.#sessions.clear();
  }
}

/** A provider another instance holds, mirrored from the cluster's tables. */
export class RemoteProvider extends ProviderState {
  readonly id: string;
  readonly member: string;
  readonly connectedAt: number;
  instanceId: string;
  instanceUrl: string;
  /** The load its instance last published (streams it has open to the provider). */
  published = 0;
  readonly #peers: Peers;

  constructor(row: ProviderRow, peers: Peers) {
    super();
    this.id = row.conn_id;
    this.member = row.member;
    this.connectedAt = Number(row.connected_at);
    this.instanceId = row.instance_id;
    this.instanceUrl = row.instance_url;
    this.#peers = peers;
    this.update(row);
  }

  /** Takes a newer row of the same connection. */
  update(row: ProviderRow): void {
    this.name = row.name;
    this.version = row.version;
    this.instanceId = row.instance_id;
    this.instanceUrl = row.instance_url;
    this.draining = row.draining;
    this.pause = row.pause;
    this.published = row.load;
    this.setManifest(row.manifest);
  }

  override get load(): number {
    return this.inFlight + this.published;
  }

  get routable(): boolean {
    return this.manifest !== null && !this.draining && this.paused === undefined;
  }

  /** `destroyed` once the session to the provider's instance is gone. */
  get session(): { readonly destroyed: boolean } {
    return { destroyed: !this.#peers.connected(this.instanceUrl) };
  }

  request(headers: OutgoingHttpHeaders, endStream: boolean): ClientHttp2Stream {
    return this.#peers.request(this.instanceUrl, this.id, headers, endStream);
  }
}
