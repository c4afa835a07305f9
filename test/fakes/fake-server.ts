/**
 * What every fake engine shares: a real `node:http` server on 127.0.0.1, request recording,
 * a gate that holds generations until a test releases it, abrupt `kill()`, and the one way the
 * fakes write a typed answer with its length (`send`, `json`).
 */
import { EventEmitter } from "node:events";
import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/** Writes `body` as a `type` answer with its `Content-Length`. */
export function send(
  res: ServerResponse,
  status: number,
  body: string | Buffer,
  type: string,
  headers: OutgoingHttpHeaders = {},
): void {
  res.writeHead(status, {
    "Content-Type": type,
    "Content-Length": Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

/**
 * Writes `body` as JSON with its length; `headers` add to the answer (llama-server's
 * `Connection: close`), and `type` replaces `application/json` (its `; charset=utf-8`).
 */
export function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: OutgoingHttpHeaders = {},
  type = "application/json",
): void {
  send(res, status, JSON.stringify(body), type, headers);
}

/** `http://127.0.0.1:<port>` of a listening server. */
export function loopbackUrl(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Listens on 127.0.0.1 (`port` 0: a free one) and resolves to the base URL. */
export async function listenLoopback(server: Server, port = 0): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return loopbackUrl(server);
}

/** Stops listening and drops every connection, mid-response or not. */
export async function closeNow(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

/** Answers `GET /v1/models` with an OpenAI model list of the one model `id`. */
export function oneModelList(res: ServerResponse, id: string, ownedBy: string): void {
  json(res, 200, { object: "list", data: [{ id, object: "model", owned_by: ownedBy }] });
}

/** One request as the fake received it. */
export interface RecordedRequest {
  method: string;
  /** Path with query, e.g. `/props?model=x`. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body; undefined when there was none or it was not JSON (see `rawBody`). */
  body: unknown;
  rawBody: string;
  /** The body's bytes (multipart uploads are binary; `rawBody` is their UTF-8 reading). */
  bytes: Buffer;
}

export interface FakeEvents {
  /** A request's headers arrived; its body is still to be read. */
  started: [method: string, path: string];
  /** A request arrived and its body was read. */
  request: [RecordedRequest];
  /** The client closed the connection before a response was complete. */
  "client-closed": [RecordedRequest];
}

export interface FakeBaseOptions {
  port?: number;
  loading?: boolean;
  /** Pause between generated tokens, in milliseconds. */
  tokenDelayMs?: number;
}

/** One generation's link to its fake, from `FakeServer.track`. */
export interface Generation {
  /** True once the client went away (or the response ended). */
  closed(): boolean;
  /** Counts the generation as run to its end. */
  complete(): void;
}

/** A parsed request body: JSON, malformed, or absent. */
export type Body =
  { kind: "json"; value: unknown } | { kind: "bad"; error: string } | { kind: "none" };

export abstract class FakeServer extends EventEmitter<FakeEvents> {
  readonly requests: RecordedRequest[] = [];
  /** Responses the client closed before they were complete. */
  closedEarly = 0;
  /** Generations that ran to their end. */
  completed = 0;
  /** Generations running now (what `/slots` reports as processing). */
  inFlight = 0;
  loading: boolean;
  private readonly tokenDelayMs: number;
  private readonly port: number;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private gate: { promise: Promise<void>; open: () => void } | undefined;

  constructor(options: FakeBaseOptions) {
    super();
    this.port = options.port ?? 0;
    this.loading = options.loading ?? false;
    this.tokenDelayMs = options.tokenDelayMs ?? 0;
    this.server = createServer((req, res) => void this.dispatch(req, res));
    this.server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  /** Answers one request; `body` is already read. */
  protected abstract handle(req: RecordedRequest, body: Body, res: ServerResponse): Promise<void>;

  /** Listens on 127.0.0.1 and resolves to the base URL, e.g. `http://127.0.0.1:41234`. */
  start(): Promise<string> {
    return listenLoopback(this.server, this.port);
  }

  /** The listening server, for fakes that also take WebSocket upgrades (ComfyUI's `/ws`). */
  protected get httpServer(): Server {
    return this.server;
  }

  get url(): string {
    return loopbackUrl(this.server);
  }

  setLoading(loading: boolean): void {
    this.loading = loading;
  }

  /** Holds every generation before its next token until `resumeGenerations()`. */
  pauseGenerations(): void {
    if (this.gate) return;
    let open = (): void => undefined;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.gate = { promise, open };
  }

  resumeGenerations(): void {
    this.gate?.open();
    this.gate = undefined;
  }

  /** Waits before producing one token: the gate, then `tokenDelayMs`. */
  async beforeToken(): Promise<void> {
    while (this.gate) await this.gate.promise;
    if (this.tokenDelayMs > 0) await sleep(this.tokenDelayMs);
  }

  /** Counts a generation as in flight until its response closes, finished or not. */
  track(res: ServerResponse): Generation {
    this.inFlight++;
    let closed = false;
    res.on("close", () => {
      closed = true;
      this.inFlight--;
    });
    return {
      closed: () => closed,
      complete: () => {
        this.completed++;
      },
    };
  }

  /** Stops listening and drops every connection. */
  async stop(): Promise<void> {
    this.resumeGenerations();
    await closeNow(this.server);
  }

  /** Crashes: every socket is destroyed at once, mid-response or not, and nothing listens. */
  kill(): void {
    this.server.close();
    for (const socket of this.sockets) socket.destroy();
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    this.emit("started", req.method ?? "GET", req.url ?? "/");
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer);
    } catch {
      return; // the client went away mid-upload: there is no one to answer
    }
    const bytes = Buffer.concat(chunks);
    const rawBody = bytes.toString("utf8");
    let body: Body = { kind: "none" };
    if (rawBody !== "") {
      try {
        body = { kind: "json", value: JSON.parse(rawBody) };
      } catch (err) {
        body = { kind: "bad", error: (err as Error).message };
      }
    }
    const recorded: RecordedRequest = {
      method: req.method ?? "GET",
      path: req.url ?? "/",
      headers: req.headers,
      body: body.kind === "json" ? body.value : undefined,
      rawBody,
      bytes,
    };
    this.requests.push(recorded);
    res.on("close", () => {
      if (res.writableFinished) return;
      this.closedEarly++;
      // After the other close listeners, so `inFlight` is already down when tests hear it.
      queueMicrotask(() => this.emit("client-closed", recorded));
    });
    this.emit("request", recorded);
    try {
      await this.handle(recorded, body, res);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500).end(String(err));
      else res.destroy();
    }
  }
}
