/**
 * `club-provider doctor` checks the ComfyUI workflows the operator installed against the
 * engine's `/object_info`: a fixed value outside its node's limits, which ComfyUI would refuse
 * on every request, is named with the node, the input and the limit.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { checkEngines } from "../../src/cli/doctor-checks.ts";
import { resolveConfig } from "../../src/config.ts";
import { scratchDir } from "../e2e/harness.ts";
import { FakeComfyUI } from "../fakes/comfyui.ts";

const LTXV = readFileSync(join(import.meta.dirname, "../fakes/comfyui-ltxv.json"), "utf8");
let comfy: FakeComfyUI;
let dir = "";

beforeAll(async () => {
  comfy = new FakeComfyUI();
  await comfy.start();
  const xdg = scratchDir();
  dir = join(xdg, "club-provider", "workflows");
  mkdirSync(dir, { recursive: true });
  const bad = JSON.parse(LTXV) as {
    club: { model: string };
    workflow: Record<string, { inputs: Record<string, unknown> }>;
  };
  bad.club.model = "ltxv-bad";
  bad.workflow["7"]!.inputs.max_shift = 200;
  writeFileSync(join(dir, "bad.json"), JSON.stringify(bad));
  process.env.XDG_CONFIG_HOME = xdg;
});

afterAll(async () => {
  await comfy.stop();
  await closeUpstreamPools();
});

describe("club-provider doctor: ComfyUI workflows", () => {
  it("warns of a workflow whose fixed value is beyond its node's limits", async () => {
    const config = resolveConfig({}, {}, { service: [comfy.url], autodetect: false });
    const results = await checkEngines(config);
    const name = results[0]!.name;
    expect(results[0]).toMatchObject({ status: "ok" });
    expect(results).toContainEqual({
      name: `${name} workflow`,
      status: "warn",
      detail: `${join(dir, "bad.json")}: node 7 LTXVScheduler.max_shift 200 is above its max 100`,
      fix: "install what it names, or correct the value in the workflow file (see docs/comfyui-workflows.md)",
    });
  });
});
