/**
 * The providers connected to this relay and what they serve. Routing happens here: a member's
 * request goes only to that member's providers, to the least busy one that serves the model.
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

  /** All live links, for status and shutdown. */
  all(): ProviderLink[] {
    return [...this.#links];
  }

  /**
   * The provider to send a request for `model` to, or undefined when none of the member's online
   * providers serves it for this service type. Draining providers get no new work.
   */
  pick(
    member: string,
    model: string,
    type: ServiceType,
    exclude?: ReadonlySet<ProviderLink>,
  ): ProviderLink | undefined {
    let best: ProviderLink | undefined;
    for (const link of this.#links) {
      if (link.member !== member || !link.routable || exclude?.has(link)) continue;
      const card = link.card(model);
      if (card?.service_type !== type) continue;
      if (!best || link.inFlight < best.inFlight) best = link;
    }
    return best;
  }

  /** The model cards a member may use, first provider's card winning for a shared id. */
  cards(member: string): ModelCard[] {
    const byId = new Map<string, ModelCard>();
    for (const link of this.#links) {
      if (link.member !== member || !link.routable) continue;
      for (const card of link.cards) if (!byId.has(card.id)) byId.set(card.id, card);
    }
    return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  }
}
