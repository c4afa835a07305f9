/**
 * The daemon's Prometheus metrics: requests by endpoint, model and status, their durations and
 * bytes (fed by the gateway's `onRequestDone`), and, read at scrape time, in-flight and queued
 * requests, services, tunnels and reconnects, GPU figures and the process's own CPU and memory.
 */
import type { RequestDoneInfo } from "../gateway/gateway.ts";
import type { HeartbeatBody } from "../tunnel/client.ts";
import { VERSION } from "../version.ts";
import type { EngineManager } from "../engines/manager.ts";
import type { Supervisor } from "../engines/supervisor.ts";
import { Collected, Counter, Histogram, Registry, type Sample } from "./metrics.ts";

/** What the metrics read from the daemon when scraped. */
export interface DaemonMetricsSource {
  readonly config: { readonly name: string };
  readonly tunnels: readonly { readonly state: string; readonly connects: number }[];
  heartbeat(): HeartbeatBody;
  /** Managed engines, read at scrape time. */
  readonly engines?: EngineManager | null;
}

/** Request durations span a cached reply (ms) to a video generation (minutes). */
const DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
];

const P = "club_provider_";

/**
 * One registry per daemon.
 * @example
 * const metrics = new DaemonMetrics(daemon);
 * createGateway({ …, onRequestDone: (info) => metrics.requestDone(info) });
 * res.end(metrics.render());
 */
