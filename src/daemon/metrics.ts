/**
 * A small Prometheus registry: counters and histograms fed by hooks, and collectors that read
 * current values (gauges, counters kept elsewhere) when scraped. It writes the text exposition
 * format 0.0.4 itself; no client library is needed for so few metrics.
 */

/** Label name → value. */
export type Labels = Readonly<Record<string, string>>;

/** One sample of a collected metric. */
export interface Sample {
  labels?: Labels;
  value: number;
}

/** Anything the registry can render. */
export interface Metric {
  readonly name: string;
  render(): string;
}

/** The content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function labelText(labels: Labels | undefined): string {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return "";
  return `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
}

function header(name: string, help: string, type: string): string {
  return `# HELP ${name} ${help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}\n# TYPE ${name} ${type}\n`;
}

/** Label values in the declared order, as a map key. */
function keyOf(names: readonly string[], labels: Labels): string {
  return JSON.stringify(names.map((n) => labels[n] ?? ""));
}

function labelsOf(names: readonly string[], key: string): Labels {
  const values = JSON.parse(key) as string[];
  return Object.fromEntries(names.map((n, i) => [n, values[i] ?? ""]));
}

/**
 * A counter with a fixed set of label names.
 * @example
 * const requests = new Counter("club_provider_requests_total", "Requests served", ["status"]);
 * requests.inc({ status: "200" });
 */
export class Counter implements Metric {
  readonly #values = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = keyOf(this.labelNames, labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }

  /** The current value for one label set (0 when never incremented). */
  get(labels: Labels = {}): number {
    return this.#values.get(keyOf(this.labelNames, labels)) ?? 0;
  }

  render(): string {
    let out = header(this.name, this.help, "counter");
    for (const [key, value] of this.#values)
      out += `${this.name}${labelText(labelsOf(this.labelNames, key))} ${formatValue(value)}\n`;
    return out;
  }
}

interface Series {
  counts: number[];
  sum: number;
  count: number;
}

/**
 * A histogram with fixed buckets (upper bounds, ascending); `+Inf` is implied.
 * @example
 * const seconds = new Histogram("club_provider_request_duration_seconds", "…", ["model"], [0.1, 1]);
 * seconds.observe({ model: "qwen" }, 0.25);
 */
export class Histogram implements Metric {
  readonly #series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {}

  observe(labels: Labels, value: number): void {
    const key = keyOf(this.labelNames, labels);
    let series = this.#series.get(key);
    if (!series) {
      series = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(key, series);
    }
    // Counts are stored per bucket and summed when rendered, so observing stays one increment.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) series.counts[i] = (series.counts[i] ?? 0) + 1;
    series.sum += value;
    series.count++;
  }

  render(): string {
    let out = header(this.name, this.help, "histogram");
    for (const [key, series] of this.#series) {
      const labels = labelsOf(this.labelNames, key);
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += series.counts[i] ?? 0;
        out += `${this.name}_bucket${labelText({ ...labels, le: formatValue(bound) })} ${cumulative}\n`;
      });
      out += `${this.name}_bucket${labelText({ ...labels, le: "+Inf" })} ${series.count}\n`;
      out += `${this.name}_sum${labelText(labels)} ${formatValue(series.sum)}\n`;
      out += `${this.name}_count${labelText(labels)} ${series.count}\n`;
    }
    return out;
  }
}

/**
 * A metric whose samples are read when scraped: gauges such as in-flight requests, and
 * counters kept by another part (tunnel connects). Samples with a null value are left out.
 */
export class Collected implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "gauge" | "counter",
    readonly collect: () => Iterable<Sample | { labels?: Labels; value: number | null }>,
  ) {}

  render(): string {
    let out = header(this.name, this.help, this.type);
    for (const s of this.collect())
      if (s.value !== null) out += `${this.name}${labelText(s.labels)} ${formatValue(s.value)}\n`;
    return out;
  }
}

/** Metrics in registration order, rendered together. */
export class Registry {
  readonly #metrics: Metric[] = [];

  register<M extends Metric>(metric: M): M {
    if (this.#metrics.some((m) => m.name === metric.name))
      throw new Error(`metric ${metric.name} is already registered`);
    this.#metrics.push(metric);
    return metric;
  }

  /** The whole exposition, as `/metrics` serves it. */
  render(): string {
    return this.#metrics.map((m) => m.render()).join("");
  }
}
