/**
 * The daemon's lifecycle: config → discovery → tunnel(s) → gateway, a periodic re-scan, and a
 * graceful drain on stop. It owns no sockets of its own beyond the tunnels and the status server.
 */
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import type http from "node:http";
import type { Logger } from "../log.ts";
import { UserError, describeError } from "../errors.ts";
import type { Config } from "../config.ts";
import {
  Catalog,
  discover,
  type DiscoverOptions,
  type RigModelCard,
} from "../discovery/catalog.ts";
import { Capacity } from "../gateway/capacity.ts";
import { isLoopbackHost } from "../gateway/address.ts";
import { createGateway, type Gateway, type RequestDoneInfo } from "../gateway/gateway.ts";
import {
  detectHardware,
  GpuMonitor,
  manifestGpus,
  type HardwareReport,
} from "../hardware/index.ts";
import { describeAccess, type Access, type Manifest } from "../protocol/index.ts";
import { TunnelClient, type HeartbeatBody } from "../tunnel/client.ts";
import type { BackoffOptions } from "../tunnel/backoff.ts";
import { VERSION } from "../version.ts";
import { DaemonMetrics } from "./daemon-metrics.ts";
import { RecentErrors } from "./recent-errors.ts";
import { MemberUsage } from "./member-usage.ts";
import { startStatusServer, type EngineControl } from "./status-server.ts";
import { AutoPause } from "./auto-pause.ts";
import { PauseState, manualReason, type PauseView } from "./pause.ts";
import { EngineManager } from "../engines/manager.ts";
import { expandEngines } from "../engines/presets.ts";
import type { EngineSettings, EngineSpec } from "../engines/schema.ts";
import { vramMeter } from "../engines/vram-meter.ts";
import { VramStore } from "../engines/vram-store.ts";
import type { Service } from "../discovery/catalog.ts";
import { HourUsage } from "./hour-usage.ts";
import type { LogRing } from "./log-ring.ts";
import { RigView } from "./rig-view.ts";
import type { ServiceState } from "../ui/browser/rig-types.ts";
import { RigPage } from "./status-ui.ts";

export interface DaemonOptions {
  config: Config;
  log: Logger;
  /** Discovery overrides (tests point auto-detection at other ports). */
  discovery?: Partial<DiscoverOptions>;
  backoff?: BackoffOptions;
  /** Keeps the owner's pause across restarts (the CLI writes the `paused` setting). */
  persistPause?: (reason: string | undefined) => void;
  /** Keeps a model's sharing set from the rig page (the CLI writes the `sharing` setting). */
  persistSharing?: (name: string, access: Access) => void;
  /** Environment the GPU tools of the auto-pause run with; default the daemon's own. */
  toolEnv?: NodeJS.ProcessEnv;
  /** The log's last lines, for the rig page's log tail (the CLI tees its logger into it). */
  logTail?: LogRing;
  /** Where the daemon keeps what it learns (managed engines' measured VRAM); none: forgotten. */
  stateDir?: string;
}

/**
 * Events: `connected`, `disconnected`, `fatal` (UserError: the relay refused us; the CLI exits 1),
 * `catalog` (the models changed).
 */
export class Daemon extends EventEmitter {
  readonly config: Config;
  readonly log: Logger;
  readonly gateway: Gateway;
  readonly tunnels: TunnelClient[] = [];
  /** Prometheus metrics, served at the status server's `/metrics`. */
  readonly metrics: DaemonMetrics;
  /** The last errors, shown by `/status` and `club-provider status`. */
  readonly recentErrors = new RecentErrors();
  /** Other members' use of this rig since the start, for `/status`. */
  readonly memberUsage = new MemberUsage();
  /** Requests per model in the last hour, for the rig page. */
  readonly hourUsage = new HourUsage();
  /** The rig's page on the status server; null while the status server is off. */
  page: RigPage | undefined;
  #rigView: RigView | null = null;
  catalog!: Catalog;
  /** Engines the daemon starts itself (`engines` setting); null until `start` expanded them. */
  engines: EngineManager | null = null;
  /** What the last scan found, so a managed engine's change rebuilds the catalog without one. */
  #found: Service[] = [];
  readonly #opts: DaemonOptions;
  readonly #started = Math.floor(Date.now() / 1000);
  #rescanTimer: NodeJS.Timeout | null = null;
  #statusServer: http.Server | null = null;
  #manifestJson = "";
  #hardware: HardwareReport | null = null;
  #gpuMonitor: GpuMonitor | null = null;
  /** The owner's pause, the schedule and busy GPUs: whether and what this rig serves. */
  readonly pause: PauseState;
  #autoPause: AutoPause | null = null;
  /** What the status server's `POST /pause` and `POST /resume` call. */
  readonly pausing = {
    pause: (reason: string | undefined): PauseView => this.pauseRig(reason),
    resume: (): PauseView => this.resumeRig(),
  };
  #pauseJson = "{}";
  /** What the status server's `POST /share` and `POST /unshare` call. */
  readonly sharingControl = {
    set: (name: string, access: Access) => this.setSharing(name, access),
  };

