/**
 * How much work each GPU takes at once. A service's requests run up to its `maxConcurrent`;
 * services that share a `resourceGroup` share one limit. Beyond it, requests wait in a bounded
 * FIFO queue per group; beyond that, the gateway answers 429 so the relay can try elsewhere.
 * Also the source of the in-flight and queued counts that heartbeats and the status report.
 */

/** A service as the capacity tracker needs to see it. */
export interface CapacityService {
  name: string;
  maxConcurrent: number;
  resourceGroup?: string;
}

export interface CapacityOptions {
  /** Requests a group may hold waiting (default 32). */
  queueSize?: number;
  /** Explicit limits for shared groups: `resourceGroups.<name>.maxConcurrent`. */
  groups?: Record<string, { maxConcurrent: number }>;
}

/** A granted slot; call it once the request is over, however it ended. */
export type Release = () => void;

interface Waiter {
  service: string;
  grant: (release: Release) => void;
}

class Group {
  running = 0;
  readonly queue: Waiter[] = [];
  constructor(public limit: number) {}
}

export class Capacity {
  #queueSize = 32;
  readonly #groups = new Map<string, Group>();
  #explicit: Record<string, { maxConcurrent: number }> = {};
  readonly #inFlight = new Map<string, number>();
  readonly #queued = new Map<string, number>();
  /** Requests running now, across services. */
  total = 0;
  /** Requests waiting now, across services. */
  totalQueued = 0;

  constructor(options: CapacityOptions = {}) {
    this.configure(options);
  }

  /** New limits (a config reload); running requests keep their slots. */
  configure(options: CapacityOptions): void {
    this.#queueSize = options.queueSize ?? 32;
    this.#explicit = options.groups ?? {};
  }

  /**
   * A slot for one request to `service`: at once when the group has room, after the requests
   * ahead of it otherwise. `null` when the queue is full. Aborting `signal` while waiting
   * leaves the queue (and rejects with the signal's reason).
   */
  acquire(service: CapacityService, signal: AbortSignal): Promise<Release> | null {
    const group = this.#group(service);
    if (group.running < group.limit) return Promise.resolve(this.#start(group, service.name));
    if (group.queue.length >= this.#queueSize) return null;
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        service: service.name,
        grant: (release) => {
          signal.removeEventListener("abort", onAbort);
          resolve(release);
        },
      };
      const onAbort = (): void => {
        const i = group.queue.indexOf(waiter);
        if (i >= 0) group.queue.splice(i, 1);
        this.#count(this.#queued, service.name, -1);
        this.totalQueued--;
        reject(signal.reason as Error);
      };
      group.queue.push(waiter);
      this.#count(this.#queued, service.name, 1);
      this.totalQueued++;
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Of several services that serve one model, the one a request should go to: the first whose
   * group has a free slot, else the one with the shortest queue (the first on a tie).
   */
  choose<S extends CapacityService>(services: readonly S[]): S | undefined {
    let best: S | undefined;
    let shortest = Infinity;
    for (const service of services) {
      const group = this.#group(service);
      if (group.running < group.limit) return service;
      if (group.queue.length < shortest) {
        best = service;
        shortest = group.queue.length;
      }
    }
    return best;
  }

  inFlight(service: string): number {
    return this.#inFlight.get(service) ?? 0;
  }

  queued(service: string): number {
    return this.#queued.get(service) ?? 0;
  }

  /** Seconds a refused client should wait before trying again: a rough guess, at least 1. */
  retryAfter(service: CapacityService): number {
    const group = this.#group(service);
    return Math.max(1, Math.ceil(group.queue.length / Math.max(1, group.limit)));
  }

  #group(service: CapacityService): Group {
    const key = service.resourceGroup
      ? `group:${service.resourceGroup}`
      : `service:${service.name}`;
    const explicit = service.resourceGroup
      ? this.#explicit[service.resourceGroup]?.maxConcurrent
      : undefined;
    let group = this.#groups.get(key);
    if (!group) {
      group = new Group(explicit ?? service.maxConcurrent);
      this.#groups.set(key, group);
    } else if (explicit !== undefined) {
      group.limit = explicit;
    } else {
      // Shared without an explicit size: the most cautious member decides. A re-scan may change it.
      group.limit = service.resourceGroup
        ? Math.min(group.limit, service.maxConcurrent)
        : service.maxConcurrent;
    }
    return group;
  }

  #start(group: Group, service: string): Release {
    group.running++;
    this.total++;
    this.#count(this.#inFlight, service, 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      group.running--;
      this.total--;
      this.#count(this.#inFlight, service, -1);
      this.#next(group);
    };
  }

  #next(group: Group): void {
    while (group.running < group.limit) {
      const waiter = group.queue.shift();
      if (!waiter) return;
      this.#count(this.#queued, waiter.service, -1);
      this.totalQueued--;
      waiter.grant(this.#start(group, waiter.service));
    }
  }

  #count(map: Map<string, number>, key: string, delta: number): void {
    map.set(key, (map.get(key) ?? 0) + delta);
  }
}
