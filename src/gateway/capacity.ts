/**
 * How much work each GPU takes at once. A service's requests run up to its `maxConcurrent`;
 * services that share a `resourceGroup` share one limit. Beyond it, requests wait in their
 * group's queue: the rig owner's first (a home rig is its owner's first), then the other members'
 * in turns, one request per member per turn, so one member's burst cannot starve another's single
 * request. Each member may hold `queueSize` waiting per group, and a group `queueTotal`; beyond
 * that the gateway answers 429 so the relay can try elsewhere. Also the source of the in-flight
 * and queued counts that heartbeats and the status report.
 */

/** A service as the capacity tracker needs to see it. */
export interface CapacityService {
  name: string;
  maxConcurrent: number;
  resourceGroup?: string;
}

export interface CapacityOptions {
  /** Requests one member may hold waiting in a group (default 32). */
  queueSize?: number;
  /** Requests a group may hold waiting, all members together (default 256). */
  queueTotal?: number;
  /** Explicit limits for shared groups: `resourceGroups.<name>.maxConcurrent`. */
  groups?: Record<string, { maxConcurrent: number }>;
}

/** A granted slot; call it once the request is over, however it ended. */
export type Release = () => void;

/** Who a request is for: the rig's owner, or another member of the club. */
export interface Requester {
  member: string;
  owner: boolean;
}

/** A request for the rig's owner (and for callers that name no member). */
export const OWNER: Requester = { member: "", owner: true };

interface Waiter {
  service: string;
  grant: (release: Release) => void;
}

class Group {
  running = 0;
  waiting = 0;
  /** The owner's waiting requests: they go first. */
  readonly owner: Waiter[] = [];
  /** Other members' waiting requests; the first key is the member whose turn is next. */
  readonly members = new Map<string, Waiter[]>();
  constructor(public limit: number) {}

  queueOf(who: Requester): Waiter[] {
    if (who.owner) return this.owner;
    let queue = this.members.get(who.member);
    if (!queue) this.members.set(who.member, (queue = []));
    return queue;
  }

  /** The next waiter: the owner's first, then one of the member whose turn it is. */
  take(): Waiter | undefined {
    const mine = this.owner.shift();
    if (mine) return mine;
    for (const [member, queue] of this.members) {
      const waiter = queue.shift();
      // To the back of the ring, or out of it once empty.
      this.members.delete(member);
      if (queue.length > 0) this.members.set(member, queue);
      if (waiter) return waiter;
    }
    return undefined;
  }

  drop(waiter: Waiter, who: Requester): void {
    const queue = who.owner ? this.owner : this.members.get(who.member);
    const i = queue?.indexOf(waiter) ?? -1;
    if (!queue || i < 0) return;
    queue.splice(i, 1);
    if (!who.owner && queue.length === 0) this.members.delete(who.member);
  }
}

export class Capacity {
  #queueSize = 32;
  #queueTotal = 256;
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
    this.#queueTotal = options.queueTotal ?? 256;
    this.#explicit = options.groups ?? {};
  }

  /**
   * A slot for one request to `service`: at once when the group has room, in its turn otherwise
   * (see the file comment). `null` when the member's queue or the group's is full. Aborting
   * `signal` while waiting leaves the queue (and rejects with the signal's reason).
   */
  acquire(
    service: CapacityService,
    signal: AbortSignal,
    who: Requester = OWNER,
  ): Promise<Release> | null {
    const group = this.#group(service);
    if (group.running < group.limit && group.waiting === 0)
      return Promise.resolve(this.#start(group, service.name));
    const queue = group.queueOf(who);
    if (queue.length >= this.#queueSize || group.waiting >= this.#queueTotal) {
      if (queue.length === 0 && !who.owner) group.members.delete(who.member);
      return null;
    }
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        service: service.name,
        grant: (release) => {
          signal.removeEventListener("abort", onAbort);
          resolve(release);
        },
      };
      const onAbort = (): void => {
        group.drop(waiter, who);
        group.waiting--;
        this.#count(this.#queued, service.name, -1);
        this.totalQueued--;
        reject(signal.reason as Error);
      };
      queue.push(waiter);
      group.waiting++;
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
      if (group.running < group.limit && group.waiting === 0) return service;
      if (group.waiting < shortest) {
        best = service;
        shortest = group.waiting;
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
    return Math.max(1, Math.ceil(group.waiting / Math.max(1, group.limit)));
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
      const waiter = group.take();
      if (!waiter) return;
      group.waiting--;
      this.#count(this.#queued, waiter.service, -1);
      this.totalQueued--;
      waiter.grant(this.#start(group, waiter.service));
    }
  }

  #count(map: Map<string, number>, key: string, delta: number): void {
    map.set(key, (map.get(key) ?? 0) + delta);
  }
}
