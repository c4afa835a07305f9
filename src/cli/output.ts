/** Terminal output: aligned tables and the one format for errors. */

/** Renders rows as left-aligned columns under a header. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function printError(message: string): void {
  process.stderr.write(`club-provider: ${message}\n`);
}
