/**
 * AMD GPUs without ROCm: the amdgpu driver's files under `/sys/class/drm/card*\/device`.
 * Reading them is cheap (no process), which also makes them a good per-heartbeat sample.
 */
import { readdir, readlink } from "node:fs/promises";
import { basename, join } from "node:path";
import type {
  DetectedGpu,
  DeviceSample,
  GpuSource,
  LiveFigures,
  SourceContext,
  SourceResult,
} from "./types.ts";
import { num, readText } from "./values.ts";

const AMD_VENDOR_ID = "0x1002";

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/** `card0`, `card1`, … whose PCI vendor is AMD, with their `device` directories. */
async function amdCards(ctx: SourceContext): Promise<{ card: string; dir: string }[]> {
  const drm = join(ctx.root, "sys", "class", "drm");
  const names = (await list(drm))
    .filter((n) => /^card\d+$/.test(n))
    .sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
  const found = await Promise.all(
    names.map(async (card) => {
      const dir = join(drm, card, "device");
      return (await readText(join(dir, "vendor"))) === AMD_VENDOR_ID ? { card, dir } : null;
    }),
  );
  return found.filter((c) => c !== null);
}

async function hwmonValue(dir: string, files: string[]): Promise<number | null> {
  for (const hwmon of await list(join(dir, "hwmon"))) {
    for (const file of files) {
      const value = num(await readText(join(dir, "hwmon", hwmon, file)));
      if (value !== null) return value;
    }
  }
  return null;
}

async function figures(dir: string): Promise<LiveFigures> {
  const [used, busy, milliC, microW] = await Promise.all([
    readText(join(dir, "mem_info_vram_used")),
    readText(join(dir, "gpu_busy_percent")),
    hwmonValue(dir, ["temp1_input"]),
    // Newer kernels report only the instantaneous `power1_input` on some GPUs.
    hwmonValue(dir, ["power1_average", "power1_input"]),
  ]);
  const usedBytes = num(used);
  return {
    vram_used_mb: usedBytes === null ? null : Math.round(usedBytes / 1024 / 1024),
    utilization_pct: num(busy),
    temperature_c: milliC === null ? null : milliC / 1000,
    power_w: microW === null ? null : Math.round(microW / 1e5) / 10,
  };
}

function pciSlot(uevent: string | null): string | null {
  return /^PCI_SLOT_NAME=(.+)$/m.exec(uevent ?? "")?.[1]?.trim() ?? null;
}

async function driverName(dir: string): Promise<string | null> {
  try {
    return basename(await readlink(join(dir, "driver")));
  } catch {
    return null;
  }
}

/** AMD GPUs from amdgpu sysfs. */
export const amdSysfsSource: GpuSource = {
  name: "amdgpu-sysfs",
  platforms: ["linux"],

  async detect(ctx: SourceContext): Promise<SourceResult> {
    const notes: string[] = [];
    const gpus = await Promise.all(
      (await amdCards(ctx)).map(async ({ card, dir }): Promise<DetectedGpu> => {
        const [total, product, pciId, uevent, driver, version] = await Promise.all([
          readText(join(dir, "mem_info_vram_total")),
          readText(join(dir, "product_name")),
          readText(join(dir, "device")),
          readText(join(dir, "uevent")),
          driverName(dir),
          readText(join(ctx.root, "sys", "module", "amdgpu", "version")),
        ]);
        const totalBytes = num(total);
        if (!product)
          notes.push(
            `amdgpu sysfs: ${card} has no product name (PCI device ${pciId ?? "unknown"}); install ROCm (rocm-smi) for the model name, or declare it with the \`gpus\` setting`,
          );
        return {
          vendor: "amd",
          model: product || null,
          vram_mb: totalBytes === null ? null : Math.round(totalBytes / 1024 / 1024),
          vram_estimated: false,
          unified_memory: false,
          uuid: null,
          bus_id: pciSlot(uevent),
          driver: version ?? driver,
          mig: null,
          source: "amdgpu-sysfs",
          device: card,
          ...(await figures(dir)),
        };
      }),
    );
    return { gpus, notes };
  },

  async sample(ctx: SourceContext): Promise<DeviceSample[]> {
    const cards = await amdCards(ctx);
    return Promise.all(
      cards.map(async ({ card, dir }) => ({ device: card, ...(await figures(dir)) })),
    );
  },
};
