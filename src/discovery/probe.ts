/**
 * Probing one URL: which adapter recognises the server there, or why none does. The reasons
 * are what `club-provider detect` prints, so they say what was seen.
 */
import type { Adapter, ProbeResult, Upstream } from "../../adapters/adapter.ts";
import { adapters as allAdapters } from "../../adapters/index.ts";
import { failureCode } from "../../adapters/kit/openai-style.ts";
import { UpstreamError, describeError } from "../errors.ts";

/** Default time one adapter's probe may take; vLLM accepts connections but hangs while loading. */
export const PROBE_TIMEOUT_MS = 1_500;

export interface ProbeOptions {
  /** Only try the adapter of this name (a service's configured `engine`). */
  engine?: string | undefined;
  /** Time each adapter's probe may take, in milliseconds. */
  timeoutMs?: number | undefined;
  /** Adapters to try, in order; all known ones by default. */
  adapters?: readonly Adapter[] | undefined;
}

export interface ProbeOutcome {
  /** The adapter that recognised the server (`ready` or `loading`); absent when none did. */
  adapter?: Adapter;
  result: ProbeResult;
  /** Every adapter tried, in order, with what it concluded. */
  tried: { adapter: Adapter; result: ProbeResult }[];
}

function seconds(ms: number): string {
  return `${String(Math.round(ms / 100) / 10)} s`;
}

/** Why nothing answered (or cannot), or undefined when the error is about something else. */
function unreachableReason(err: unknown, url: string, timeoutMs: number): string | undefined {
  if (!(err instanceof UpstreamError)) return undefined;
  if (err.code === "upstream_timeout") return `no answer within ${seconds(timeoutMs)} at ${url}`;
  if (err.code === "upstream_bad_url") return err.message;
  if (err.code !== "upstream_unreachable") return undefined;
  const code = failureCode(err.cause);
  if (code === "ECONNREFUSED") return `nothing listening at ${url} (ECONNREFUSED)`;
  return err.message;
}

/**
 * For a probe that timed out: the engine known to stay silent while it loads (vLLM) that this
 * URL may be, i.e. the configured engine or one whose default port it is, with the reason.
 */
function silentLoader(
  candidates: readonly Adapter[],
  url: string,
  named: boolean,
): { adapter: Adapter; why: string } | undefined {
  if (named) {
    const adapter = candidates[0];
    return adapter?.silentWhileLoading
      ? { adapter, why: `${adapter.displayName} accepts connections but is silent while it loads` }
      : undefined;
  }
  let port: number;
  try {
    port = Number(new URL(url).port);
  } catch {
    return undefined;
  }
  const adapter = candidates.find((a) => a.silentWhileLoading && a.defaultPorts.includes(port));
  if (!adapter) return undefined;
  const why = `probably ${adapter.displayName} loading its model (it is silent while it loads, and ${port} is its port)`;
  return { adapter, why };
}

/**
 * Tries the named adapter, or each adapter in priority order, against one URL; each probe gets
 * its own `AbortSignal.timeout`. Stops at the first `ready` or `loading`, and at once when
 * nothing answers at all; a silent server is `loading` when it may be an engine that is silent
 * while it loads (`Adapter.silentWhileLoading`). Never rejects.
 * @example
 * const { adapter, result } = await probeUrl({ url: "http://127.0.0.1:8080" });
 * if (!adapter) console.log(`not served: ${result.reason}`);
 */
export async function probeUrl(
  upstream: Upstream,
  options: ProbeOptions = {},
): Promise<ProbeOutcome> {
  const timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
  const known = options.adapters ?? allAdapters;
  let candidates = known;
  if (options.engine !== undefined) {
    const named = known.find((a) => a.name === options.engine);
    if (!named) {
      const names = known.map((a) => a.name).join(", ");
      const reason = `unknown engine ${JSON.stringify(options.engine)}: use one of ${names}`;
      return { result: { status: "no", reason }, tried: [] };
    }
    candidates = [named];
  }
  const tried: ProbeOutcome["tried"] = [];
  for (const adapter of candidates) {
    let result: ProbeResult;
    try {
      result = await adapter.probe(upstream, AbortSignal.timeout(timeoutMs));
    } catch (err) {
      const down = unreachableReason(err, upstream.url, timeoutMs);
      const silent =
        err instanceof UpstreamError && err.code === "upstream_timeout"
          ? silentLoader(candidates, upstream.url, options.engine !== undefined)
          : undefined;
      if (silent) {
        const result = { status: "loading", reason: `${String(down)}: ${silent.why}` } as const;
        return { adapter: silent.adapter, result, tried };
      }
      if (down !== undefined) return { result: { status: "no", reason: down }, tried };
      result = { status: "no", reason: `probe failed: ${describeError(err)}` };
    }
    tried.push({ adapter, result });
    if (result.status !== "no") return { adapter, result, tried };
  }
  const reason =
    tried.length === 1
      ? (tried[0]?.result.reason ?? "")
      : tried.map((t) => `${t.adapter.name}: ${t.result.reason}`).join("; ");
  return { result: { status: "no", reason }, tried };
}
