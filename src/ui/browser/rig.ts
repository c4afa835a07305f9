/**
 * The rig's page: the snapshot the shell carries, then live `status` events from `/events`.
 * The owner's actions (pause, resume, share and unshare a model, engine start and stop) carry
 * the shell's CSRF token.
 */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import {
  Progress,
  Section,
  Sparkline,
  Table,
  bytes,
  duration,
  errorMessage,
  html,
  when,
} from "./common.ts";
import type { ManagedEngine, RigGpu, RigModel, RigSnapshot } from "./rig-types.ts";

const csrf = document.querySelector<HTMLMetaElement>('meta[name="csrf"]')?.content ?? "";

async function post(path: string, body: Record<string, unknown> = {}): Promise<string | null> {
  const res = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json", "x-club-csrf": csrf },
    body: JSON.stringify(body),
  });
  return res.ok ? null : errorMessage(res);
}

function Gpu(props: { gpu: RigGpu; every: number }) {
  const g = props.gpu;
  const span = duration(props.every * g.utilization_history.length);
  return html`<tr>
    <td>${g.index}: ${g.model ?? "unknown GPU"}</td>
    <td>
      ${`${bytes(g.vram_used_mb === null ? null : g.vram_used_mb * 1048576)} / ${bytes(g.vram_mb === null ? null : g.vram_mb * 1048576)}`}
      <${Sparkline}
        values=${g.vram_history}
        max=${g.vram_mb ?? Math.max(1, ...g.vram_history.map((v) => v ?? 0))}
        label=${`VRAM used over the last ${span}`}
      />
    </td>
    <td>
      <span data-testid="util">${g.utilization_pct ?? "?"} %</span>
      <${Sparkline}
        values=${g.utilization_history}
        max=${100}
        label=${`utilisation over the last ${span}`}
      />
    </td>
    <td>${g.temperature_c ?? "?"} °C</td>
    <td>${g.power_w ?? "?"} W</td>
  </tr>`;
}

function PauseControl(props: { s: RigSnapshot; onError: (m: string | null) => void }) {
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const act = async (path: string): Promise<void> => {
    setBusy(true);
    props.onError(await post(path, path === "/pause" && reason ? { reason } : {}));
    setBusy(false);
  };
  const p = props.s.pause;
  if (p.manual !== null)
    return html`<p>
      <strong class="paused">Paused: ${p.paused}</strong>
      <button type="button" disabled=${busy} onClick=${() => void act("/resume")}>
        Resume serving
      </button>
    </p>`;
  return html`<form
    class="inline"
    onSubmit=${(e: Event) => {
      e.preventDefault();
      void act("/pause");
    }}
  >
    <strong class=${p.paused ? "paused" : "serving"}>
      ${p.paused ? `Paused: ${p.paused}` : "Serving"}
    </strong>
    <label>
      Reason
      <input
        value=${reason}
        maxlength="200"
        onInput=${(e: Event) => setReason((e.target as HTMLInputElement).value)}
      />
    </label>
    <button type="submit" disabled=${busy}>Pause serving</button>
  </form>`;
}

function Engines(props: {
  engines: ManagedEngine[] | null | undefined;
  onError: (m: string | null) => void;
}) {
  const engines = props.engines;
  if (!engines) return null;
  const act = async (name: string, verb: "start" | "stop"): Promise<void> => {
    props.onError(await post(`/engines/${encodeURIComponent(name)}/${verb}`));
  };
  return html`<${Section} title="Managed engines">
    <${Table}
      head=${["engine", "state", "models", "VRAM", "last used", ""]}
      empty="No engines are managed by the daemon."
      rows=${engines.map((e) => [
        e.name,
        e.reason ? `${e.state} (${e.reason})` : e.state,
        (e.models ?? []).map((m) => (typeof m === "string" ? m : m.id)).join(", "),
        e.vramMiB ? bytes(e.vramMiB * 1048576) : "",
        typeof e.lastUsedAt === "number"
          ? when(e.lastUsedAt > 1e12 ? e.lastUsedAt / 1000 : e.lastUsedAt)
          : (e.lastUsedAt ?? ""),
        e.state === "stopped" || e.state === "failed"
          ? html`<button type="button" onClick=${() => void act(e.name, "start")}>
              Start ${e.name}
            </button>`
          : html`<button type="button" onClick=${() => void act(e.name, "stop")}>
              Stop ${e.name}
            </button>`,
      ])}
    />
  <//>`;
}

