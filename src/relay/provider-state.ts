/**
 * What the relay knows of one provider, wherever its tunnel is: the manifest it advertised, its
 * last heartbeat (pauses), whether it drains, its load. A `ProviderLink` is a provider whose
 * tunnel this relay holds; a `RemoteProvider` (`cluster/remote.ts`) is one whose tunnel another
 * instance of the club holds. Routing and `forward` see only this.
 */
import type { ClientHttp2Stream, OutgoingHttpHeaders } from "node:http2";
import {
  accessAllows,
  manifestAccess,
  manifestCards,
  type Access,
  type PauseFields,
  type Manifest,
  type ModelCard,
} from "../protocol/index.ts";

export abstract class ProviderState {
  abstract readonly id: string;
  abstract readonly member: string;
  abstract readonly connectedAt: number;
  name = "";
  version = "";
  manifest: Manifest | null = null;
  cards: ModelCard[] = [];
  #cardById = new Map<string, ModelCard>();
  #accessById = new Map<string, Access>();
  draining = false;
  /** Streams this relay has open to the provider now. */
  inFlight = 0;
  /** The rig's and its models' pauses, from its hello and then each heartbeat. */
  pause: PauseFields | null = null;

  /** Whether new requests may be routed here. */
  abstract get routable(): boolean;

  /** The connection streams go over; `destroyed` once it is gone. */
  abstract readonly session: { readonly destroyed: boolean };

  /** Open one HTTP/2 stream to the provider: one consumer request. */
  abstract request(headers: OutgoingHttpHeaders, endStream: boolean): ClientHttp2Stream;

  /** What routing compares to choose the least busy provider. */
  get load(): number {
    return this.inFlight;
  }

  /** Why the owner paused the whole rig, from its last heartbeat; undefined while it serves. */
  get paused(): string | undefined {
    return this.pause?.paused;
  }

  /** Why `model` is paused here (the rig's or the model's own pause); undefined when it serves. */
  pausedWhy(model: string): string | undefined {
    return this.paused ?? this.pause?.paused_models?.[model];
  }

  /** The card of a model this rig advertises and serves now (not paused). */
  card(model: string): ModelCard | undefined {
    return this.pausedWhy(model) === undefined ? this.#cardById.get(model) : undefined;
  }

  /** Whether `member` may use `model` here: the owner always, others as the owner shared it. */
  allows(model: string, member: string): boolean {
    return accessAllows(this.#accessById.get(model), this.member, member);
  }

  /** Who besides the owner may use `model` here (`private` when it is not advertised). */
  access(model: string): Access {
    return this.#accessById.get(model) ?? "private";
  }

  protected setManifest(manifest: Manifest): void {
    this.manifest = manifest;
    this.cards = manifestCards(manifest, Math.floor(this.connectedAt / 1000));
    this.#cardById = new Map(this.cards.map((c) => [c.id, c]));
    this.#accessById = manifestAccess(manifest);
  }
}
