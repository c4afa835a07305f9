/**
 * The rig page's server-rendered HTML: the same figures the live page shows, as plain tables,
 * so the page says something with JavaScript slow or off. The live page replaces it.
 */
import { escapeHtml as e } from "../ui/assets.ts";
import type { RigSnapshot } from "../ui/browser/rig-types.ts";

const mb = (n: number | null): string => (n === null ? "?" : `${(n / 1024).toFixed(1)} GB`);
const opt = (n: number | null, unit: string): string => (n === null ? "?" : `${n}${unit}`);

function table(caption: string, head: string[], rows: string[][]): string {
  if (rows.length === 0) return `<section><h2>${e(caption)}</h2><p>None.</p></section>`;
  return (
    `<section><h2>${e(caption)}</h2><table><thead><tr>${head.map((h) => `<th scope="col">${e(h)}</th>`).join("")}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((c) => `<td>${e(c)}</td>`).join("")}</tr>`).join("") +
    `</tbody></table></section>`
  );
}

/** The snapshot as static HTML. */
export function renderRigHtml(s: RigSnapshot): string {
  const state = s.pause.paused ? `Paused: ${s.pause.paused}` : "Serving";
  return (
    `<header><h1>${e(s.name)}</h1><p>club-provider ${e(s.version)} · relay ${e(s.relay)} · <strong>${e(state)}</strong></p></header>` +
    table(
      "Tunnels",
      ["state", "since", "connects"],
      s.tunnels.map((t) => [
        t.state,
        t.since === null ? "" : new Date(t.since * 1000).toISOString(),
        String(t.connects),
      ]),
    ) +
    table(
      "GPUs",
      ["GPU", "VRAM", "utilisation", "temperature", "power"],
      s.gpus.map((g) => [
        `${g.index}: ${g.model ?? "unknown"}`,
        `${mb(g.vram_used_mb)} / ${mb(g.vram_mb)}`,
        opt(g.utilization_pct, " %"),
        opt(g.temperature_c, " °C"),
        opt(g.power_w, " W"),
      ]),
    ) +
    table(
      "Engines and models",
      [
        "engine",
        "state",
        "model",
        "sharing",
        "in flight",
        "queued",
        "requests (1 h)",
        "tokens (1 h)",
      ],
      s.services.flatMap((svc) =>
        (svc.models.length ? svc.models : [null]).map((m) => [
          `${svc.name} (${svc.engine})`,
          svc.status,
          m?.id ?? "",
          m?.access ?? "",
          String(svc.in_flight),
          String(svc.queued),
          m ? String(m.requests_hour) : "",
          m ? String(m.tokens_hour) : "",
        ]),
      ),
    ) +
    table(
      "Running requests",
      ["model", "member", "endpoint", "elapsed", "sent", "tokens", "progress"],
      s.jobs.map((j) => [
        j.model,
        j.member ?? "you",
        j.endpoint,
        `${Math.max(0, s.now - j.started)} s`,
        `${j.bytes} B`,
        j.tokens === null ? "" : String(j.tokens),
        j.progress === null ? (j.detail ?? "") : `${Math.round(j.progress * 100)} %`,
      ]),
    ) +
    table(
      "Last errors",
      ["time", "kind", "message"],
      s.errors.map((x) => [x.time, x.kind, x.count > 1 ? `${x.message} (×${x.count})` : x.message]),
    )
  );
}
