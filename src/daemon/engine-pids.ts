/**
 * Which processes are an engine's: the one listening on its port (a socket in
 * `/proc/net/tcp{,6}` whose inode one of `/proc/<pid>/fd` links to), plus that process's
 * descendants (llama-swap's model servers, vLLM's workers). Linux only; elsewhere, none.
 */
import { readFile, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";

/** TCP state LISTEN in `/proc/net/tcp`. */
const LISTEN = "0A";

/** The socket inodes listening on `port`, read from `/proc/net/tcp` and `/proc/net/tcp6`. */
export async function listeningInodes(port: number, proc = "/proc"): Promise<Set<string>> {
  const inodes = new Set<string>();
  for (const file of ["net/tcp", "net/tcp6"]) {
    let text: string;
    try {
      text = await readFile(join(proc, file), "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/);
      const local = f[1];
      if (!local || f[3] !== LISTEN) continue;
      const hexPort = local.slice(local.lastIndexOf(":") + 1);
      if (parseInt(hexPort, 16) === port && f[9] && f[9] !== "0") inodes.add(f[9]);
    }
  }
  return inodes;
}

async function pids(proc: string): Promise<number[]> {
  try {
    return (await readdir(proc)).filter((n) => /^\d+$/.test(n)).map(Number);
  } catch {
    return [];
  }
}

/** The process ids holding any of these socket inodes open (processes of other users are skipped). */
export async function socketOwners(inodes: Set<string>, proc = "/proc"): Promise<number[]> {
  if (inodes.size === 0) return [];
  const owners: number[] = [];
  for (const pid of await pids(proc)) {
    let fds: string[];
    try {
      fds = await readdir(join(proc, String(pid), "fd"));
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      const link = await readlink(join(proc, String(pid), "fd", fd)).catch(() => "");
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1] ?? "")) {
        owners.push(pid);
        break;
      }
    }
  }
  return owners;
}

/** Parent of every process, from the fourth field of `/proc/<pid>/stat`. */
async function parents(proc: string): Promise<Map<number, number>> {
  const map = new Map<number, number>();
  for (const pid of await pids(proc)) {
    const stat = await readFile(join(proc, String(pid), "stat"), "utf8").catch(() => "");
    // The command name, in parentheses, may hold spaces: read after its closing one.
    const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ppid = Number(after[1]);
    if (Number.isInteger(ppid)) map.set(pid, ppid);
  }
  return map;
}

/** The given processes and all their descendants. */
export async function withDescendants(roots: number[], proc = "/proc"): Promise<Set<number>> {
  const all = new Set(roots);
  if (roots.length === 0) return all;
  const parentOf = await parents(proc);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parentOf)
      if (!all.has(pid) && all.has(ppid)) {
        all.add(pid);
        grew = true;
      }
  }
  return all;
}

/**
 * The processes of the engine listening on `port` on this machine, with their descendants;
 * empty when none can be found (not Linux, or another user's process).
 * @example
 * const mine = await enginePids(8080); // Set { 4242, 4250 }
 */
export async function enginePids(port: number, proc = "/proc"): Promise<Set<number>> {
  return (await findEngine(port, proc)).pids;
}

/**
 * The engine's processes, and `hidden: true` when something listens on the port but its
 * process cannot be seen (another user's, or `ProtectProc=invisible`): then the engine's own
 * work on the GPU cannot be told from another program's.
 */
export async function findEngine(
  port: number,
  proc = "/proc",
): Promise<{ pids: Set<number>; hidden: boolean }> {
  const inodes = await listeningInodes(port, proc);
  const owners = await socketOwners(inodes, proc);
  return {
    pids: await withDescendants(owners, proc),
    hidden: inodes.size > 0 && owners.length === 0,
  };
}
