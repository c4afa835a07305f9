/**
 * The benchmark's processes on loopback: the fake upstream, the single-hop proxy, and the real
 * relay and daemon (`bin/club-provider relay` and `start`), each its own process. A second
 * relay and daemon speak tunnel protocol 1 (HTTP/2 inside a WebSocket), so both protocols are
 * measured side by side in one run (`BENCH_TUNNEL1=0` leaves it out).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MODEL } from "./common.ts";
import { nginxBinary, startNginx } from "./nginx.ts";
import { benchNodeArgs, startCli, startServer, until, type Proc } from "./procs.ts";

export const KEY = "sk-bench-0123456789abcdef";

/** The ways to the upstream, as origins; `key` only matters to the relay. */
export interface Targets {
  direct: string;
  /** Only when nginx is installed. */
  nginx?: string;
  proxy: string;
  /** The tunnel on protocol 2 (HTTP/2 on the upgraded socket), this release's default. */
  tunnel: string;
  /** The tunnel on protocol 1 (HTTP/2 inside a WebSocket), when measured. */
  tunnel1?: string;
}

/** A relay and a daemon on their own ports and home, speaking one tunnel protocol. */
/**
 * The settings a bench run passes on to its relays and daemons when set, e.g.
 * `CLUB_HEAP_GROWTH_PERCENT=0` to measure them with V8's own heap growth.
 */
const PASSED_ENV = ["CLUB_LOG_LEVEL", "CLUB_HEAP_GROWTH_PERCENT"];

function passed(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PASSED_ENV) {
    const value = process.env[name];
    if (value) out[name] = value;
  }
  return out;
}

class TunnelPair {
  relay!: Proc;
  daemon!: Proc;
  readonly url: string;
  readonly #dir: string;
  readonly #relayPort: number;
  readonly #statusPort: number;
  readonly #protocol: 1 | 2;
  readonly #procs: Proc[];

  constructor(dir: string, ports: [number, number], protocol: 1 | 2, procs: Proc[]) {
    this.#dir = dir;
    [this.#relayPort, this.#statusPort] = ports;
    this.#protocol = protocol;
    this.#procs = procs;
    this.url = `http://127.0.0.1:${this.#relayPort}`;
  }

  /** Writes the key and the daemon's settings (`services`) into this pair's home. */
  prepare(services: unknown[]): void {
    writeFileSync(join(this.#dir, "keys.json"), JSON.stringify({ [KEY]: "bench" }));
    writeFileSync(join(this.#dir, "key.txt"), KEY, { mode: 0o600 });
    const conf = join(this.#dir, "config", "club-provider");
    mkdirSync(conf, { recursive: true });
    writeFileSync(join(conf, "config.json"), JSON.stringify({ services }), { mode: 0o600 });
  }

  #env(): Record<string, string> {
    return {
      HOME: this.#dir,
      XDG_CONFIG_HOME: join(this.#dir, "config"),
      ...passed(),
    };
  }

  async startRelay(): Promise<number> {
    const args = [
      "relay",
      "--port",
      String(this.#relayPort),
      "--keys",
      join(this.#dir, "keys.json"),
      // The benchmark measures the path, not the per-key limit.
      "--rate-limit",
      "0",
    ];
    this.relay = startCli(args, this.#env());
    this.#procs.push(this.relay);
    return until(`${this.url}/healthz`, (s) => s === 200);
  }

  async startDaemon(): Promise<void> {
    const args = ["start", "--relay", this.url.replace("http", "ws")];
    args.push("--api-key-file", join(this.#dir, "key.txt"), "--name", "bench", "--no-autodetect");
    args.push("--status-port", String(this.#statusPort));
    args.push("--tunnel-protocol", String(this.#protocol));
    this.daemon = startCli(args, this.#env());
    this.#procs.push(this.daemon);
    await this.registered();
  }

  registered(everyMs = 5): Promise<number> {
    return until(`${this.url}/v1/models`, (s, t) => s === 200 && t.includes(MODEL), {
      everyMs,
      headers: { authorization: `Bearer ${KEY}` },
    });
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Everything running, and how to restart the relay or the daemon (of protocol 2). */
export class BenchStack {
  upstream!: Proc & { port: number };
  proxy!: Proc & { port: number };
  nginx: (Proc & { port: number }) | undefined;
  /** Every process started, so `stop` ends them even after a failed start. */
  readonly #procs: Proc[] = [];
  targets!: Targets;
  readonly #dir = mkdtempSync(join(tmpdir(), "club-bench-"));
  #pair!: TunnelPair;
  /** The protocol 1 relay and daemon, when measured. */
  pair1: TunnelPair | undefined;

  get relay(): Proc {
    return this.#pair.relay;
  }

  get daemon(): Proc {
    return this.#pair.daemon;
  }

  async start(): Promise<void> {
    this.upstream = await startServer("upstream.ts");
    this.#procs.push(this.upstream);
    const upstreamUrl = `http://127.0.0.1:${this.upstream.port}`;
    this.proxy = await startServer("proxy.ts", [upstreamUrl], benchNodeArgs());
    this.#procs.push(this.proxy);
    const nginx = nginxBinary();
    if (nginx) {
      this.nginx = await startNginx(
        nginx,
        join(this.#dir, "nginx"),
        await freePort(),
        this.upstream.port,
      );
      this.#procs.push(this.nginx);
    }
    // The upstream's capacity is not what is measured: let every request through at once.
    const services = [{ url: upstreamUrl, engine: "openai", maxConcurrent: 4096 }];
    this.#pair = new TunnelPair(this.#dir, [await freePort(), await freePort()], 2, this.#procs);
    this.#pair.prepare(services);
    if (process.env.BENCH_TUNNEL1 !== "0") {
      const dir = join(this.#dir, "protocol1");
      mkdirSync(dir);
      this.pair1 = new TunnelPair(dir, [await freePort(), await freePort()], 1, this.#procs);
      this.pair1.prepare(services);
    }
    this.targets = {
      direct: upstreamUrl,
      proxy: `http://127.0.0.1:${this.proxy.port}`,
      ...(this.nginx ? { nginx: `http://127.0.0.1:${this.nginx.port}` } : {}),
      tunnel: this.#pair.url,
      ...(this.pair1 ? { tunnel1: this.pair1.url } : {}),
    };
    await this.startRelay();
    await this.startDaemon();
    if (this.pair1) {
      await this.pair1.startRelay();
      await this.pair1.startDaemon();
    }
  }

  /** Starts the relay; resolves (with the time) once it answers. */
  startRelay(): Promise<number> {
    return this.#pair.startRelay();
  }

  /** Starts the daemon; resolves once the relay lists its model. */
  startDaemon(): Promise<void> {
    return this.#pair.startDaemon();
  }

  /** Resolves (with the time) once the relay lists the daemon's model. */
  registered(everyMs = 5): Promise<number> {
    return this.#pair.registered(everyMs);
  }

  async stop(): Promise<void> {
    await Promise.all(this.#procs.map((p) => p.stop()));
  }
}
