/**
 * The checks of `club-provider doctor`. Each says what it found and, when something is wrong,
 * how to fix it. They never throw: every failure becomes a result.
 */
import http2 from "node:http2";
import type { Config, TunnelProtocolSetting } from "../config.ts";
import { discover } from "../discovery/catalog.ts";
import { describeError } from "../errors.ts";
import { silentLogger } from "../log.ts";
import {
  CONNECT_PATH,
  CloseCode,
  TUNNEL_SUBPROTOCOL,
  TUNNEL_UPGRADE_2,
} from "../protocol/index.ts";
import { H2Link } from "../tunnel/h2-link.ts";
import type { TunnelLink } from "../tunnel/link.ts";
import { WsLink } from "../tunnel/ws-link.ts";
import { classifyRefusal } from "../tunnel/refusal.ts";

/** One check's outcome. `fail` makes doctor exit 1; `warn` does not. */
export interface CheckResult {
  name: string;
  status: "ok" | "warn" | "fail" | "skip";
  detail: string;
  fix?: string;
}

const MIN_NODE: [number, number] = [22, 19];

/** Node.js must be ≥ 22.19 (what `engines` says and the entry checks). */
export function checkNode(version = process.versions.node): CheckResult {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  const ok = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  return ok
    ? { name: "Node.js", status: "ok", detail: `v${version} (needs ≥ ${MIN_NODE.join(".")})` }
    : {
        name: "Node.js",
        status: "fail",
        detail: `v${version} is too old (needs ≥ ${MIN_NODE.join(".")})`,
        fix: "install a current LTS from https://nodejs.org, your distribution (NodeSource) or `nvm install --lts`",
      };
}

/** The relay's HTTP base URL for a `ws://`/`wss://` relay URL. */
export function httpBase(relayUrl: string): string {
  return relayUrl.replace(/^ws/, "http").replace(/\/+$/, "");
}

function code(err: unknown): string {
  let e: unknown = err;
  for (let i = 0; i < 4 && e instanceof Error; i++) {
    const c = (e as NodeJS.ErrnoException).code;
    if (c) return c;
    e = e.cause;
  }
  return describeError(err);
}

/** Any HTTP answer from the relay's host counts: the network path is there. */
export async function checkRelayReachable(
  relayUrl: string,
  timeoutMs: number,
): Promise<CheckResult> {
  const url = `${httpBase(relayUrl)}/healthz`;
  const t0 = performance.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    const ms = Math.round(performance.now() - t0);
    return {
      name: "relay reachable",
      status: "ok",
      detail: `${httpBase(relayUrl)} answered in ${ms} ms`,
    };
  } catch (err) {
    const why =
      (err as Error).name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : code(err);
    return {
      name: "relay reachable",
      status: "fail",
      detail: `cannot reach ${httpBase(relayUrl)} (${why})`,
      fix: `is the relay running, and is the URL right? Check --relay, CLUB_RELAY_URL or \`club-provider config get relayUrl\`; try \`curl ${url}\` from this machine (a firewall or proxy may be in the way)`,
    };
  }
}

/** How one connect request ended: the relay switched protocols, answered a status, or failed. */
type Handshake = { accepted: true } | { status: number } | { error: string };

/**
 * Makes the daemon's own connect request for `protocol` (the same link classes the tunnel
 * uses) and closes the connection as soon as the relay accepts, before `hello`: the relay
 * checks the key and the protocol, and nothing gets registered.
 */
function handshake(
  url: string,
  apiKey: string,
  timeoutMs: number,
  protocol: 1 | 2,
): Promise<Handshake> {
  // Protocol 1 hands the HTTP/2 connection inside to a server; doctor never serves it.
  const server = protocol === 1 ? http2.createServer() : undefined;
  const link: TunnelLink = server
    ? new WsLink(url, apiKey, server, timeoutMs)
    : new H2Link(url, apiKey, 1, timeoutMs);
  return new Promise((resolve) => {
    const done = (r: Handshake): void => {
      link.removeAllListeners();
      link.on("error", () => undefined);
      // A turn later: Node's HTTP/2 hands the socket's first bytes to a new session on the
      // next tick, and a session destroyed before that throws in Node's own code.
      setImmediate(() => {
        if ("accepted" in r) link.close(CloseCode.normal, "doctor");
        else link.terminate();
        server?.close();
      });
      resolve(r);
    };
    link.on("open", () => done({ accepted: true }));
    link.on("unexpected", (status: number) => done({ status }));
    link.on("error", (err: unknown) => done({ error: describeError(err) }));
    link.on("close", () => done({ error: "the connection closed during the handshake" }));
  });
}

