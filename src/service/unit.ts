/**
 * The systemd unit of the provider daemon: restarted always, hardened (no new privileges, a
 * read-only system, no home directories, a private /tmp, no capabilities), with access to the
 * GPU device nodes so nvidia-smi and rocm-smi work, and the key read from a 0600 file.
 */

/** Where the service's files live, relative to the target root. */
export const PATHS = {
  unit: "/etc/systemd/system/club-provider.service",
  configDir: "/etc/club-provider",
  key: "/etc/club-provider/key",
  env: "/etc/club-provider/env",
  state: "/var/lib/club-provider",
} as const;

/** The unit's name for systemctl. */
export const UNIT_NAME = "club-provider.service";

/** What the unit runs and as whom. */
export interface UnitOptions {
  /** Absolute path of the node binary. */
  node: string;
  /** Absolute path of `bin/club-provider`. */
  bin: string;
  user: string;
  /** Arguments of `club-provider start` besides `--api-key-file` (relay, name, services). */
  startArgs: string[];
  /** Groups that own GPU device nodes on this machine (`video`, `render`), when they exist. */
  supplementaryGroups?: string[];
}

/** One ExecStart argument, quoted and escaped for systemd (`%` specifiers, `$` variables). */
export function quoteArg(arg: string): string {
  const escaped = arg.replaceAll("%", "%%").replaceAll("$", "$$$$");
  if (/^[\w@%+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/**
 * The unit file's text.
 * @example
 * renderUnit({ node: "/usr/bin/node", bin: "/usr/local/bin/club-provider", user: "club-provider",
 *   startArgs: ["--relay", "wss://club.example"] });
 */
export function renderUnit(o: UnitOptions): string {
  const exec = [o.node, o.bin, "start", "--api-key-file", PATHS.key, ...o.startArgs]
    .map(quoteArg)
    .join(" ");
  const groups = o.supplementaryGroups?.length
    ? [`SupplementaryGroups=${o.supplementaryGroups.join(" ")}`]
    : [];
  return [
    "# Written by `club-provider service install`; run it again to change this file.",
    "# Local settings (CLUB_LOG_LEVEL, ...) go in " + PATHS.env + ".",
    "[Unit]",
    "Description=club-provider: serve this rig's models to an inference club",
    "Wants=network-online.target",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=exec",
    `User=${o.user}`,
    `Group=${o.user}`,
    ...groups,
    `ExecStart=${exec}`,
    "Environment=CLUB_LOG_FORMAT=json",
    `Environment=HOME=${PATHS.state}`,
    `Environment=XDG_CONFIG_HOME=${PATHS.state}/config`,
    `EnvironmentFile=-${PATHS.env}`,
    "Restart=always",
    "RestartSec=2",
    "# SIGTERM drains: in-flight requests get 30 s (--grace) before the tunnel closes.",
    "TimeoutStopSec=45",
    "StateDirectory=club-provider",
    "StateDirectoryMode=0700",
    "UMask=0077",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictSUIDSGID=yes",
    "RestrictRealtime=yes",
    "RestrictNamespaces=yes",
    "LockPersonality=yes",
    "RemoveIPC=yes",
    "PrivateMounts=yes",
    "ProtectProc=invisible",
    "SystemCallFilter=@system-service",
    "SystemCallErrorNumber=EPERM",
    "CapabilityBoundingSet=",
    "SystemCallArchitectures=native",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
    "# GPU devices for nvidia-smi and rocm-smi; device groups as named in /proc/devices.",
    "DevicePolicy=closed",
    "DeviceAllow=char-nvidia* rw",
    "DeviceAllow=char-drm rw",
    "DeviceAllow=char-kfd rw",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}
