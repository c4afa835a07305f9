/**
 * The benchmark's processes on loopback: the fake upstream, the single-hop proxy, and the real
 * relay and daemon (`bin/club-provider relay` and `start`), each its own process.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MODEL } from "./common.ts";
import { nginxBinary, startNginx } from "./nginx.ts";
import { startCli, startServer, until, type Proc } from "./procs.ts";

export const KEY = "sk-bench-0123456789abcdef";

/** The ways to the upstream, as origins; `key` only matters to the relay. */
export interface Targets {
  direct: string;
  /** Only when nginx is installed. */
  nginx?: string;
  proxy: string;
  tunnel: string;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Everything running, and how to restart the relay or the daemon. */
export class BenchStack {
  relay!: Proc;
  daemon!: Proc;
  upstream!: Proc & { port: number };
  proxy!: Proc & { port: number };
  nginx: (Proc & { port: number }) | undefined;
  /** Every process started, so `stop` ends them even after a failed start. */
  readonly #procs: Proc[] = [];
  targets!: Targets;
  readonly #dir = mkdtempSync(join(tmpdir(), "club-bench-"));
  #relayPort = 0;
  #statusPort = 0;

  async start(): Promise<void> {
    this.upstream = await startServer("upstream.ts");
    this.#procs.push(this.upstream);
    const upstreamUrl = `http://127.0.0.1:${this.upstream.port}`;
    this.proxy = await startServer("proxy.ts", [upstreamUrl]);
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
    [this.#relayPort, this.#statusPort] = [await freePort(), await freePort()];
    writeFileSync(join(this.#dir, "keys.json"), JSON.stringify({ [KEY]: "bench" }));
    writeFileSync(join(this.#dir, "key.txt"), KEY, { mode: 0o600 });
    const conf = join(this.#dir, "config", "club-provider");
    mkdirSync(conf, { recursive: true });
    // The upstream's capacity is not what is measured: let every request through at once.
    const services = [{ url: upstreamUrl, engine: "openai", maxConcurrent: 4096 }];
    writeFileSync(join(conf, "config.json"), JSON.stringify({ services }), { mode: 0o600 });
    this.targets = {
      direct: upstreamUrl,
      proxy: `http://127.0.0.1:${this.proxy.port}`,
      ...(this.nginx ? { nginx: `http://127.0.0.1:${this.nginx.port}` } : {}),
      tunnel: `http://127.0.0.1:${this.#relayPort}`,
    };
    await this.startRelay();
    await this.startDaemon();
  }

  #env(): Record<string, string> {
    return {
      HOME: this.#dir,
      XDG_CONFIG_HOME: join(this.#dir, "config"),
      ...(process.env.CLUB_LOG_LEVEL ? { CLUB_LOG_LEVEL: process.env.CLUB_LOG_LEVEL } : {}),
    };
  }

  /** Starts the relay; resolves (with the time) once it answers. */
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
    return until(`${this.targets.tunnel}/healthz`, (s) => s === 200);
  }

  /** Starts the daemon; resolves once the relay lists its model. */
  async startDaemon(): Promise<void> {
    const args = ["start", "--relay", this.targets.tunnel.replace("http", "ws")];
    args.push("--api-key-file", join(this.#dir, "key.txt"), "--name", "bench", "--no-autodetect");
    args.push("--status-port", String(this.#statusPort));
    this.daemon = startCli(args, this.#env());
    this.#procs.push(this.daemon);
    await this.registered();
  }

  /** Resolves (with the time) once the relay lists the daemon's model. */
  registered(everyMs = 5): Promise<number> {
    return until(`${this.targets.tunnel}/v1/models`, (s, t) => s === 200 && t.includes(MODEL), {
      everyMs,
      headers: { authorization: `Bearer ${KEY}` },
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.#procs.map((p) => p.stop()));
  }
}
