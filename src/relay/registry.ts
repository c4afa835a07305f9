/**
 * The providers this relay can route to and what they serve. Routing happens here: a member's
 * request goes to the member's own providers first, then to other members' providers whose
 * owners shared the model with them; the least busy of the first tier that has one. Providers
 * are local (`ProviderLink`: this relay holds the tunnel) or, when several relays share a club,
 * remote (`cluster/remote.ts`: another instance holds it, and streams go through that instance).
 */
import type { ModelCard, ServiceType } from "../protocol/index.ts";
import type { ProviderLink } from "./provider-link.ts";
import type { ProviderState } from "./provider-state.ts";

/** Told when a local provider said hello, changed what it serves or pauses, or went away. */
export type RegistryListener = (link: ProviderLink, gone: boolean) => void;

export class Registry {
  readonly #links = new Set<ProviderLink>();
  readonly #remote = new Map<string, ProviderState>();
  readonly #listeners = new Set<RegistryListener>();

  add(link: ProviderLink): void {
    this.#links.add(link);
    this.#emit(link, false);
  }

  remove(link: ProviderLink): void {
    if (this.#links.delete(link)) this.#emit(link, true);
  }

  /** A local provider's manifest, pause or drain changed. */
  changed(link: ProviderLink): void {
    if (this.#links.has(link)) this.#emit(link, false);
  }

  /** Calls `listener` on every change of a local provider; returns the unsubscribe. */
  listen(listener: RegistryListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(link: ProviderLink, gone: boolean): void {
    for (const listener of this.#listeners) listener(link, gone);
  }

  /** Adds or replaces a provider another instance holds. */
  setRemote(provider: ProviderState): void {
    this.#remote.set(provider.id, provider);
  }

  /** The provider another instance holds under connection id `id`. */
  getRemote(id: string): ProviderState | undefined {
    return this.#remote.get(id);
  }

  removeRemote(id: string): void {
    this.#remote.delete(id);
  }

  /** The providers other instances hold. */
  remote(): ProviderState[] {
    return [...this.#remote.values()];
  }

  /** Local providers. */
  get size(): number {
    return this.#links.size;
  }

  /** The local provider with this connection id (the internal link's target). */
  find(id: string): ProviderLink | undefined {
    for (const link of this.#links) if (link.id === id) return link;
    return undefined;
  }

  /** The member's own rigs that said hello, paused or not (`GET /v1/providers`). */
  own(member: string): ProviderState[] {
    return this.#everyone().filter((l) => l.member === member && l.manifest !== null);
  }

  /** All local links, for status, jobs and shutdown. */
  all(): ProviderLink[] {
    return [...this.#links];
  }

  #everyone(): ProviderState[] {
    return [...this.#links, ...this.#remote.values()];
  }

  /**
   * The provider to send a request for `model` to, or undefined when no online provider that
   * `member` may use serves it for this service type: the member's own first, then shared ones.
   * Draining providers get no new work.
   */
  pick(
    member: string,
    model: string,
    type: ServiceType,
    exclude?: ReadonlySet<ProviderState>,
  ): ProviderState | undefined {
    return pickFrom(this.#everyone(), member, model, type, exclude);
  }

  /** As `pick`, among the providers whose tunnel this relay holds (async jobs run next to it). */
  pickLocal(
    member: string,
    model: string,
    type: ServiceType,
    exclude?: ReadonlySet<ProviderState>,
  ): ProviderLink | undefined {
    return pickFrom(this.#links, member, model, type, exclude);
  }

  /**
   * The model cards a member may use: their own providers' first, then what others shared with
   * them; the first card for an id wins. `owned_by` names the providing rig.
   */
  cards(member: string): ModelCard[] {
    const byId = new Map<string, ModelCard>();
    const links = this.#everyone().filter((l) => l.routable);
    for (const own of [true, false])
      for (const link of links) {
        if ((link.member === member) !== own) continue;
        for (const card of link.cards)
          if (!byId.has(card.id) && link.allows(card.id, member) && link.card(card.id))
            byId.set(card.id, card);
      }
    return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  }
}

function pickFrom<T extends ProviderState>(
  candidates: Iterable<T>,
  member: string,
  model: string,
  type: ServiceType,
  exclude?: ReadonlySet<ProviderState>,
): T | undefined {
  let own: T | undefined;
  let shared: T | undefined;
  for (const link of candidates) {
    if (!link.routable || exclude?.has(link)) continue;
    if (link.card(model)?.service_type !== type || !link.allows(model, member)) continue;
    if (link.member === member) {
      if (!own || link.load < own.load) own = link;
    } else if (!shared || link.load < shared.load) shared = link;
  }
  return own ?? shared;
}
