/**
 * The checks of `club-provider doctor`. Each says what it found and, when something is wrong,
 * how to fix it. They never throw: every failure becomes a result.
 */
import WebSocket from "ws";
import type { Config } from "../config.ts";
import { discover } from "../discovery/catalog.ts";
import { describeError } from "../errors.ts";
import { silentLogger } from "../log.ts";
import { CONNECT_PATH, TUNNEL_SUBPROTOCOL } from "../protocol/index.ts";

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

/**
 * Opens the tunnel's WebSocket with the key and closes it as soon as the relay accepts, before
 * `hello`: the relay checks the key and the protocol, and nothing gets registered.
 */
export function checkKey(
  relayUrl: string,
  apiKey: string,
  timeoutMs: number,
): Promise<CheckResult> {
  const name = "API key accepted";
  return new Promise((resolve) => {
    const ws = new WebSocket(relayUrl.replace(/\/+$/, "") + CONNECT_PATH, TUNNEL_SUBPROTOCOL, {
      headers: { authorization: `Bearer ${apiKey}` },
      perMessageDeflate: false,
      handshakeTimeout: timeoutMs,
    });
    const done = (r: CheckResult): void => {
      ws.removeAllListeners();
      ws.on("error", () => undefined);
      ws.terminate();
      resolve(r);
    };
    ws.on("open", () => {
      ws.close(1000, "doctor");
      done({
        name,
        status: "ok",
        detail: `the relay accepted the key (${TUNNEL_SUBPROTOCOL} handshake)`,
      });
    });
    ws.on("unexpected-response", (_req, res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      if (status === 401 || status === 403)
        done({
          name,
          status: "fail",
          detail: `the relay refused the API key (HTTP ${status})`,
          fix: "use the key the club gave you: CLUB_API_KEY, --api-key-file FILE, or `club-provider config set apiKey <key>`",
        });
      else if (status === 426)
        done({
          name,
          status: "fail",
          detail: `the relay does not speak ${TUNNEL_SUBPROTOCOL}`,
          fix: "update club-provider (or the relay) so both speak the same tunnel version",
        });
      else
        done({
          name,
          status: "fail",
          detail: `the relay answered the tunnel handshake with HTTP ${status}`,
          fix: `is ${relayUrl} a club relay? A proxy in front of it must pass WebSocket upgrades on ${CONNECT_PATH}`,
        });
    });
    ws.on("error", (err) =>
      done({ name, status: "fail", detail: `tunnel handshake failed: ${describeError(err)}` }),
    );
  });
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
