/**
 * IP addresses in every spelling a URL parser accepts, reduced to bytes before anything is
 * decided about them: `[::ffff:7f00:1]`, `2130706433`, `0x7f.1` and `127.0.0.1` are one address.
 * Private means "this machine, its network, or no real host": what an engine must never fetch.
 */
import { isIP } from "node:net";

/**
 * Reads a host the way WHATWG URL's IPv4 parser does: one to four dot-separated parts, each
 * decimal, `0x` hex or `0`-led octal, the last filling the remaining bytes. Returns the address
 * as an unsigned 32-bit number, or null when the host is not numeric in that sense.
 * @example parseIPv4Loose("0x7f.1") // 2130706433, which is 127.0.0.1
 */
export function parseIPv4Loose(host: string): number | null {
  const parts = host.split(".");
  if (parts.length > 1 && parts.at(-1) === "") parts.pop();
  if (parts.length === 0 || parts.length > 4) return null;
  const values: number[] = [];
  for (const part of parts) {
    let n: number;
    if (/^0x[0-9a-f]*$/i.test(part)) n = part.length === 2 ? 0 : parseInt(part.slice(2), 16);
    else if (/^0[0-7]+$/.test(part)) n = parseInt(part.slice(1), 8);
    else if (/^(0|[1-9][0-9]*)$/.test(part)) n = Number(part);
    else return null;
    values.push(n);
  }
  const last = values.pop() ?? 0;
  if (values.some((v) => v > 255)) return null;
  if (last >= 256 ** (4 - values.length)) return null;
  let address = 0;
  for (const [i, v] of values.entries()) address += v * 256 ** (3 - i);
  return address + last;
}

/** True when the host's last label is a number, so WHATWG URL parses it as IPv4 (or fails). */
export function endsInNumber(host: string): boolean {
  const labels = host.split(".");
  if (labels.length > 1 && labels.at(-1) === "") labels.pop();
  const last = labels.at(-1) ?? "";
  return /^[0-9]+$/.test(last) || /^0x[0-9a-f]*$/i.test(last);
}

/** The 16 bytes of an IPv6 address (no brackets, no zone), or null when it is not one. */
export function parseIPv6(text: string): Uint8Array | null {
  if (isIP(text) !== 6) return null;
  let head = text;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (v4) {
    tail.push(...v4.split(".").map(Number));
    head = text.slice(0, -v4.length);
    if (head.endsWith(":") && !head.endsWith("::")) head = head.slice(0, -1);
  }
  const groups = (s: string): number[] =>
    s === "" ? [] : s.split(":").map((g) => parseInt(g, 16));
  const [left = "", right] = head.split("::");
  const l = groups(left);
  const r = right === undefined ? [] : groups(right);
  const fill = 8 - tail.length / 2 - l.length - r.length;
  const words = [...l, ...Array<number>(right === undefined ? 0 : fill).fill(0), ...r];
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  bytes.set(tail, 12);
  return bytes;
}

const V4_PRIVATE = (
  [
    ["0.0.0.0", 8], // "this network"
    ["10.0.0.0", 8],
    ["100.64.0.0", 10], // carrier-grade NAT
    ["127.0.0.0", 8],
    ["169.254.0.0", 16], // link-local, cloud metadata
    ["172.16.0.0", 12],
    ["192.0.0.0", 24], // IETF protocol assignments
    ["192.0.2.0", 24], // documentation
    ["192.168.0.0", 16],
    ["198.18.0.0", 15], // benchmarking
    ["198.51.100.0", 24],
    ["203.0.113.0", 24],
    ["224.0.0.0", 3], // multicast, reserved, broadcast
  ] as const
).map(([net, bits]) => ({ net: parseIPv4Loose(net) ?? 0, size: 2 ** (32 - bits) }));

/** True for an IPv4 address (as a 32-bit number) that no engine should fetch from. */
export function isPrivateIPv4(address: number): boolean {
  return V4_PRIVATE.some(({ net, size }) => Math.floor(address / size) === net / size);
}

