/**
 * `club-provider status` prints each request in flight with its engine's detail and, where the
 * engine says how far it got, a progress bar (the daemon's `/status` `jobs`).
 */
import { describe, expect, it } from "vitest";
import { progressBar, renderStatus, type DaemonStatus } from "../../src/cli/status.ts";

const NOW = 1_800_000_000_000;

const base: DaemonStatus = {
  name: "rig1",
  version: "1.0.0",
  relay: "wss://relay.example",
  tunnels: [{ state: "connected", connects: 1, connection_id: "conn_1" }],
  in_flight: 2,
  services: [],
  models: [],
};

describe("club-provider status: jobs", () => {
  it("prints each running job with its detail, and a bar where progress is known", () => {
    const started = NOW / 1000 - 75;
    const out = renderStatus(
      {
        ...base,
        jobs: [
          {
            request_id: "req_a",
            model: "sdxl",
            endpoint: "/v1/images/generations",
            service: "comfyui-8188",
            member: null,
            started,
            bytes: 0,
            tokens: null,
            progress: null,
            detail: "running Blur 2",
          },
          {
            request_id: "req_b",
            model: "ltxv",
            endpoint: "/v1/videos/generations",
            service: "comfyui-8188",
            member: "bob",
            started,
            bytes: 0,
            tokens: null,
            progress: 0.4,
            detail: "Upscale 10/25",
          },
        ],
      },
      NOW,
    );
    expect(out).toMatch(/^JOB +MODEL +ENDPOINT +FOR +PROGRESS +DETAIL$/m);
    expect(out).toMatch(/^req_a +sdxl +\/v1\/images\/generations +1m 15s +- +running Blur 2$/m);
    expect(out).toMatch(
      /^req_b +ltxv +\/v1\/videos\/generations +1m 15s +\[########------------\] +40% +Upscale 10\/25$/m,
    );
  });

  it("prints no job table when nothing runs", () => {
    expect(renderStatus({ ...base, jobs: [] }, NOW)).not.toContain("PROGRESS");
    expect(progressBar(null)).toBe("");
    expect(progressBar(1)).toBe(`[${"#".repeat(20)}] 100%`);
  });
});