export class DaemonMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter;
  readonly #aborted: Counter;
  readonly #seconds: Histogram;
  readonly #bytes: Counter;
  #beat: HeartbeatBody | null = null;

  constructor(source: DaemonMetricsSource) {
    const r = this.registry;
    const beat = (): HeartbeatBody => (this.#beat ??= source.heartbeat());
    r.register(
      new Collected(`${P}info`, "Version and name of this provider", "gauge", () => [
        { labels: { version: VERSION, name: source.config.name }, value: 1 },
      ]),
    );
    const requestLabels = ["endpoint", "model"];
    this.#requests = r.register(
      new Counter(
        `${P}requests_total`,
        "Requests served, by endpoint, model and HTTP status (499: the caller left first)",
        [...requestLabels, "status"],
      ),
    );
    this.#aborted = r.register(
      new Counter(
        `${P}requests_aborted_total`,
        "Requests whose caller left (or whose stream broke) before the end",
        requestLabels,
      ),
    );
    this.#seconds = r.register(
      new Histogram(
        `${P}request_duration_seconds`,
        "Time from a request's arrival to the end of its response",
        requestLabels,
        DURATION_BUCKETS,
      ),
    );
    this.#bytes = r.register(
      new Counter(`${P}response_bytes_total`, "Response body bytes sent", requestLabels),
    );
    r.register(
      new Collected(`${P}requests_in_flight`, "Requests being served now", "gauge", () => [
        { value: beat().in_flight },
      ]),
    );
    r.register(
      new Collected(
        `${P}requests_queued`,
        "Requests waiting for capacity (queue depth)",
        "gauge",
        () => [{ value: beat().queued }],
      ),
    );
    const perService = (pick: (s: HeartbeatBody["services"][string]) => number): Sample[] =>
      Object.entries(beat().services).map(([service, s]) => ({
        labels: { service },
        value: pick(s),
      }));
    r.register(
      new Collected(`${P}service_in_flight`, "Requests in flight per service", "gauge", () =>
        perService((s) => s.in_flight),
      ),
    );
    r.register(
      new Collected(`${P}service_queued`, "Requests queued per service", "gauge", () =>
        perService((s) => s.queued),
      ),
    );
    r.register(
      new Collected(`${P}service_up`, "1 while a service answers and serves models", "gauge", () =>
        perService((s) => (s.up ? 1 : 0)),
      ),
    );
    r.register(
      new Collected(`${P}tunnel_connected`, "1 while a tunnel is connected", "gauge", () =>
        source.tunnels.map((t, i) => ({
          labels: { tunnel: String(i) },
          value: t.state === "connected" ? 1 : 0,
        })),
      ),
    );
    r.register(
      new Collected(
        `${P}tunnel_reconnects_total`,
        "Times a tunnel was established again after the first time",
        "counter",
        () =>
          source.tunnels.map((t, i) => ({
            labels: { tunnel: String(i) },
            value: Math.max(0, t.connects - 1),
          })),
      ),
    );
    const gpu = (
      name: string,
      help: string,
      pick: (g: HeartbeatBody["gpus"][number]) => number | null,
    ) =>
      r.register(
        new Collected(`${P}gpu_${name}`, help, "gauge", () =>
          beat().gpus.map((g) => ({ labels: { gpu: String(g.index) }, value: pick(g) })),
        ),
      );
    gpu("utilization_percent", "GPU utilisation", (g) => g.utilization_pct);
    gpu("memory_used_bytes", "GPU memory in use", (g) =>
      g.vram_used_mb === null ? null : g.vram_used_mb * 1024 * 1024,
    );
    gpu("temperature_celsius", "GPU temperature", (g) => g.temperature_c);
    gpu("power_watts", "GPU power draw", (g) => g.power_w);
    const engines = () => source.engines?.engines ?? [];
    r.register(
      new Collected(`${P}engine_starts_total`, "Starts of each managed engine", "counter", () =>
        engines().map((e) => ({ labels: { engine: e.name }, value: e.starts })),
      ),
    );
    r.register(
      new Collected(
        `${P}engine_stops_total`,
        "Stops of each managed engine, by reason (idle, evicted, owner, shutdown)",
        "counter",
        () =>
          engines().flatMap((e) =>
            Object.entries(e.stops).map(([reason, value]) => ({
              labels: { engine: e.name, reason },
              value,
            })),
          ),
      ),
    );
    r.register(
      new Collected(
        `${P}engine_evictions_total`,
        "Managed engines stopped to make room in VRAM for another",
        "counter",
        () =>
          engines().map((e) => ({
            labels: { engine: e.name },
            value: source.engines?.evictions.get(e.name) ?? 0,
          })),
      ),
    );
    r.register(
      new Collected(`${P}engine_failures_total`, "Failed starts and crashes", "counter", () =>
        engines().map((e) => ({ labels: { engine: e.name }, value: e.failures })),
      ),
    );
    r.register(
      new Collected(`${P}engine_ready`, "1 while a managed engine is ready", "gauge", () =>
        engines().map((e) => ({ labels: { engine: e.name }, value: e.state === "ready" ? 1 : 0 })),
      ),
    );
    // Per model: an engine's cold starts are its models' (one engine may serve several).
    const perModel = (f: (e: Supervisor) => number | null) => () =>
      engines().flatMap((e) => e.models.map((m) => ({ labels: { model: m.id }, value: f(e) })));
    r.register(
      new Collected(
        `${P}engine_cold_start_seconds_sum`,
        "Seconds from start to healthy, summed over cold starts, per model",
        "counter",
        perModel((e) => e.coldStartSeconds),
      ),
    );
    r.register(
      new Collected(
        `${P}engine_cold_start_seconds_count`,
        "Cold starts per model",
        "counter",
        perModel((e) => e.coldStartCount),
      ),
    );
    r.register(
      new Collected(
        `${P}engine_cold_start_seconds_last`,
        "Seconds the last cold start took, per model",
        "gauge",
        perModel((e) => e.coldStarts.at(-1) ?? null),
      ),
    );
    r.register(
      new Collected("process_resident_memory_bytes", "Resident memory size", "gauge", () => [
        { value: process.memoryUsage.rss() },
      ]),
    );
    r.register(
      new Collected("process_cpu_seconds_total", "User and system CPU time", "counter", () => {
        const { user, system } = process.cpuUsage();
        return [{ value: (user + system) / 1e6 }];
      }),
    );
    const startTime = Math.round(Date.now() / 1000 - process.uptime());
    r.register(
      new Collected("process_start_time_seconds", "Start time, Unix seconds", "gauge", () => [
        { value: startTime },
      ]),
    );
  }

  /** Counts one finished request (the gateway's `onRequestDone`). */
  requestDone(info: RequestDoneInfo): void {
    const labels = { endpoint: info.endpoint, model: info.model };
    this.#requests.inc({ ...labels, status: String(info.status) });
    if (info.aborted) this.#aborted.inc(labels);
    this.#seconds.observe(labels, info.ms / 1000);
    this.#bytes.inc(labels, info.bytes);
  }

  /** The exposition; the daemon's state is read once per scrape. */
  render(): string {
    this.#beat = null;
    try {
      return this.registry.render();
    } finally {
      this.#beat = null;
    }
  }
}
