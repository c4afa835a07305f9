/**
 * How many jobs a provider takes at once: each service's `max_concurrent` from its manifest
 * (as the hosted club gates async work). Synchronous requests are not counted, as there.
 */
import type { ServiceType } from "../../protocol/index.ts";
import type { ProviderState } from "../provider-state.ts";
import type { Registry } from "../registry.ts";

/** The service on `link` that serves `model` for `type`: a key for its slots, and their number. */
export function serviceSlot(
  link: ProviderState,
  model: string,
  type: ServiceType,
): { key: string; capacity: number } | undefined {
  for (const host of link.manifest?.hosts ?? [])
    for (const service of host.services)
      if (service.type === type && service.models.some((m) => m.id === model))
        return {
          key: `${link.id}/${host.id}/${service.name}`,
          capacity: Math.max(1, service.max_concurrent),
        };
  return undefined;
}

/** Jobs running per service slot key. */
export class Slots {
  readonly #used = new Map<string, number>();

  used(key: string): number {
    return this.#used.get(key) ?? 0;
  }

  take(key: string): void {
    this.#used.set(key, this.used(key) + 1);
  }

  give(key: string): void {
    const n = this.used(key) - 1;
    if (n > 0) this.#used.set(key, n);
    else this.#used.delete(key);
  }
}

/**
 * The provider to run a job on: the registry's pick among the providers the member may use
 * (their own, then shared) whose service has a free slot; with `anywhere` (an instance of a
 * club), a provider whose tunnel another instance holds when none here serves it. `"busy"` when
 * some provider serves the model but all are full; undefined when none serves it. Slots count
 * this relay's jobs only: a provider shared by several instances queues what they send together.
 */
export function pickForJob(
  registry: Registry,
  slots: Slots,
  member: string,
  model: string,
  type: ServiceType,
  anywhere = false,
): ProviderState | "busy" | undefined {
  const full = new Set<ProviderState>();
  for (const link of anywhere ? [...registry.all(), ...registry.remote()] : registry.all()) {
    if (!link.routable || !link.allows(model, member)) continue;
    const slot = serviceSlot(link, model, type);
    if (slot && slots.used(slot.key) >= slot.capacity) full.add(link);
  }
  const picked =
    registry.pickLocal(member, model, type, full) ??
    (anywhere ? registry.pick(member, model, type, full) : undefined);
  return picked ?? (full.size > 0 ? "busy" : undefined);
}
