/** What both pages share: htm bound to Preact, formatting, and small widgets. */
import { h, type ComponentChildren, type VNode } from "preact";
import htm from "htm";

export const html = htm.bind(h) as (strings: TemplateStringsArray, ...values: unknown[]) => VNode;

/** Bytes as a short readable figure. */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "?";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i] ?? "B"}`;
}

/** Seconds as `1 h 2 min`, `3 min 4 s`, `5 s`. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A unix time (seconds) as a local date and time. */
export function when(unix: number | null | undefined): string {
  return unix ? new Date(unix * 1000).toLocaleString() : "";
}

/** A titled section. */
export function Section(props: { title: string; children?: ComponentChildren }): VNode {
  const id = `h-${props.title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return html`<section aria-labelledby=${id}>
    <h2 id=${id}>${props.title}</h2>
    ${props.children}
  </section>`;
}

/** A table with a header row; `empty` when there are no rows. */
export function Table(props: { head: string[]; rows: ComponentChildren[][]; empty: string }) {
  if (props.rows.length === 0) return html`<p class="empty">${props.empty}</p>`;
  return html`<table>
    <thead>
      <tr>
        ${props.head.map((c) => html`<th scope="col">${c}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${props.rows.map(
        (r) =>
          html`<tr>
            ${r.map((c) => html`<td>${c}</td>`)}
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** A line of samples in [0, max] as an SVG sparkline, described for screen readers. */
export function Sparkline(props: { values: (number | null)[]; max: number; label: string }): VNode {
  const w = 120;
  const hgt = 28;
  const n = props.values.length;
  const points = props.values
    .map((v, i) => {
      if (v === null) return null;
      const x = n <= 1 ? w : (i / (n - 1)) * w;
      const y = hgt - (Math.min(v, props.max) / (props.max || 1)) * (hgt - 2) - 1;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .filter((p) => p !== null)
    .join(" ");
  return html`<svg
    class="spark"
    width=${w}
    height=${hgt}
    viewBox=${`0 0 ${w} ${hgt}`}
    role="img"
    aria-label=${props.label}
  >
    <polyline points=${points} fill="none" stroke="currentColor" stroke-width="1.5" />
  </svg>`;
}

/** A progress bar with its figure in words. */
export function Progress(props: { value: number | null; label: string }): VNode {
  if (props.value === null) return html`<span>${props.label}</span>`;
  const pct = Math.round(props.value * 100);
  return html`<span class="progress">
    <progress max="100" value=${pct} aria-label=${props.label}>${pct} %</progress>
    ${` ${pct} %`}
  </span>`;
}

/** Reads a JSON error envelope's message, or the status line. */
export async function errorMessage(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: { message?: string } };
    return body.error?.message ?? `${res.status} ${res.statusText}`;
  } catch {
    return `${res.status} ${res.statusText}`;
  }
}