const v4At = (b: Uint8Array, at: number): number =>
  (b[at] ?? 0) * 2 ** 24 + ((b[at + 1] ?? 0) << 16) + ((b[at + 2] ?? 0) << 8) + (b[at + 3] ?? 0);
const zero = (b: Uint8Array, from: number, to: number): boolean =>
  b.subarray(from, to).every((x) => x === 0);

/**
 * True for an IPv6 address that is local, private or not a real host, and for one that embeds
 * such an IPv4 address: mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`), translated
 * (`::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::/96`), 6to4 (`2002::/16`) and Teredo (`2001::/32`).
 */
export function isPrivateIPv6(b: Uint8Array): boolean {
  const w0 = ((b[0] ?? 0) << 8) | (b[1] ?? 0);
  const w1 = ((b[2] ?? 0) << 8) | (b[3] ?? 0);
  if (zero(b, 0, 10) && b[10] === 0xff && b[11] === 0xff) return isPrivateIPv4(v4At(b, 12));
  if (zero(b, 0, 12)) return isPrivateIPv4(v4At(b, 12)); // also :: and ::1
  if (zero(b, 0, 8) && b[8] === 0xff && b[9] === 0xff && zero(b, 10, 12))
    return isPrivateIPv4(v4At(b, 12));
  if (w0 === 0x64 && w1 === 0xff9b) {
    if (zero(b, 4, 12)) return isPrivateIPv4(v4At(b, 12));
    return (((b[4] ?? 0) << 8) | (b[5] ?? 0)) === 1; // 64:ff9b:1::/48, local-use NAT64
  }
  if (w0 === 0x2002) return isPrivateIPv4(v4At(b, 2));
  if (w0 === 0x2001 && w1 === 0) {
    const client = ~v4At(b, 12) >>> 0;
    return isPrivateIPv4(v4At(b, 4)) || isPrivateIPv4(client);
  }
  if (w0 === 0x2001 && w1 === 0xdb8) return true; // documentation
  if (w0 === 0x100 && zero(b, 2, 8)) return true; // discard-only
  return (
    (w0 & 0xfe00) === 0xfc00 || // unique local
    (w0 & 0xffc0) === 0xfe80 || // link-local
    (w0 & 0xffc0) === 0xfec0 || // site-local (deprecated)
    (w0 & 0xff00) === 0xff00 // multicast
  );
}

/** Names that only ever mean this machine or its network. */
const LOCAL_SUFFIXES = [".localhost", ".local", ".internal", ".lan", ".home", ".home.arpa"];

/**
 * True for a host that belongs to this machine or its private network: an IP address in any
 * spelling (brackets optional), `localhost`, a local-only suffix, or a name without a dot
 * (which a resolver completes with the LAN's search domain).
 */
export function isPrivateAddress(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  const v6 = parseIPv6(h);
  if (v6) return isPrivateIPv6(v6);
  if (endsInNumber(h)) {
    const v4 = parseIPv4Loose(h);
    return v4 === null || isPrivateIPv4(v4);
  }
  const name = h.replace(/\.$/, "");
  if (name === "localhost" || !name.includes(".")) return true;
  return LOCAL_SUFFIXES.some((s) => name.endsWith(s));
}

/**
 * True for a host that is this machine: `localhost` (and `*.localhost`), 127.0.0.0/8 and `::1`
 * in any spelling, IPv4-mapped and compatible forms included.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .replace(/^\[|\]$/g, "")
    .toLowerCase()
    .replace(/\.$/, "");
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  const v6 = parseIPv6(h);
  let v4: number | null = null;
  if (v6) {
    if (zero(v6, 0, 15) && v6[15] === 1) return true;
    const mapped = zero(v6, 0, 10) && v6[10] === 0xff && v6[11] === 0xff;
    if (!mapped && !zero(v6, 0, 12)) return false;
    v4 = v4At(v6, 12);
  } else if (endsInNumber(h)) v4 = parseIPv4Loose(h);
  return v4 !== null && Math.floor(v4 / 2 ** 24) === 127;
}
