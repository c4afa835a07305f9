/** Reading numbers out of tool output, where "unknown" has many spellings. */
import { readFile } from "node:fs/promises";
import type { GpuVendor } from "./types.ts";

/**
 * A number, or null for anything a tool prints instead of one: `[N/A]`, `N/A`,
 * `[Not Supported]`, `[Unknown Error]`, an empty field.
 */
export function num(value: string | undefined | null): number | null {
  if (value === undefined || value === null) return null;
  const text = value.trim();
  if (text === "" || text.startsWith("[") || /^n\/?a$/i.test(text)) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

/** A text field (numbers as text), or null for the same "unknown" spellings `num` knows. */
export function text(value: unknown): string | null {
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : null;
  if (typeof value !== "string") return null;
  const t = value.trim();
  if (t === "" || t.startsWith("[") || /^n\/?a$/i.test(t) || /^unknown$/i.test(t)) return null;
  return t;
}

/** Bytes (a number or its text) in MiB, rounded; null when unknown. */
export function bytesToMib(value: string | number | null | undefined): number | null {
  const n = typeof value === "number" ? value : num(value);
  return n === null ? null : Math.round(n / 1024 / 1024);
}

/** `"64 GB"`, `"1536 MB"` (as macOS writes sizes) in MiB; null when unreadable. */
export function sizeToMib(value: unknown): number | null {
  if (typeof value !== "string") return null;
  const m = /^\s*([\d.]+)\s*(TB|GB|MB)\s*$/i.exec(value);
  if (!m?.[1] || !m[2]) return null;
  const n = Number(m[1]);
  if (!Number.isFinite(n)) return null;
  const unit = m[2].toUpperCase();
  return Math.round(n * (unit === "TB" ? 1024 * 1024 : unit === "GB" ? 1024 : 1));
}

/** A small file's trimmed contents, or null when it cannot be read. */
export async function readText(path: string): Promise<string | null> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch {
    return null;
  }
}

/** A case-insensitive look-up: tools disagree on `Card series` vs `Card Series`. */
export function field(record: Record<string, unknown>, ...names: string[]): unknown {
  const wanted = names.map((n) => n.toLowerCase());
  for (const name of wanted) {
    for (const [key, value] of Object.entries(record)) if (key.toLowerCase() === name) return value;
  }
  return undefined;
}

/** True for a plain JSON object. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The vendor named in a tool's vendor or model text (`sppci_vendor_Apple`, `Intel Corporation`). */
export function vendorFromName(name: string): GpuVendor {
  const v = name.toLowerCase();
  if (v.includes("apple")) return "apple";
  if (v.includes("nvidia")) return "nvidia";
  if (/(^|[^a-z])(amd|ati)([^a-z]|$)|radeon|advanced micro devices/.test(v)) return "amd";
  if (v.includes("intel")) return "intel";
  return "other";
}
