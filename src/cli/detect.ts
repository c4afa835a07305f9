/**
 * `club-provider detect`: what this rig has (GPUs, CPU, RAM, OS) and which engines answer,
 * with the reason every probed URL was or was not recognised. Detects now; needs no daemon.
 */
import { Command } from "commander";
import { adapters } from "../../adapters/index.ts";
import { openStore, resolveConfig } from "../config.ts";
import { discover } from "../discovery/catalog.ts";
import { autodetectCandidates } from "../discovery/services.ts";
import { detectHardware, manifestGpus, type Gpu, type HardwareReport } from "../hardware/index.ts";
import { silentLogger } from "../log.ts";
import type { ManifestGpu } from "../protocol/index.ts";
import { print, table } from "./output.ts";

interface DetectFlags {
  json?: boolean;
  service: string[];
  autodetect: boolean;
}

/** One probed URL, as `detect` reports it. */
interface ProbedService {
  name: string;
  /** The adapter that recognised it; for one that is down, the likeliest by port. */
  engine: string;
  url: string;
  /** `config` for configured and `--service` URLs, `autodetect` for default ports. */
  origin: "config" | "autodetect";
  status: string;
  reason: string;
  models: string[];
}

const size = (mib: number | null): string =>
  mib === null ? "-" : mib >= 1024 ? `${(mib / 1024).toFixed(1)} GiB` : `${mib} MiB`;
const unit = (n: number | null, suffix: string): string => (n === null ? "-" : `${n}${suffix}`);

function gpuRows(gpus: Gpu[]): string[][] {
  return gpus.map((g) => [
    String(g.index),
    g.vendor,
    `${g.model ?? "unknown"}${g.mig ? " [MIG]" : ""}`,
    `${g.vram_estimated ? "~" : ""}${size(g.vram_mb)}${g.unified_memory ? " (unified)" : ""}`,
    size(g.vram_used_mb),
    unit(g.utilization_pct, "%"),
    unit(g.temperature_c, "°C"),
    unit(g.power_w, " W"),
    g.driver ?? "-",
    g.source,
  ]);
}

function printHuman(
  hw: HardwareReport,
  advertised: ManifestGpu[],
  services: ProbedService[],
): void {
  const { host } = hw;
  if (hw.gpus.length)
    print(
      table(
        ["GPU", "VENDOR", "MODEL", "VRAM", "USED", "UTIL", "TEMP", "POWER", "DRIVER", "SOURCE"],
        gpuRows(hw.gpus),
      ),
    );
  else print("No GPU detected.");
  print("");
  print(
    table(
      ["HOST", "OS", "ARCH", "CPU", "CORES", "THREADS", "RAM"],
      [
        [
          host.hostname,
          host.os ?? "-",
          host.arch,
          host.cpu.model ?? "-",
          unit(host.cpu.cores, ""),
          unit(host.cpu.threads, ""),
          size(host.ram_mb),
        ],
      ],
    ),
  );
  print("");
  print(
    advertised.length
      ? `Advertised to the club: ${advertised.map((g) => `GPU ${g.index} ${g.vendor} ${g.model} ${g.vram_gb} GB`).join("; ")}`
      : "Advertised to the club: no GPU",
  );
  if (hw.notes.length) print(`\nNotes:\n${hw.notes.map((n) => `  - ${n}`).join("\n")}`);
  print("");
  if (services.length === 0) {
    print("No engine URL probed: add one with --service http://HOST:PORT, or drop --no-autodetect");
    return;
  }
  print(
    table(
      ["SERVICE", "ENGINE", "URL", "FOUND BY", "STATUS", "DETAIL"],
      services.map((s) => [
        s.name,
        s.status === "down" ? "-" : s.engine,
        s.url,
        s.origin,
        s.status,
        s.reason,
      ]),
    ),
  );
}

/** The `detect` command. */
export function detectCommand(): Command {
  return new Command("detect")
    .description(
      "show this rig's GPUs, CPU, RAM and OS, and the engines found, with why each probed URL was or was not recognised",
    )
    .option("--json", "print everything as JSON")
    .option(
      "--service <url>",
      "also probe this engine URL (repeatable)",
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option("--no-autodetect", "do not probe the default engine ports")
    .action(async (opts: DetectFlags) => {
      const config = resolveConfig(openStore().store, process.env, {
        service: opts.service,
        ...(opts.autodetect ? {} : { autodetect: false }),
      });
      // Probed as if configured, so the URLs where nothing answers stay listed with the reason.
      const candidates = config.autodetect
        ? autodetectCandidates({ services: config.services, autodetect: true }, adapters)
        : [];
      const [hardware, catalog] = await Promise.all([
        detectHardware(),
        discover({
          services: [...config.services, ...candidates.map((url) => ({ url }))],
          autodetect: false,
          log: silentLogger,
        }),
      ]);
      const services: ProbedService[] = catalog.services.map((s) => ({
        name: s.name,
        engine: s.adapter.name,
        url: s.upstream.url,
        origin: candidates.includes(s.upstream.url) ? "autodetect" : "config",
        status: s.status,
        reason: s.reason,
        models: s.info?.models.map((m) => m.id) ?? [],
      }));
      const advertised = manifestGpus(hardware.gpus, config.gpus);
      if (opts.json) {
        print(JSON.stringify({ ...hardware, advertised_gpus: advertised, services }, null, 2));
        return;
      }
      printHuman(hardware, advertised, services);
    });
}
