/**
 * The service's system user. On the real system `useradd` makes it; inside a throwaway root
 * (`--root`) the root's own `/etc/passwd` and `/etc/group` are edited, so tests and image
 * builds need neither root nor the host's user database.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { UserError } from "../errors.ts";
import { runTool } from "../hardware/index.ts";
import { PATHS } from "./unit.ts";

/** A user or group entry: name and numeric id. */
export interface Account {
  name: string;
  id: number;
}

function entries(root: string, file: "passwd" | "group"): string[][] {
  const path = join(root, "etc", file);
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim() && !l.startsWith("#"))
    .map((l) => l.split(":"));
}

/** The user `name` in `root`'s passwd file, if it is there. */
export function findUser(root: string, name: string): (Account & { gid: number }) | undefined {
  const e = entries(root, "passwd").find((f) => f[0] === name);
  return e ? { name, id: Number(e[2]), gid: Number(e[3]) } : undefined;
}

/** Which of `names` are groups in `root`'s group file. */
export function existingGroups(root: string, names: readonly string[]): string[] {
  const groups = new Set(entries(root, "group").map((f) => f[0]));
  return names.filter((n) => groups.has(n));
}

/** The highest id in the system range (like useradd: 999 downwards) free in both files. */
function freeSystemId(root: string): number {
  const used = new Set([
    ...entries(root, "passwd").map((f) => Number(f[2])),
    ...entries(root, "group").map((f) => Number(f[2])),
  ]);
  for (let id = 999; id >= 100; id--) if (!used.has(id)) return id;
  throw new UserError("no_free_uid", `no free system user id (100-999) in ${root}/etc/passwd`);
}

function append(root: string, file: string, line: string): void {
  const path = join(root, "etc", file);
  mkdirSync(dirname(path), { recursive: true });
  const text = existsSync(path) ? readFileSync(path, "utf8") : "";
  if (text === "")
    writeFileSync(path, `${line}\n`, { mode: file.endsWith("shadow") ? 0o640 : 0o644 });
  else appendFileSync(path, `${text.endsWith("\n") ? "" : "\n"}${line}\n`);
}

/**
 * Makes the system user `name` (with a group of the same name, home in the state directory,
 * no login shell) unless it exists. Resolves with what was done, for the install report.
 */
export async function ensureUser(root: string, name: string): Promise<string> {
  const existing = findUser(root, name);
  if (existing) return `system user ${name} exists (uid ${existing.id})`;
  if (root === "/") {
    const result = await runTool(
      "useradd",
      ["--system", "--user-group", "--home-dir", PATHS.state, "--no-create-home"].concat([
        "--shell",
        "/usr/sbin/nologin",
        "--comment",
        "club-provider daemon",
        name,
      ]),
      { env: process.env, timeoutMs: 30_000 },
    );
    if (!result.ok)
      throw new UserError(
        "useradd_failed",
        `cannot create the system user ${name}: ${result.message}. Run as root (sudo), or create it yourself and run this again.`,
      );
    return `created system user ${name} (uid ${findUser(root, name)?.id ?? "?"})`;
  }
  const id = freeSystemId(root);
  append(root, "group", `${name}:x:${id}:`);
  append(
    root,
    "passwd",
    `${name}:x:${id}:${id}:club-provider daemon:${PATHS.state}:/usr/sbin/nologin`,
  );
  if (existsSync(join(root, "etc", "shadow"))) append(root, "shadow", `${name}:!:::::::`);
  if (existsSync(join(root, "etc", "gshadow"))) append(root, "gshadow", `${name}:!::`);
  return `created system user ${name} (uid ${id}) in ${join(root, "etc", "passwd")}`;
}

/** Removes the user (`userdel` on the real system; the root's files otherwise). */
export async function removeUser(root: string, name: string): Promise<string> {
  if (!findUser(root, name)) return `no system user ${name}`;
  if (root === "/") {
    const result = await runTool("userdel", [name], { env: process.env, timeoutMs: 30_000 });
    if (!result.ok)
      throw new UserError("userdel_failed", `cannot remove the user ${name}: ${result.message}`);
    return `removed system user ${name}`;
  }
  for (const file of ["passwd", "group", "shadow", "gshadow"]) {
    const path = join(root, "etc", file);
    if (!existsSync(path)) continue;
    const lines = readFileSync(path, "utf8").split("\n");
    writeFileSync(path, lines.filter((l) => !l.startsWith(`${name}:`)).join("\n"));
  }
  return `removed system user ${name} from ${join(root, "etc", "passwd")}`;
}
