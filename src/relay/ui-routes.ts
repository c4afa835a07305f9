/**
 * The club's page on the relay: `GET /` and `GET /ui` (the HTML shell), `GET /ui/assets/*`
 * (the built bundles) with no key, and, with a member's key, `GET /ui/api/me` (who the key
 * is), `GET /ui/api/events` (the page's live stream, see ui-events.ts) and `GET /ui/api/admin`
 * (the operator's view: providers online, per-member usage, instances; 403 for a key not
 * marked `admin`). Everything else the page shows it reads from
 * the club's own `/v1` API with the same key, sent as `Authorization`: the key lives in the
 * tab's session storage, never in a URL or a cookie, so another site cannot use it.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { PAGE_HEADERS, UiAssets } from "../ui/assets.ts";
import { RemoteProvider } from "./cluster/remote.ts";
import type { Work } from "./jobs/work.ts";
import type { KeyRing } from "./keys.ts";
import type { ProviderState } from "./provider-state.ts";
import type { Registry } from "./registry.ts";
import { sendError, sendJson } from "../http/respond.ts";
import { UiEvents } from "./ui-events.ts";

/** Days the admin view's per-member usage covers. */
const USAGE_DAYS = 30;

const SIGN_IN_HTML =
  "<header><h1>Club</h1></header>" +
  '<section aria-labelledby="h-sign-in"><h2 id="h-sign-in">Sign in</h2>' +
  "<p>This page needs JavaScript: it keeps your key in this tab only and sends it with each request. " +
  "Without it, use the club's OpenAI-compatible API at <code>/v1</code> with your key.</p></section>";

export interface ClubUiOptions {
  registry: Registry;
  keys: KeyRing;
  work?: Work | undefined;
  assets?: UiAssets;
  /** This instance's id when the club runs several. */
  instance?: () => string | undefined;
  /** Live page streams one member may hold (`--ui-streams`, default 4). */
  streamsPerMember?: number;
}

const ROUTES = new Set(["/ui/api/me", "/ui/api/admin", "/ui/api/events"]);

/** One provider as the admin view lists it. */
function providerRow(p: ProviderState, here: string) {
  return {
    name: p.name,
    member: p.member,
    version: p.version,
    connected_at: Math.floor(p.connectedAt / 1000),
    paused: p.paused ?? null,
    draining: p.draining,
    in_flight: p.inFlight,
    models: p.cards.map((c) => c.id),
    instance: p instanceof RemoteProvider ? p.instanceId : here,
  };
}

export class ClubUi {
  readonly #o: ClubUiOptions;
  readonly #assets: UiAssets;
  /** The pages' live streams. */
  readonly events: UiEvents;

  constructor(options: ClubUiOptions) {
    this.#o = options;
    this.#assets = options.assets ?? new UiAssets();
    this.events = new UiEvents({
      registry: options.registry,
      work: options.work,
      ...(options.streamsPerMember === undefined ? {} : { maxPerMember: options.streamsPerMember }),
    });
  }

  /** Ends the live streams (the relay stops). */
  close(): void {
    this.events.close();
  }

  /** Whether `path` is the page or one of its assets (served without a key). */
  isPage(path: string): boolean {
    return path === "/" || path === "/ui" || path === "/ui/" || path.startsWith("/ui/assets/");
  }

  /** Whether `path` is the page's own API (served with a key). */
  isApi(path: string): boolean {
    return path === "/ui/api" || path.startsWith("/ui/api/");
  }

  page(req: IncomingMessage, res: ServerResponse, path: string): void {
    req.resume();
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendError(res, 405, "invalid_request_error", `${path} takes GET, not ${req.method ?? ""}`, {
        allow: "GET, HEAD",
      });
      return;
    }
    if (this.#assets.serve(path, res)) return;
    res
      .writeHead(200, PAGE_HEADERS)
      .end(this.#assets.shell({ title: "Club", script: "club.js", body: SIGN_IN_HTML }));
  }

  async api(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    key: { member: string; admin: boolean },
  ): Promise<void> {
    req.resume();
    const route = path.replace(/\/+$/, "");
    if (!ROUTES.has(route)) {
      sendError(
        res,
        404,
        "not_found_error",
        `unknown endpoint ${path.slice(0, 200)}: try /ui/api/me`,
      );
      return;
    }
    if (req.method !== "GET") {
      sendError(res, 405, "invalid_request_error", `${route} takes GET, not ${req.method ?? ""}`, {
        allow: "GET",
      });
      return;
    }
    if (route === "/ui/api/events") {
      this.events.open(res, key.member);
      return;
    }
    if (route === "/ui/api/me") {
      sendJson(res, 200, {
        member: key.member,
        admin: key.admin,
        async: this.#o.work !== undefined,
      });
      return;
    }
    if (!key.admin) {
      sendError(
        res,
        403,
        "permission_error",
        'the admin view needs an operator\'s key: mark it {"member": "…", "admin": true} in the keys file',
      );
      return;
    }
    sendJson(res, 200, await this.#admin());
  }

  async #admin() {
    const { registry, keys, work } = this.#o;
    const here = this.#o.instance?.() ?? "this relay";
    const providers = [...registry.all(), ...registry.remote()]
      .filter((p) => p.manifest !== null)
      .map((p) => providerRow(p, here));
    const usage = [];
    if (work)
      for (const member of keys.members()) {
        const report = await work.usage.report(member, { days: USAGE_DAYS });
        const sum = {
          requests: 0,
          errors: 0,
          prompt_tokens: 0,
          completion_tokens: 0,
          bytes_out: 0,
        };
        for (const row of report.used) {
          sum.requests += row.requests;
          sum.errors += row.errors;
          sum.prompt_tokens += row.prompt_tokens;
          sum.completion_tokens += row.completion_tokens;
          sum.bytes_out += row.bytes_out;
        }
        usage.push({ member, ...sum });
      }
    const instances = new Map<string, number>([[here, 0]]);
    for (const p of providers) instances.set(p.instance, (instances.get(p.instance) ?? 0) + 1);
    return {
      providers,
      usage_days: USAGE_DAYS,
      usage,
      instances: [...instances].map(([id, count]) => ({ id, providers: count })),
    };
  }
}
