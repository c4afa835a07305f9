/**
 * The rig's own check of who a request is for (defence in depth: the relay checks first). The
 * relay names the member whose key made each request (`x-club-member`); the rig's owner is the
 * member its own key belongs to (the relay's `welcome`). A request for another member gets a
 * model only if the owner shared it with them; it then waits its turn behind the owner's.
 */
import type { Catalog } from "../discovery/catalog.ts";
import { HEADER_MEMBER, accessAllows, describeAccess, type Access } from "../protocol/index.ts";
import { OWNER, type Requester } from "./capacity.ts";

/** Where the gateway learns the owner and the owner's sharing settings. */
export interface SharingSource {
  /** The member the rig's key belongs to; undefined before any tunnel was welcomed. */
  owner(): string | undefined;
  /** Model id or service name → access (the `sharing` setting). */
  sharing(): Readonly<Record<string, Access>>;
}

/**
 * Who a request is for. No member named (a relay older than sharing, or `start --local`), no
 * owner known yet, or the owner named: the owner.
 */
export function requesterOf(
  headers: Record<string, string | string[] | undefined>,
  source: SharingSource | undefined,
): Requester {
  const named = headers[HEADER_MEMBER];
  const member = typeof named === "string" && named !== "" ? named : undefined;
  const owner = source?.owner();
  if (member === undefined || owner === undefined || member === owner) return OWNER;
  return { member, owner: false };
}

/** A model's access on this rig: its own setting, else its service's, else private. */
export function accessOf(
  catalog: Catalog,
  modelId: string,
  sharing: Readonly<Record<string, Access>>,
): Access {
  const found = catalog.find(modelId);
  if (!found) return "private";
  const { service, model } = found;
  return (
    sharing[model.id] ??
    sharing[`${service.name}-${model.type}`] ??
    sharing[service.name] ??
    "private"
  );
}

/** Why `who` may not use `modelId` here, or undefined when they may. */
export function refusal(
  catalog: Catalog,
  modelId: string,
  who: Requester,
  source: SharingSource | undefined,
  providerName: string,
): string | undefined {
  if (who.owner || !source) return undefined;
  const access = accessOf(catalog, modelId, source.sharing());
  if (accessAllows(access, source.owner() ?? "", who.member)) return undefined;
  return `${providerName} does not share ${JSON.stringify(modelId)} with ${who.member} (it is ${describeAccess(access) === "private" ? "private" : `shared with ${describeAccess(access)}`})`;
}