/** A model's sharing, with the button that shares it with the club or makes it private. */
function Sharing(props: { model: RigModel; onError: (m: string | null) => void }) {
  const [busy, setBusy] = useState(false);
  const m = props.model;
  const shared = m.access !== "private";
  const act = async (): Promise<void> => {
    setBusy(true);
    props.onError(await post(shared ? "/unshare" : "/share", { model: m.id }));
    setBusy(false);
  };
  return html`<span class="sharing">
    ${`${m.access} `}<button
      type="button"
      disabled=${busy}
      aria-label=${shared ? `Unshare ${m.id}` : `Share ${m.id} with the club`}
      onClick=${() => void act()}
    >
      ${shared ? "Unshare" : "Share"}
    </button>
  </span>`;
}

function App(props: { initial: RigSnapshot }) {
  const [s, setS] = useState(props.initial);
  const [live, setLive] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const events = new EventSource("/events");
    events.addEventListener("status", (e) => {
      setS(JSON.parse((e as MessageEvent<string>).data) as RigSnapshot);
      setLive(true);
    });
    events.onerror = () => setLive(false);
    return () => events.close();
  }, []);
  return html`<header>
      <h1>${s.name}</h1>
      <p>
        ${`club-provider ${s.version} · relay ${s.relay} · up ${duration(s.now - s.started)} · `}
        <span class=${live ? "live" : "stale"} role="status" data-testid="live">
          ${live ? "live" : "not live (reconnecting)"}
        </span>
      </p>
      <${PauseControl} s=${s} onError=${setError} />
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    </header>
    <${Section} title="Tunnels">
      <${Table}
        head=${["relay", "state", "since", "connects"]}
        empty="No tunnel."
        rows=${s.tunnels.map((t) => [s.relay, t.state, when(t.since), String(t.connects)])}
      />
    <//>
    <${Section} title="GPUs">
      ${
        s.gpus.length === 0
          ? html`<p class="empty">No GPU detected.</p>`
          : html`<table>
              <thead>
                <tr>
                  <th scope="col">GPU</th>
                  <th scope="col">VRAM used / total</th>
                  <th scope="col">utilisation</th>
                  <th scope="col">temperature</th>
                  <th scope="col">power</th>
                </tr>
              </thead>
              <tbody>
                ${s.gpus.map((g) => html`<${Gpu} gpu=${g} every=${s.sample_seconds} />`)}
              </tbody>
            </table>`
      }
    <//>
    <${Section} title="Engines and models">
      <${Table}
        head=${["engine", "state", "in flight", "queued", "model", "sharing", "requests (1 h)", "errors (1 h)", "tokens (1 h)", "sent (1 h)"]}
        empty="No engine found yet."
        rows=${s.services.flatMap((svc) =>
          (svc.models.length ? svc.models : [null]).map((m) => [
            html`<span title=${svc.url}>${svc.name} (${svc.engine})</span>`,
            svc.status === "ready" ? "ready" : `${svc.status}: ${svc.reason}`,
            `${svc.in_flight} / ${svc.max_concurrent}`,
            String(svc.queued),
            m ? (m.paused ? `${m.id} (paused: ${m.paused})` : m.id) : "",
            m ? html`<${Sharing} model=${m} onError=${setError} />` : "",
            m ? String(m.requests_hour) : "",
            m ? String(m.errors_hour) : "",
            m ? String(m.tokens_hour) : "",
            m ? bytes(m.bytes_hour) : "",
          ]),
        )}
      />
    <//>
    <${Engines} engines=${s.engines} onError=${setError} />
    <${Section} title="Running requests">
      <${Table}
        head=${["model", "member", "endpoint", "engine", "elapsed", "sent", "tokens", "progress"]}
        empty="Nothing running."
        rows=${s.jobs.map((j) => [
          j.model,
          j.member ?? "you (owner)",
          j.endpoint,
          j.service,
          duration(s.now - j.started),
          bytes(j.bytes),
          j.tokens === null ? "" : String(j.tokens),
          html`<${Progress} value=${j.progress} label=${j.detail ?? "running"} />`,
        ])}
      />
    <//>
    <${Section} title="Last errors">
      <${Table}
        head=${["time", "kind", "message"]}
        empty="No errors."
        rows=${s.errors.map((e) => [e.time, e.kind, e.count > 1 ? `${e.message} (×${e.count})` : e.message])}
      />
    <//>
    <${Section} title="Log">
      <pre class="log" tabindex="0" aria-label="the daemon's last log lines">
${s.log
          .map((l) => `${new Date(l.time).toLocaleTimeString()} ${l.level.padEnd(5)} ${l.msg}`)
          .join("\n")}</pre>
    <//>`;
}

const data = document.getElementById("snapshot")?.textContent;
const root = document.getElementById("app");
if (data && root) {
  root.textContent = "";
  render(html`<${App} initial=${JSON.parse(data) as RigSnapshot} />`, root);
}
