/**
 * The providers connected to this relay and what they serve. Routing happens here: a member's
 * request goes to the member's own providers first, then to other members' providers whose
 * owners shared the model with them; the least busy of the first tier that has one.
 */
import type { ModelCard, ServiceType } from "../protocol/index.ts";
import type { ProviderLink } from "./provider-link.ts";

export class Registry {
  readonly #links = new Set<ProviderLink>();

  add(link: ProviderLink): void {
    this.#links.add(link);
  }

  remove(link: ProviderLink): void {
    this.#links.delete(link);
  }

  get size(): number {
    return this.#links.size;
  }

  /** The member's own rigs that said hello, paused or not (`GET /v1/providers`). */
  own(member: string): ProviderLink[] {
    return [...this.#links].filter((l) => l.member === member && l.manifest !== null);
  }

  /** All live links, for status and shutdown. */
  all(): ProviderLink[] {
    return [...this.#links];
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
    exclude?: ReadonlySet<ProviderLink>,
  ): ProviderLink | undefined {
    let own: ProviderLink | undefined;
    let shared: ProviderLink | undefined;
    for (const link of this.#links) {
      if (!link.routable || exclude?.has(link)) continue;
      if (link.card(model)?.service_type !== type || !link.allows(model, member)) continue;
      if (link.member === member) {
        if (!own || link.inFlight < own.inFlight) own = link;
      } else if (!shared || link.inFlight < shared.inFlight) shared = link;
    }
    return own ?? shared;
  }

  /**
   * The model cards a member may use: their own providers' first, then what others shared with
   * them; the first card for an id wins. `owned_by` names the providing rig.
   */
  cards(member: string): ModelCard[] {
    const byId = new Map<string, ModelCard>();
    const links = [...this.#links].filter((l) => l.routable);
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
