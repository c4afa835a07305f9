/**
 * The check for one URL a request asks an engine to fetch. A URL passes only when every parser
 * on the way (ours, Node's WHATWG URL, the engine's Python or C++ one) must read the same host
 * from it, and that host is public: odd spellings are refused rather than interpreted.
 */
import { lookup } from "node:dns/promises";
import { endsInNumber, isPrivateAddress, parseIPv4Loose, parseIPv6 } from "./address.ts";

/** Every address a host name resolves to. */
export type Resolver = (host: string) => Promise<string[]>;

export interface UrlGuardOptions {
  /** How names are resolved (default: the system resolver, all addresses). Tests inject one. */
  resolve?: Resolver;
  /** How long a lookup may take before the URL is refused (default 2 s). */
  resolveTimeoutMs?: number;
}

/** The system resolver: every A and AAAA record, as the engine's own lookup would see them. */
export const systemResolver: Resolver = async (host) =>
  (await lookup(host, { all: true, order: "verbatim" })).map((a) => a.address);

const DEFAULT_RESOLVE_TIMEOUT_MS = 2000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The host and port of an `http(s)://` URL as a strict RFC 3986 reader sees them, or a reason. */
function splitAuthority(raw: string): { host: string; bracketed: boolean } | string {
  const m = /^(https?):\/\/([^/?#]*)/i.exec(raw);
  if (!m) return "must be written scheme://host/path";
  const authority = m[2] ?? "";
  if (authority.includes("@"))
    return "carries user info (`user@`), which parsers split differently";
  if (authority.includes("%")) return "has a percent-encoded host";
  let host: string;
  let port: string | undefined;
  const bracketed = authority.startsWith("[");
  if (bracketed) {
    const close = authority.indexOf("]");
    if (close < 0) return "has an unclosed [";
    host = authority.slice(1, close);
    const after = authority.slice(close + 1);
    if (after !== "" && !after.startsWith(":")) return "has text after the ]";
    port = after === "" ? undefined : after.slice(1);
  } else {
    const parts = authority.split(":");
    if (parts.length > 2) return "has more than one : in its host";
    [host = "", port] = parts;
    if (!/^[a-z0-9._-]+$/i.test(host)) return "has characters a host name cannot hold";
  }
  if (host === "") return "has no host";
  if (port !== undefined && (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535))
    return "has an invalid port";
  return { host: host.toLowerCase(), bracketed };
}

/**
 * Why an engine must not fetch `raw`, or undefined when it may. `data:` URIs always pass (the
 * bytes are inline); anything else must be plain `http(s)://host[:port]/…` with a public host.
 * IP literals are read in every spelling and checked; names are resolved and every address
 * must be public (see docs/decisions.md, "Fetched URLs: names are resolved and checked").
 * @example await unsafeFetchUrl("http://[::ffff:127.0.0.1]/x.png") // "… local or private …"
 */
export async function unsafeFetchUrl(
  raw: string,
  options: UrlGuardOptions = {},
): Promise<string | undefined> {
  const shown = JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}…` : raw);
  if (/^data:/i.test(raw)) return undefined;
  // Python's parsers strip or split on these where WHATWG URL drops or rewrites them.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f\\]/.test(raw))
    return `URL ${shown} holds whitespace, a control character or a backslash; parsers read such URLs differently`;
  if (/[^\u0021-\u007e]/.test(raw))
    return `URL ${shown} holds non-ASCII characters; percent-encode the path and use the host's ASCII (punycode) form`;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(raw)?.[1]?.toLowerCase();
  if (scheme === undefined) return `URL ${shown} is not a URL`;
  if (scheme !== "http" && scheme !== "https")
    return `fetched URLs must be http(s) or data: URIs, not ${scheme}:`;
  const split = splitAuthority(raw);
  if (typeof split === "string") return `URL ${shown} ${split}`;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    return `URL ${shown} is not a URL`;
  }
  const { host, bracketed } = split;
  const refuse = `URL host ${host} is a local or private address; send the file inline as a data: URI`;
  if (bracketed) {
    const ours = parseIPv6(host);
    const theirs = parseIPv6(parsed.hostname.replace(/^\[|\]$/g, ""));
    if (!ours || !theirs || Buffer.compare(ours, theirs) !== 0)
      return `URL ${shown} has an IPv6 host that parsers could read differently`;
    return isPrivateAddress(host) ? refuse : undefined;
  }
  if (endsInNumber(host)) {
    const v4 = parseIPv4Loose(host);
    if (v4 === null) return `URL ${shown} has a numeric host that is not an IPv4 address`;
    if (isPrivateAddress(host)) return refuse;
    // 0177.0.0.1 is 127.0.0.1 to WHATWG and glibc but 177.0.0.1 to others: only one spelling.
    if (!/^(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}$/.test(host) || parsed.hostname !== host)
      return `URL ${shown} writes its IPv4 host in a form parsers read differently; use dotted decimal`;
    return undefined;
  }
  if (parsed.hostname !== host)
    return `URL ${shown} has a host that parsers could read differently`;
  if (isPrivateAddress(host)) return refuse;
  const name = host.replace(/\.$/, "");
  let addresses: string[];
  try {
    const resolve = options.resolve ?? systemResolver;
    addresses = await withTimeout(
      resolve(name),
      options.resolveTimeoutMs ?? DEFAULT_RESOLVE_TIMEOUT_MS,
    );
  } catch (err) {
    return `URL host ${name} does not resolve (${(err as Error).message}); send the file inline as a data: URI`;
  }
  if (addresses.length === 0) return `URL host ${name} does not resolve`;
  const inside = addresses.find((a) => isPrivateAddress(a));
  if (inside !== undefined)
    return `URL host ${name} resolves to ${inside}, a local or private address; send the file inline as a data: URI`;
  return undefined;
}
