/** The Prometheus registry writes the text exposition format by hand: check it exactly. */
import { describe, expect, it } from "vitest";
import { DaemonMetrics } from "../../src/daemon/daemon-metrics.ts";
import { Collected, Counter, Histogram, Registry } from "../../src/daemon/metrics.ts";
import { RecentErrors } from "../../src/daemon/recent-errors.ts";

describe("metrics registry", () => {
  it("renders counters with escaped labels", () => {
    const r = new Registry();
    const c = r.register(new Counter("x_total", "Things\ncounted", ["model", "status"]));
    c.inc({ model: 'a"b\\c\nd', status: "200" });
    c.inc({ model: 'a"b\\c\nd', status: "200" }, 2);
    expect(c.get({ model: 'a"b\\c\nd', status: "200" })).toBe(3);
    expect(r.render()).toBe(
      "# HELP x_total Things\\ncounted\n# TYPE x_total counter\n" +
        'x_total{model="a\\"b\\\\c\\nd",status="200"} 3\n',
    );
  });

  it("renders cumulative histogram buckets, sum and count", () => {
    const r = new Registry();
    const h = r.register(new Histogram("d_seconds", "Durations", ["m"], [0.1, 1]));
    h.observe({ m: "x" }, 0.05);
    h.observe({ m: "x" }, 0.5);
    h.observe({ m: "x" }, 5);
    expect(r.render()).toBe(
      [
        "# HELP d_seconds Durations",
        "# TYPE d_seconds histogram",
        'd_seconds_bucket{m="x",le="0.1"} 1',
        'd_seconds_bucket{m="x",le="1"} 2',
        'd_seconds_bucket{m="x",le="+Inf"} 3',
        'd_seconds_sum{m="x"} 5.55',
        'd_seconds_count{m="x"} 3',
        "",
      ].join("\n"),
    );
  });

  it("collects gauges when rendered and leaves unknown values out", () => {
    let n = 1;
    const r = new Registry();
    r.register(
      new Collected("g", "A gauge", "gauge", () => [
        { labels: { gpu: "0" }, value: n },
        { labels: { gpu: "1" }, value: null },
      ]),
    );
    n = 7;
    expect(r.render()).toBe('# HELP g A gauge\n# TYPE g gauge\ng{gpu="0"} 7\n');
    expect(() => r.register(new Counter("g", "again"))).toThrow(/already registered/);
  });
});

describe("daemon metrics", () => {
  it("counts requests and reads load, tunnels and GPUs when scraped", () => {
    let beats = 0;
    const metrics = new DaemonMetrics({
      config: { name: "rig1" },
      tunnels: [{ state: "connected", connects: 3 }],
      heartbeat: () => {
        beats++;
        return {
          in_flight: 2,
          queued: 1,
          services: { "llamacpp-8080": { in_flight: 2, queued: 1, up: true } },
          gpus: [
            {
              index: 0,
              vram_used_mb: 1024,
              utilization_pct: 97,
              temperature_c: null,
              power_w: 280,
            },
          ],
        };
      },
    });
    const done = {
      requestId: "req_1",
      model: "qwen",
      endpoint: "/v1/chat/completions",
      service: "llamacpp-8080",
      ms: 250,
      bytes: 100,
      tokens: 12,
    };
    metrics.requestDone({ ...done, status: 200, aborted: false });
    metrics.requestDone({ ...done, status: 502, aborted: true });
    const text = metrics.render();
    expect(beats).toBe(1);
    const lines = text.split("\n");
    const labels = 'endpoint="/v1/chat/completions",model="qwen"';
    expect(lines).toEqual(
      expect.arrayContaining([
        `club_provider_requests_total{${labels},status="200"} 1`,
        `club_provider_requests_total{${labels},status="502"} 1`,
        `club_provider_requests_aborted_total{${labels}} 1`,
        `club_provider_request_duration_seconds_bucket{${labels},le="0.25"} 2`,
        `club_provider_request_duration_seconds_count{${labels}} 2`,
        `club_provider_response_bytes_total{${labels}} 200`,
        "club_provider_requests_in_flight 2",
        "club_provider_requests_queued 1",
        'club_provider_service_up{service="llamacpp-8080"} 1',
        'club_provider_tunnel_connected{tunnel="0"} 1',
        'club_provider_tunnel_reconnects_total{tunnel="0"} 2',
        'club_provider_gpu_utilization_percent{gpu="0"} 97',
        `club_provider_gpu_memory_used_bytes{gpu="0"} ${1024 * 1024 * 1024}`,
        'club_provider_gpu_power_watts{gpu="0"} 280',
      ]),
    );
    expect(text).not.toMatch(/club_provider_gpu_temperature_celsius\{/);
    expect(text).toMatch(/^process_resident_memory_bytes \d+$/m);
    expect(text).toMatch(/^club_provider_info\{version="[^"]+",name="rig1"\} 1$/m);
  });
});

describe("recent errors", () => {
  it("keeps the last N, counting repeats in a row", () => {
    const errors = new RecentErrors(2);
    errors.add("tunnel", "a", new Date(0));
    errors.add("tunnel", "a", new Date(1000));
    errors.add("engine", "b");
    errors.add("request", "c");
    const list = errors.list();
    expect(list.map((e) => [e.kind, e.message, e.count])).toEqual([
      ["engine", "b", 1],
      ["request", "c", 1],
    ]);
    const one = new RecentErrors();
    one.add("tunnel", "a", new Date(0));
    one.add("tunnel", "a", new Date(1000));
    expect(one.list()).toEqual([
      { kind: "tunnel", message: "a", count: 2, time: "1970-01-01T00:00:01.000Z" },
    ]);
  });
});
