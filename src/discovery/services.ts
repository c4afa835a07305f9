/**
 * Turning one configured or auto-detected URL into a `Service`: probe, describe, name it,
 * apply the operator's aliases and concurrency.
 */
import type { Adapter, ServiceInfo, Upstream } from "../../adapters/adapter.ts";
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { DiscoverOptions, Service, ServiceConfig } from "./catalog.ts";
import { probeUrl } from "./probe.ts";

export interface ResolveContext {
  adapters: readonly Adapter[];
  timeoutMs: number;
  log: Logger;
}

function portOf(url: string): string {
  try {
    const u = new URL(url);
    return u.port || (u.protocol === "https:" ? "443" : "80");
  } catch {
    return "invalid-url";
  }
}

/** A URL in a comparable form: loopback spellings folded, no trailing slash. */
function sameUrlKey(url: string): string {
  try {
    const u = new URL(url);
    const host = ["localhost", "0.0.0.0", "[::1]", "[::]"].includes(u.hostname)
      ? "127.0.0.1"
      : u.hostname;
    return `${u.protocol}//${host}:${portOf(url)}${u.pathname.replace(/\/+$/, "")}`;
  } catch {
    return url;
  }
}

/** The URLs auto-detection probes: each port once, minus URLs the config already lists. */
export function autodetectCandidates(
  options: DiscoverOptions,
  adapters: readonly Adapter[],
): string[] {
  const host = options.host ?? "127.0.0.1";
  const ports = options.ports ?? adapters.flatMap((a) => a.defaultPorts);
  const configured = new Set(options.services.map((s) => sameUrlKey(s.url)));
  const urls = [...new Set(ports)].map((port) => `http://${host}:${port}`);
  return urls.filter((url) => !configured.has(sameUrlKey(url)));
}

/** For a service nothing recognised: the configured engine, else the one whose port it is. */
function guessAdapter(
  url: string,
  engine: string | undefined,
  adapters: readonly Adapter[],
): Adapter {
  const port = Number(portOf(url));
  const guess =
    adapters.find((a) => a.name === engine) ??
    adapters.find((a) => a.defaultPorts.includes(port)) ??
    adapters[adapters.length - 1];
  if (!guess) throw new Error("discovery needs at least one adapter");
  return guess;
}

/**
 * Replaces derived ids by the operator's aliases (advertised id → served id, or the derived
 * id). A model with two aliases is advertised twice. Returns the aliases that matched nothing.
 */
export function applyAliases(
  info: ServiceInfo,
  aliases: Record<string, string> | undefined,
): { info: ServiceInfo; unmatched: string[] } {
  const entries = Object.entries(aliases ?? {});
  if (entries.length === 0) return { info, unmatched: [] };
  const used = new Set<string>();
  const models = info.models.flatMap((model) => {
    const names = entries
      .filter(([, target]) => target === model.servedId || target === model.id)
      .map(([alias]) => alias);
    for (const name of names) used.add(name);
    return names.length === 0 ? [model] : names.map((id) => ({ ...model, id }));
  });
  const unmatched = entries.map(([alias]) => alias).filter((a) => !used.has(a));
  return { info: { ...info, models }, unmatched };
}

/**
 * Probes one URL and builds its `Service`. Resolves to undefined for an auto-detected URL where
 * no engine answered; a configured one is always kept, `down` with the reason.
 */
export async function resolveService(
  from: { config: ServiceConfig } | { url: string },
  ctx: ResolveContext,
): Promise<Service | undefined> {
  const config = "config" in from ? from.config : undefined;
  const url = ("config" in from ? from.config.url : from.url).replace(/\/+$/, "");
  const upstream: Upstream = config?.apiKey ? { url, apiKey: config.apiKey } : { url };
  if (config?.comfyui) upstream.settings = { comfyui: config.comfyui };
  const probe = await probeUrl(upstream, {
    engine: config?.engine,
    timeoutMs: ctx.timeoutMs,
    adapters: ctx.adapters,
  });
  if (!probe.adapter && !config) return undefined;
  const adapter = probe.adapter ?? guessAdapter(url, config?.engine, ctx.adapters);
  const name = config?.name ?? `${adapter.name}-${portOf(url)}`;
  const base = {
    name,
    adapter,
    upstream,
    info: null,
    maxConcurrent: config?.maxConcurrent ?? 1,
    ...(config?.resourceGroup ? { resourceGroup: config.resourceGroup } : {}),
  };
  if (!probe.adapter) return { ...base, status: "down", reason: probe.result.reason };
  if (probe.result.status === "loading")
    return { ...base, status: "loading", reason: probe.result.reason };

  let described: ServiceInfo;
  try {
    // Describing takes a few requests (router mode: one per loaded model).
    const signal = AbortSignal.timeout(Math.max(4 * ctx.timeoutMs, 5_000));
    described = await adapter.describe(upstream, signal);
  } catch (err) {
    const reason = `${adapter.displayName} answers, but listing its models failed: ${describeError(err)}`;
    return { ...base, status: "down", reason };
  }
  const { info, unmatched } = applyAliases(described, config?.aliases);
  let reason = probe.result.reason;
  if (info.notes?.length) reason += `; ${info.notes.join("; ")}`;
  if (unmatched.length > 0) {
    const list = unmatched.map((a) => JSON.stringify(a)).join(", ");
    reason += `; alias ${list} matches no model it serves`;
    ctx.log.warn({ service: name, aliases: unmatched }, `${name}: alias ${list} matches no model`);
  }
  return {
    ...base,
    info,
    status: "ready",
    reason,
    maxConcurrent: config?.maxConcurrent ?? info.maxConcurrent ?? 1,
  };
}