/**
 * Checks the key with the protocol the daemon would speak (`tunnelProtocol`): under `auto`,
 * protocol 2, and protocol 1 when the relay or a proxy before it refuses protocol 2 the way
 * the daemon falls back on.
 */
export async function checkKey(
  relayUrl: string,
  apiKey: string,
  timeoutMs: number,
  setting: TunnelProtocolSetting = "auto",
): Promise<CheckResult> {
  const url = relayUrl.replace(/\/+$/, "") + CONNECT_PATH;
  const first = setting === 1 ? 1 : 2;
  const r = await handshake(url, apiKey, timeoutMs, first);
  if ("status" in r && classifyRefusal(r.status, first, setting) === "fallback") {
    const again = await handshake(url, apiKey, timeoutMs, 1);
    const why = `the relay, or a proxy before it, answered ${TUNNEL_UPGRADE_2} with HTTP ${r.status}`;
    const result = keyResult(again, 1, relayUrl);
    if (result.status !== "ok") return { ...result, detail: `${result.detail} (${why})` };
    return {
      ...result,
      status: "warn",
      detail: `${result.detail}; ${why}, so the daemon falls back to ${TUNNEL_SUBPROTOCOL}`,
      fix: `${TUNNEL_SUBPROTOCOL} works; for the cheaper ${TUNNEL_UPGRADE_2}, update the relay, or have the proxy pass the Upgrade header as it comes on ${CONNECT_PATH} (README, "Behind a TLS proxy")`,
    };
  }
  return keyResult(r, first, relayUrl);
}

function keyResult(r: Handshake, protocol: 1 | 2, relayUrl: string): CheckResult {
  const name = "API key accepted";
  const version = protocol === 2 ? TUNNEL_UPGRADE_2 : TUNNEL_SUBPROTOCOL;
  if ("accepted" in r)
    return { name, status: "ok", detail: `the relay accepted the key (${version} handshake)` };
  if ("error" in r) return { name, status: "fail", detail: `tunnel handshake failed: ${r.error}` };
  const { status } = r;
  if (status === 401 || status === 403)
    return {
      name,
      status: "fail",
      detail: `the relay refused the API key (HTTP ${status})`,
      fix: "use the key the club gave you: CLUB_API_KEY, --api-key-file FILE, or `club-provider config set apiKey <key>`",
    };
  if (status === 426)
    return {
      name,
      status: "fail",
      detail: `the relay does not speak ${version}`,
      fix: "update club-provider (or the relay) so both speak the same tunnel version",
    };
  return {
    name,
    status: "fail",
    detail: `the relay answered the tunnel handshake with HTTP ${status}`,
    fix: `is ${relayUrl} a club relay? A proxy in front of it must pass upgrades on ${CONNECT_PATH}`,
  };
}

/**
 * One warning per ComfyUI workflow the engine's describe skipped (`skipped <file>: <why>`): a
 * node class or file it lacks, or a fixed value outside its node's `/object_info` limits,
 * which ComfyUI would refuse on every request.
 */
function skippedWorkflows(name: string, notes: string[]): CheckResult[] {
  return notes
    .filter((n) => n.startsWith("skipped "))
    .map((n) => ({
      name: `${name} workflow`,
      status: "warn" as const,
      detail: n.slice("skipped ".length),
      fix: "install what it names, or correct the value in the workflow file (see docs/comfyui-workflows.md)",
    }));
}

/** Every configured engine must answer; at least one engine must serve models. */
export async function checkEngines(config: Config): Promise<CheckResult[]> {
  const catalog = await discover({
    services: config.services,
    autodetect: config.autodetect,
    log: silentLogger,
  });
  const results = catalog.services.flatMap((s): CheckResult[] => {
    const name = `engine ${s.name}`;
    if (s.status === "ready") {
      const models = s.info?.models.map((m) => m.id) ?? [];
      return [
        {
          name,
          status: "ok",
          detail: `${s.upstream.url}: ${models.length} model(s): ${models.join(", ")}`,
        },
        ...skippedWorkflows(name, s.info?.notes ?? []),
      ];
    }
    if (s.status === "loading")
      return [
        {
          name,
          status: "warn",
          detail: `${s.upstream.url}: ${s.reason}`,
          fix: "wait until it has loaded its model",
        },
      ];
    return [
      {
        name,
        status: "fail",
        detail: `${s.upstream.url}: ${s.reason}`,
        fix: "start it, or correct or remove its URL (--service, or `club-provider config get services`)",
      },
    ];
  });
  if (!catalog.ready.length)
    results.push({
      name: "engines",
      status: "fail",
      detail: `no model server answers${config.autodetect ? " (default ports probed too)" : ""}`,
      fix: "start one (e.g. `llama-server -m model.gguf --port 8080`) or point at it with --service http://HOST:PORT",
    });
  return results;
}