  /** What the status server's `/engines` endpoints call; undefined without managed engines. */
  get engineControl(): EngineControl | undefined {
    return this.engines?.control();
  }

  constructor(options: DaemonOptions) {
    super();
    this.#opts = options;
    this.config = options.config;
    this.log = options.log;
    this.pause = new PauseState({
      manual: options.config.paused,
      schedule: () => this.config.schedule,
      ...(options.persistPause ? { persist: options.persistPause } : {}),
    });
    this.#pauseJson = JSON.stringify(this.pause.fields());
    this.gateway = createGateway({
      catalog: () => this.catalog,
      providerName: this.config.name,
      log: this.log,
      onRequestDone: (info) => this.#requestDone(info),
      onEngineFailure: () => this.#rescanSoon(),
      load: new Capacity({
        queueSize: this.config.queueSize,
        queueTotal: this.config.queueTotal,
        groups: this.config.resourceGroups,
      }),
      maxBufferedBytes: this.config.maxBufferedBytes,
      sharing: {
        // The relay's welcome names the member this rig's key belongs to: its owner.
        owner: () => this.tunnels.find((t) => t.welcome)?.welcome?.member,
        sharing: () => this.config.sharing,
      },
      memberLimits: () => this.config.memberLimits,
      paused: (id) => this.pause.model(id),
      engines: {
        acquire: (name, signal) => this.engines?.acquire(name, signal),
        afterRefusal: async (name, signal) => this.engines?.afterRefusal(name, signal),
      },
    });
    this.metrics = new DaemonMetrics(this);
  }

