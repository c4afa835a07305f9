/**
 * Failed authentication, throttled per source address: guessing keys costs a stranger one try
 * per second after a short burst, while members with a right key are never slowed. Behind a
 * reverse proxy (`trustProxy`), the source is the last address the proxy added to
 * `X-Forwarded-For`; IPv6 sources are counted per /64, which one host usually holds whole.
 */
import type { IncomingMessage } from "node:http";
import { isIPv6 } from "node:net";
import { RateLimiter } from "./rate-limit.ts";

export interface AuthThrottleOptions {
  /** Failed attempts per minute per source, sustained (default 60; 0 turns throttling off). */
  perMinute?: number;
  /** Failed attempts a source may make at once (default 20). */
  burst?: number;
  /** Take the source from the last `X-Forwarded-For` entry (set behind nginx and the like). */
  trustProxy?: boolean;
  now?: () => number;
}

export class AuthThrottle {
  readonly #limiter: RateLimiter | null;
  readonly #trustProxy: boolean;

  constructor(options: AuthThrottleOptions = {}) {
    const perMinute = options.perMinute ?? 60;
    this.#limiter =
      perMinute > 0
        ? new RateLimiter({
            perSecond: perMinute / 60,
            burst: options.burst ?? 20,
            ...(options.now ? { now: options.now } : {}),
          })
        : null;
    this.#trustProxy = options.trustProxy ?? false;
  }

  /** The source a request is counted under. */
  source(req: IncomingMessage): string {
    let address = req.socket.remoteAddress ?? "";
    if (this.#trustProxy) {
      const header = req.headers["x-forwarded-for"];
      const last = (Array.isArray(header) ? header.join(",") : (header ?? ""))
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean)
        .at(-1);
      if (last) address = last.slice(0, 64);
    }
    return sourceAddress(address);
  }

  /** Seconds `req`'s source must wait before it may try a key again (0: it may). */
  wait(req: IncomingMessage): number {
    return this.#limiter?.wait(this.source(req)) ?? 0;
  }

  /** Counts one failed attempt; returns the seconds to wait if that used up the allowance. */
  fail(req: IncomingMessage): number {
    if (!this.#limiter) return 0;
    const source = this.source(req);
    this.#limiter.take(source);
    return this.#limiter.wait(source);
  }
}

/**
 * The source an address is counted under: IPv4 as it is (an IPv4-mapped IPv6 address as its
 * IPv4), IPv6 by its /64, which one host usually holds whole.
 */
export function sourceAddress(address: string): string {
  if (address.startsWith("::ffff:")) address = address.slice(7);
  if (isIPv6(address)) return `${expandIPv6(address).slice(0, 4).join(":")}::/64`;
  return address;
}

/** The eight groups of an IPv6 address, `::` filled in (zone ids dropped). */
function expandIPv6(address: string): string[] {
  const [head = "", tail] = (address.split("%")[0] ?? "").split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill("0");
  return [...left, ...zeros, ...right].map((g) => g.toLowerCase().replace(/^0+(?=.)/, ""));
}
