/**
 * CPU, RAM and OS of the machine. On Linux from `/proc` and `/etc/os-release` (file reads, no
 * process); on macOS from one `sysctl` call and `sw_vers`; elsewhere from Node's `os` module.
 */
import os from "node:os";
import { join } from "node:path";
import { runTool } from "../process/run-tool.ts";
import type { HostInfo, SourceContext } from "./types.ts";
import { num, readText } from "./values.ts";

type Facts = Omit<HostInfo, "hostname" | "arch">;

/** The machine's architecture in Node's spelling, whatever Node build runs (Rosetta, WoW64). */
function machineArch(): string {
  const m = os.machine();
  if (m === "x86_64" || m === "amd64") return "x64";
  if (m === "aarch64") return "arm64";
  return m || os.arch();
}

/** CPU facts from `/proc/cpuinfo`; exported for tests of odd files. */
export function parseCpuinfo(cpuinfo: string): HostInfo["cpu"] {
  let model: string | null = null;
  let threads = 0;
  const cores = new Set<string>();
  for (const block of cpuinfo.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of block.split("\n")) {
      const i = line.indexOf(":");
      if (i > 0) fields.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
    }
    if (!fields.has("processor")) continue;
    threads++;
    model ??= fields.get("model name") || null;
    const core = fields.get("core id");
    if (core !== undefined) cores.add(`${fields.get("physical id") ?? "0"}:${core}`);
  }
  return {
    model,
    cores: cores.size > 0 ? cores.size : null,
    threads: threads > 0 ? threads : null,
  };
}

async function linux(ctx: SourceContext): Promise<Facts> {
  const [cpuinfo, meminfo, release] = await Promise.all([
    readText(join(ctx.root, "proc", "cpuinfo")),
    readText(join(ctx.root, "proc", "meminfo")),
    readText(join(ctx.root, "etc", "os-release")).then(
      async (t) => t ?? readText(join(ctx.root, "usr", "lib", "os-release")),
    ),
  ]);
  const kib = num(/^MemTotal:\s*(\d+)\s*kB/m.exec(meminfo ?? "")?.[1]);
  const pretty = /^PRETTY_NAME=(.*)$/m.exec(release ?? "")?.[1]?.replace(/^["']|["']$/g, "");
  return {
    os: pretty || null,
    cpu: cpuinfo ? parseCpuinfo(cpuinfo) : { model: null, cores: null, threads: null },
    ram_mb: kib === null ? null : Math.round(kib / 1024),
  };
}

async function darwin(ctx: SourceContext, notes: string[]): Promise<Facts> {
  const options = { env: ctx.env, timeoutMs: ctx.timeoutMs };
  const [sysctl, swVers] = await Promise.all([
    runTool(
      "sysctl",
      ["-n", "machdep.cpu.brand_string", "hw.physicalcpu", "hw.logicalcpu", "hw.memsize"],
      options,
    ),
    runTool("sw_vers", [], options),
  ]);
  if (!sysctl.ok) notes.push(`host: CPU and memory unknown: ${sysctl.message}`);
  if (!swVers.ok) notes.push(`host: macOS version unknown: ${swVers.message}`);
  const [brand, cores, threads, bytes] = sysctl.ok ? sysctl.stdout.split("\n") : [];
  const value = (key: string): string | undefined =>
    swVers.ok ? new RegExp(`^${key}:\\s*(.+)$`, "m").exec(swVers.stdout)?.[1]?.trim() : undefined;
  const name = value("ProductName");
  const version = value("ProductVersion");
  const memsize = num(bytes);
  return {
    os: name && version ? `${name} ${version}` : null,
    cpu: { model: brand?.trim() || null, cores: num(cores), threads: num(threads) },
    ram_mb: memsize === null ? null : Math.round(memsize / 1024 / 1024),
  };
}

function fromNode(ctx: SourceContext): Facts {
  const cpus = os.cpus();
  return {
    os: ctx.platform === "win32" ? os.version() || null : `${os.type()} ${os.release()}`,
    cpu: { model: cpus[0]?.model.trim() || null, cores: null, threads: cpus.length || null },
    ram_mb: Math.round(os.totalmem() / 1024 / 1024),
  };
}

/**
 * Host facts; a fact that cannot be read is null, with a note when a tool failed.
 * @example
 * const notes: string[] = [];
 * const host = await detectHost({ env: process.env, platform: process.platform, root: "/", timeoutMs: 3000 }, notes);
 */
export async function detectHost(ctx: SourceContext, notes: string[]): Promise<HostInfo> {
  const facts =
    ctx.platform === "linux"
      ? await linux(ctx)
      : ctx.platform === "darwin"
        ? await darwin(ctx, notes)
        : fromNode(ctx);
  return { hostname: os.hostname(), arch: machineArch(), ...facts };
}