  #requestDone(info: RequestDoneInfo): void {
    this.metrics.requestDone(info);
    this.memberUsage.add(info);
    this.hourUsage.add(info);
    if (info.status >= 500)
      this.recentErrors.add(
        "request",
        `${info.endpoint} (${info.model}) answered ${info.status} [${info.requestId}]`,
      );
  }

  /** Discover engines, then connect. Throws a UserError when config makes running impossible. */
  async start(): Promise<void> {
    const { config } = this;
    if (!config.relayUrl)
      throw new UserError(
        "no_relay",
        "no relay to connect to: pass --relay URL, set CLUB_RELAY_URL, or run `club-provider start --local`",
      );
    if (!config.apiKey)
      throw new UserError(
        "no_api_key",
        "no API key: set CLUB_API_KEY, pass --api-key-file FILE, or store one with `club-provider config set apiKey <key>`",
      );
    this.#checkTransport(config.relayUrl);
    await this.#startEngines();
    const [hardware] = await Promise.all([detectHardware(), this.rescan()]);
    this.#hardware = hardware;
    // The manifest now lists the GPUs: remember it, or the next re-scan would report a change.
    this.#manifestJson = JSON.stringify(this.manifest());
    const advertised = this.manifest().hosts[0]?.gpus ?? [];
    this.log.info(
      { gpus: advertised, notes: hardware.notes },
      "hardware: %s",
      advertised.length
        ? advertised.map((g) => `${g.model} (${g.vram_gb} GB)`).join(", ")
        : "no GPU advertised",
    );
    this.#gpuMonitor = new GpuMonitor({
      gpus: hardware.gpus,
      intervalMs: config.heartbeatMs,
      log: this.log,
    });
    this.#gpuMonitor.start();
    if (this.pause.rig()) this.log.warn("starting paused: %s", this.pause.rig());
    this.#autoPause = new AutoPause({
      settings: () => this.config.autoPause,
      catalog: () => this.catalog,
      gpus: () => this.#hardware?.gpus ?? [],
      state: this.pause,
      log: this.log,
      onChange: () => this.#pauseChanged(),
      ...(this.#opts.toolEnv ? { env: this.#opts.toolEnv } : {}),
    });
    this.#autoPause.start();
    for (let i = 0; i < config.connections; i++) {
      const tunnel = new TunnelClient({
        relayUrl: config.relayUrl,
        apiKey: config.apiKey,
        provider: { name: config.name, version: VERSION },
        manifest: () => this.manifest(),
        heartbeat: () => this.heartbeat(),
        onRequest: this.gateway,
        heartbeatMs: config.heartbeatMs,
        maxConcurrentStreams: config.maxStreams,
        tunnelProtocol: config.tunnelProtocol,
        ...(this.#opts.backoff ? { backoff: this.#opts.backoff } : {}),
        log: this.log.child({ tunnel: i }),
      });
      tunnel.on("connected", () => {
        // The hello carried the pause; a relay of the last release dropped it, so say it again
        // at once rather than a heartbeat later.
        const fields = this.pause.fields();
        if (fields.paused || fields.paused_models) tunnel.sendHeartbeat();
        this.log.info(
          {
            relay: config.relayUrl,
            protocol: tunnel.protocol,
            models: this.cards().map((c) => c.id),
          },
          "connected to the relay; serving %d model(s)",
          this.cards().length,
        );
        this.emit("connected");
      });
      tunnel.on("disconnected", (reason: string) => {
        this.recentErrors.add("tunnel", `tunnel ${i} lost: ${reason}`);
        this.emit("disconnected", reason);
      });
      tunnel.on("retry", (_delay: number, reason: string) => {
        // A lost tunnel was recorded once; retries while the relay is away would bury it.
        if (tunnel.connects === 0)
          this.recentErrors.add("tunnel", `tunnel ${i} cannot reach the relay: ${reason}`);
      });
      tunnel.on("refused", (err: UserError) => {
        this.recentErrors.add("tunnel", err.message);
        this.emit("fatal", err);
      });
      this.tunnels.push(tunnel);
      tunnel.start();
    }
    if (config.statusPort > 0) {
      this.#rigView = new RigView(this.#viewSource(), config.heartbeatMs);
      this.#rigView.start();
      this.page = new RigPage({ view: this.#rigView, maxStreams: config.pageStreams });
      this.#statusServer = await startStatusServer(this, config.statusPort, this.log);
      if (this.#statusServer) this.log.info("rig page: http://127.0.0.1:%d/", config.statusPort);
    }
    this.#rescanTimer = setInterval(() => void this.rescan(), config.rescanMs);
    this.#rescanTimer.unref();
  }

  /**
   * The key travels in the tunnel's request headers: over `ws://` to another machine, anyone on
   * the path reads it. Refused unless the operator said so (`--insecure`), and then loudly.
   */
  #checkTransport(relayUrl: string): void {
    const { protocol, hostname } = new URL(relayUrl);
    if (protocol !== "ws:" || isLoopbackHost(hostname)) return;
    if (!this.config.insecureRelay)
      throw new UserError(
        "insecure_relay",
        `refusing to send the API key to ${relayUrl} in clear text: use wss://, ` +
          "or pass --insecure (setting allowInsecureRelay) if the network between here and the relay is yours",
      );
    this.log.warn(
      { relay: relayUrl },
      "INSECURE: the relay %s is reached over plain ws://; the API key and every request cross the network unencrypted",
      relayUrl,
    );
  }

  /** Expands an `engines` setting (reading GGUF headers) into engine specs. */
  #engineSpecs(config: Config) {
    return expandEngines(
      config.engines,
      config.services.flatMap((s) => (s.name ? [s.name] : [])),
    );
  }

  /** Expands the `engines` setting (reading GGUF headers) into supervised engines. */
  async #startEngines(): Promise<void> {
    if (this.config.engines.length === 0) return;
    const specs = await this.#engineSpecs(this.config);
    await this.#manageEngines(specs, this.config.engineSettings);
  }

  async #manageEngines(specs: EngineSpec[], settings: EngineSettings): Promise<void> {
    const vramStore = this.#opts.stateDir
      ? await new VramStore(this.#opts.stateDir).load()
      : undefined;
    if (vramStore?.problem) this.log.warn(vramStore.problem);
    this.engines = new EngineManager({
      specs,
      settings,
      log: this.log,
      gpuTotal: (gpu) => this.#hardware?.gpus.find((g) => g.index === gpu)?.vram_mb ?? null,
      meter: vramMeter({
        env: this.#opts.toolEnv ?? process.env,
        timeoutMs: 5000,
        gpus: () =>
          (this.#hardware?.gpus ?? []).map((g) => ({
            index: g.index,
            uuid: g.uuid,
            totalMiB: g.vram_mb,
          })),
      }),
      ...(vramStore ? { vramStore } : {}),
    });
    this.engines.on("change", () => this.#refresh());
    this.log.info(
      { engines: specs.map((s) => s.name) },
      "managing %d engine(s), started on demand",
      specs.length,
    );
  }

  #rescanQueued: Promise<void> | null = null;

  /** A re-scan soon, at most one at a time: an engine just failed, so mark it down quickly. */
  #rescanSoon(): void {
    if (this.#rescanQueued) return;
    this.#rescanQueued = this.rescan().finally(() => (this.#rescanQueued = null));
  }

  /**
   * Apply new settings without dropping the tunnel (SIGHUP): engines, limits and GPU overrides
   * take effect now; the relay, key, name and connection count need a restart.
   */
  reload(next: Config): Promise<void> {
    // One at a time, in the order the signals came: a slow GGUF read must not let an older
    // setting be applied after a newer one.
    const run = this.#reloading.then(() => this.#reload(next));
    this.#reloading = run.catch(() => {});
    return run;
  }

  #reloading: Promise<void> = Promise.resolve();

  async #reload(next: Config): Promise<void> {
    const needsRestart = (["relayUrl", "apiKey", "name", "connections"] as const).filter(
      (k) => next[k] !== this.config[k],
    );
    if (needsRestart.length)
      this.log.warn(
        "settings that need a restart changed and were not applied: %s",
        needsRestart.join(", "),
      );
    await this.#reloadEngines(next);
    Object.assign(this.config, {
      services: next.services,
      autodetect: next.autodetect,
      gpus: next.gpus,
      resourceGroups: next.resourceGroups,
      queueSize: next.queueSize,
      queueTotal: next.queueTotal,
      sharing: next.sharing,
      memberLimits: next.memberLimits,
      autoPause: next.autoPause,
      schedule: next.schedule,
      engines: next.engines,
      engineSettings: next.engineSettings,
    });
    this.gateway.load.configure({
      queueSize: next.queueSize,
      queueTotal: next.queueTotal,
      groups: next.resourceGroups,
    });
    await this.rescan();
    this.log.info("settings reloaded");
  }

  /**
   * Applies a changed `engines` setting: added engines appear, removed ones stop once their
   * requests end, changed ones restart then. A setting that cannot be expanded (a GGUF gone, a
   * name taken) changes nothing and is logged.
   */
  async #reloadEngines(next: Config): Promise<void> {
    let specs: EngineSpec[];
    try {
      specs = await this.#engineSpecs(next);
      if (!this.engines) {
        if (specs.length) await this.#manageEngines(specs, next.engineSettings);
        return;
      }
      const changes = this.engines.apply(specs, next.engineSettings);
      if (changes.added.length + changes.removed.length + changes.changed.length)
        this.log.info(changes, "engines reloaded");
    } catch (err) {
      this.log.error("engines not reloaded, the running ones are kept: %s", describeError(err));
    }
  }

  /** Probe the engines again; a changed manifest goes out with an immediate heartbeat. */
  async rescan(): Promise<void> {
    const previous = this.catalog as Catalog | undefined;
    // Once an engine is recognised, later scans ask only its adapter: under load a probe may time
    // out, and another adapter must not then claim the same URL under other model ids.
    const services = this.config.services.map((c) => {
      const known = previous?.ready.find((p) => p.upstream.url === c.url.replace(/\/+$/, ""));
      return c.engine || !known ? c : { ...c, engine: known.adapter.name };
    });
    const found = await discover({
      services,
      autodetect: this.config.autodetect,
      log: this.log,
      ...this.#opts.discovery,
    });
    // An engine busy with our own requests may be too slow to answer a probe in time: that is
    // not a dead engine (a dead one refuses connections, and its requests fail at once).
    const catalog = new Catalog(
      found.services.map((s) => {
        const before = previous?.services.find((p) => p.name === s.name);
        const busy = this.gateway.load.inFlight(s.name) > 0;
        // Only a refused connection proves a busy engine dead; anything else may be load.
        const gone = /nothing listening/.test(s.reason);
        return before?.status === "ready" && s.status !== "ready" && busy && !gone ? before : s;
      }),
    );
    this.#found = catalog.services;
    this.catalog = this.#withEngines();
    for (const s of catalog.services) {
      const before = previous?.services.find((p) => p.name === s.name);
      if (before?.status === "ready" && s.status !== "ready")
        this.recentErrors.add(
          "engine",
          `${s.name} at ${s.upstream.url} is ${s.status}: ${s.reason}`,
        );
    }
    this.#announce(previous !== undefined);
  }

  /** The last scan's services plus the managed engines' (which are never probed). */
  #withEngines(): Catalog {
    const managed = this.engines?.services() ?? [];
    // A managed engine on a default port must not be auto-detected as a second service.
    const urls = new Set(managed.map((s) => s.upstream.url));
    return new Catalog([...this.#found.filter((s) => !urls.has(s.upstream.url)), ...managed]);
  }

  /** A managed engine changed state: the manifest says so at once. */
  #refresh(): void {
    // Before the first scan there is no manifest to change.
    if ((this.catalog as Catalog | undefined) === undefined) return;
    this.catalog = this.#withEngines();
    this.#announce(true);
  }

  /** A changed manifest goes out with an immediate heartbeat. */
  #announce(changed: boolean): void {
    const json = JSON.stringify(this.manifest());
    if (json === this.#manifestJson) return;
    this.#manifestJson = json;
    if (changed) {
      this.log.info(
        { models: this.cards().map((c) => c.id) },
        "models changed; now serving %d",
        this.cards().length,
      );
      for (const t of this.tunnels) t.sendHeartbeat();
    }
    this.emit("catalog", this.catalog);
  }

  /** The owner pauses the rig (`POST /pause`): running requests finish, new ones are refused. */
  pauseRig(reason?: string): PauseView {
    this.pause.pause(manualReason(reason));
    this.#pauseChanged();
    return this.pause.view();
  }

  /** The owner lets the rig serve again (`POST /resume`). */
  resumeRig(): PauseView {
    this.pause.resume();
    this.#pauseChanged();
    return this.pause.view();
  }

  /**
   * The owner shares a model or service (by its id or name) or makes it private from the rig
   * page: the manifest goes to the relay at once. Undefined for a name this rig does not serve.
   */
  setSharing(name: string, access: Access): { name: string; access: string } | undefined {
    const known =
      this.catalog.find(name) !== undefined || this.catalog.services.some((s) => s.name === name);
    if (!known) return undefined;
    this.config.sharing = { ...this.config.sharing, [name]: access };
    this.#opts.persistSharing?.(name, access);
    this.log.info("%s is now %s", name, describeAccess(access));
    this.#announce(true);
    return { name, access: describeAccess(access) };
  }

  /** A changed pause goes to the relay at once, not with the next heartbeat. */
  #pauseChanged(): void {
    const json = JSON.stringify(this.pause.fields());
    if (json === this.#pauseJson) return;
    this.#pauseJson = json;
    const rig = this.pause.rig();
    this.log.info(
      { paused: rig ?? null, paused_models: this.pause.view().paused_models },
      rig ? "paused: %s" : "serving (paused models: %d)",
      rig ?? Object.keys(this.pause.view().paused_models).length,
    );
    for (const t of this.tunnels) t.sendHeartbeat();
  }

  manifest(): Manifest {
    const gpus = manifestGpus(this.#hardware?.gpus ?? [], this.config.gpus);
    return this.catalog.manifest(
      this.config.name,
      hostname(),
      hostname(),
      gpus,
      this.config.sharing,
    );
  }

  cards(): RigModelCard[] {
    return this.catalog.cards(this.config.name, this.#started, this.config.sharing);
  }

  heartbeat(): HeartbeatBody {
    const services: HeartbeatBody["services"] = {};
    for (const s of this.catalog.services)
      services[s.name] = {
        in_flight: this.gateway.load.inFlight(s.name),
        queued: this.gateway.load.queued(s.name),
        up: s.status === "ready",
      };
    const gpus = this.#gpuMonitor?.current() ?? [];
    return {
      in_flight: this.gateway.load.total,
      queued: this.gateway.load.totalQueued,
      services,
      gpus,
      ...this.pause.fields(),
    };
  }

  ready(): boolean {
    return this.tunnels.some((t) => t.state === "connected");
  }

  status(): unknown {
    return {
      name: this.config.name,
      version: VERSION,
      started: this.#started,
      relay: this.config.relayUrl,
      pause: this.pause.view(),
      tunnels: this.tunnels.map((t) => ({
        state: t.state,
        connects: t.connects,
        connection_id: t.welcome?.connection_id ?? null,
      })),
      in_flight: this.gateway.load.total,
      queued: this.heartbeat().queued,
      // Each request in flight, with its engine's progress on long jobs (images, video, music).
      jobs: this.gateway.progress.list(),
      services: this.#services(),
      hardware: this.#hardware,
      gpu_load: this.#gpuMonitor?.current() ?? [],
      models: this.cards(),
      engines: this.engines?.list() ?? [],
      recent_errors: this.recentErrors.list(),
      // What other members used here since the start (the relay's GET /v1/usage keeps it all).
      member_usage: this.memberUsage.list(),
    };
  }

  /** Each service and its load: `/status` and the rig page show the same rows. */
  #services(): ServiceState[] {
    return this.catalog.services.map((s) => ({
      name: s.name,
      engine: s.adapter.name,
      url: s.upstream.url,
      status: s.status,
      reason: s.reason,
      in_flight: this.gateway.load.inFlight(s.name),
      queued: this.gateway.load.queued(s.name),
      max_concurrent: s.maxConcurrent,
    }));
  }

  /** What the rig page reads. */
  #viewSource(): ConstructorParameters<typeof RigView>[0] {
    return {
      name: this.config.name,
      version: VERSION,
      started: this.#started,
      relay: this.config.relayUrl ?? "",
      pause: () => this.pause.view(),
      tunnels: () =>
        this.tunnels.map((t) => {
          const since = t.connectedSince;
          return {
            state: t.state,
            connects: t.connects,
            since: since === null ? null : Math.floor(since / 1000),
          };
        }),
      gpus: () => this.#hardware?.gpus ?? [],
      gpuLoad: () => this.#gpuMonitor?.current() ?? [],
      manifest: () => this.manifest(),
      services: () => this.#services(),
      jobs: () => this.gateway.progress.list(),
      errors: () => this.recentErrors.list(),
      hourUsage: this.hourUsage,
      logTail: this.#opts.logTail,
    };
  }

  /**
   * Stop: tell the relay to send no new work, let in-flight requests finish for up to
   * `graceMs`, then close the tunnels.
   */
  async stop(graceMs = 0): Promise<void> {
    if (this.#rescanTimer) clearInterval(this.#rescanTimer);
    this.#gpuMonitor?.stop();
    this.#autoPause?.stop();
    for (const t of this.tunnels) t.drain();
    const deadline = Date.now() + graceMs;
    while (this.gateway.load.total > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    for (const t of this.tunnels) t.stop();
    this.#rigView?.stop();
    this.page?.close();
    this.#statusServer?.close();
  }
}
