/**
 * The club's page: a member signs in with their key (kept in this tab's session storage and
 * sent as `Authorization`, never put in a URL or a cookie), then sees the models they can
 * reach, their rigs, workflow runs (gates with Approve and Reject), jobs, batches, their media
 * library and the public gallery; an operator's key also sees the admin view. The lists are
 * read again when the relay's live stream (`/ui/api/events`, read with `fetch()` so the key
 * goes as a header) says something changed; without the stream, every few seconds.
 */
import { render, type VNode } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { Section, Table, bytes, errorMessage, html, when } from "./common.ts";

const KEY = "club-key";
/** How often the lists are read while the live stream is down. */
const REFRESH_MS = 2500;
/** How often they are read anyway while it is up (figures it does not tell, such as in flight). */
const SLOW_REFRESH_MS = 30_000;
/** The wait before the stream is opened again after it failed or ended. */
const RETRY_MS = 5000;
/** Most bytes of one event held while it arrives. */
const MAX_EVENT = 64 * 1024;

/** A GET or POST on the club's API with the signed-in key. */
async function call(key: string, path: string, method = "GET", body?: unknown): Promise<Response> {
  return fetch(path, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function list<T>(key: string, path: string): Promise<T[]> {
  const res = await call(key, path);
  if (!res.ok) throw new Error(await errorMessage(res));
  return ((await res.json()) as { data?: T[] }).data ?? [];
}

/**
 * Reads the relay's live stream with the key, calling `onChange` on every `change` event and
 * once on each (re)connection; `onLive` says whether it is up. Resolves when it ends.
 */
async function stream(
  key: string,
  signal: AbortSignal,
  onLive: (live: boolean) => void,
  onChange: () => void,
): Promise<void> {
  const res = await fetch("/ui/api/events", {
    headers: { authorization: `Bearer ${key}` },
    signal,
  });
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    return;
  }
  onLive(true);
  onChange();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      if (/^event: change$/m.test(buffer.slice(0, end))) onChange();
      buffer = buffer.slice(end + 2);
    }
    if (buffer.length > MAX_EVENT) buffer = "";
  }
}

interface Me {
  member: string;
  admin: boolean;
  async: boolean;
}
interface Model {
  id: string;
  owned_by: string;
  service_type?: string;
  context_length?: number | null;
  input_modalities?: string[];
  output_modalities?: string[];
}
interface Rig {
  name: string;
  paused: string | null;
  in_flight: number;
  models: { id: string }[];
}
interface Step {
  step_id: string;
  kind: string;
  title: string | null;
  status: string;
  output: unknown;
}
interface Run {
  id: string;
  status: string;
  template: string | null;
  created: number;
  steps: Step[];
  error: { message?: string } | null;
}
interface Job {
  id: string;
  status: string;
  model?: string;
  endpoint?: string;
  created?: number;
}
interface Batch {
  id: string;
  status: string;
  created_at?: number;
  request_counts?: { total?: number; completed?: number; failed?: number };
}
interface MediaFile {
  id: string;
  kind?: string;
  model?: string;
  content_type: string;
  url: string;
  created: number;
  size?: number;
  visibility?: string;
}
interface Admin {
  providers: {
    name: string;
    member: string;
    version: string;
    connected_at: number;
    paused: string | null;
    in_flight: number;
    models: string[];
    instance: string;
  }[];
  usage_days: number;
  usage: {
    member: string;
    requests: number;
    errors: number;
    prompt_tokens: number;
    completion_tokens: number;
    bytes_out: number;
  }[];
  instances: { id: string; providers: number }[];
}

/** An image that needs the key: fetched with it, shown from a blob URL. */
function KeyedImage(props: { k: string; url: string; alt: string }): VNode {
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    // Shared with the cleanup: a picture that arrives after it is let go at once.
    const state: { live: boolean; made: string | null } = { live: true, made: null };
    const letGo = (): void => {
      if (state.made?.startsWith("blob:")) URL.revokeObjectURL(state.made);
    };
    void (async () => {
      const res = await call(props.k, props.url).catch(() => null);
      if (!res?.ok) return;
      const type = res.headers.get("content-type") ?? "";
      if (type.startsWith("image/")) state.made = URL.createObjectURL(await res.blob());
      else if (type.startsWith("application/json")) {
        // An image job's result: {"data": [{"b64_json": …}]}.
        const body = (await res.json()) as { data?: { b64_json?: string }[] };
        const first = body.data?.[0];
        if (first?.b64_json) state.made = `data:image/png;base64,${first.b64_json}`;
      }
      if (state.live) setSrc(state.made);
      else letGo();
    })();
    return () => {
      state.live = false;
      letGo();
    };
  }, [props.url]);
  return src
    ? html`<img src=${src} alt=${props.alt} />`
    : html`<span class="empty">${props.alt}</span>`;
}

/** A step's output: text as text, results that are pictures as pictures. */
function Output(props: { k: string; value: unknown; label: string }): VNode {
  const v = props.value;
  if (v === null || v === undefined) return html`<span class="empty">no output</span>`;
  if (typeof v === "string") return html`<p>${v}</p>`;
  if (Array.isArray(v))
    return html`<ol>
      ${v.slice(0, 50).map(
        (item, i) =>
          html`<li>
            <${Output} k=${props.k} value=${item} label=${`${props.label} ${i + 1}`} />
          </li>`,
      )}
    </ol>`;
  if (typeof v === "object") {
    const o = v as { result_url?: unknown; content_type?: unknown };
    if (typeof o.result_url === "string") {
      const type = typeof o.content_type === "string" ? o.content_type : "";
      if (type.startsWith("image/") || type.startsWith("application/json"))
        return html`<${KeyedImage} k=${props.k} url=${o.result_url} alt=${props.label} />`;
      return html`<span>${type || "a result"} (${o.result_url})</span>`;
    }
  }
  return html`<pre>${JSON.stringify(v, null, 2).slice(0, 4000)}</pre>`;
}

function Gate(props: { k: string; run: Run; step: Step; onDone: () => void }): VNode {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const decide = async (decision: "approve" | "reject"): Promise<void> => {
    setBusy(true);
    const res = await call(
      props.k,
      `/v1/workflows/runs/${encodeURIComponent(props.run.id)}/steps/${encodeURIComponent(props.step.step_id)}/${decision}`,
      "POST",
      {},
    );
    setError(res.ok ? null : await errorMessage(res));
    setBusy(false);
    props.onDone();
  };
  const before = props.run.steps.filter((s) => s.status === "DONE");
  const what = props.step.title ?? props.step.step_id;
  return html`<article class="gate" aria-label=${`gate ${what} of run ${props.run.id}`}>
    <h3>${what} <small>(${props.run.template ?? "workflow"} ${props.run.id})</small></h3>
    ${before.map(
      (s) =>
        html`<div>
          <h4>${s.title ?? s.step_id}</h4>
          <${Output} k=${props.k} value=${s.output} label=${`${s.step_id} output`} />
        </div>`,
    )}
    <p>
      <button
        type="button"
        class="primary"
        disabled=${busy}
        onClick=${() => void decide("approve")}
      >
        Approve
      </button>
      <button type="button" class="danger" disabled=${busy} onClick=${() => void decide("reject")}>
        Reject
      </button>
    </p>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
  </article>`;
}

function Media(props: { k: string; files: MediaFile[]; empty: string }): VNode {
  if (props.files.length === 0) return html`<p class="empty">${props.empty}</p>`;
  return html`<div class="cards">
    ${props.files.map(
      (f) =>
        html`<figure data-file=${f.id}>
          ${
            f.content_type.startsWith("image/")
              ? html`<${KeyedImage}
                  k=${props.k}
                  url=${f.url}
                  alt=${`${f.kind ?? "file"} from ${f.model ?? "?"}`}
                />`
              : html`<span>${f.content_type}</span>`
          }
          <figcaption>
            ${f.model ?? ""} · ${bytes(f.size)} ·
            ${when(f.created)}${f.visibility ? ` · ${f.visibility}` : ""}
          </figcaption>
        </figure>`,
    )}
  </div>`;
}

interface Data {
  models: Model[];
  rigs: Rig[];
  runs: Run[];
  jobs: Job[];
  batches: Batch[];
  files: MediaFile[];
  gallery: MediaFile[];
  admin: Admin | null;
}

function Dashboard(props: { k: string; me: Me; signOut: () => void }): VNode {
  const [data, setData] = useState<Data | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState(false);
  const k = props.k;
  /** Reads the lists again: at most one read at a time, and one more after it if asked. */
  const refresh = useRef<() => void>(() => undefined);
  useEffect(() => {
    let mounted = true;
    let reading = false;
    let again = false;
    let lastRead = 0;
    let streaming = false;
    const load = async (): Promise<void> => {
      try {
        const a = props.me.async;
        const [models, rigs, runs, jobs, batches, files, gallery, admin] = await Promise.all([
          list<Model>(k, "/v1/models"),
          list<Rig>(k, "/v1/providers"),
          a ? list<Run>(k, "/v1/workflows/runs?limit=20") : [],
          a ? list<Job>(k, "/v1/jobs?limit=20") : [],
          a ? list<Batch>(k, "/v1/batches?limit=20") : [],
          list<MediaFile>(k, "/v1/files?limit=24"),
          list<MediaFile>(k, "/v1/gallery?limit=24"),
          props.me.admin ? call(k, "/ui/api/admin").then((r) => r.json() as Promise<Admin>) : null,
        ]);
        if (mounted) {
          setData({ models, rigs, runs, jobs, batches, files, gallery, admin });
          setError(null);
        }
      } catch (err) {
        if (mounted) setError((err as Error).message);
      }
    };
    const read = (): void => {
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      lastRead = Date.now();
      void load().finally(() => {
        reading = false;
        if (again && mounted) {
          again = false;
          read();
        }
      });
    };
    refresh.current = read;
    read();
    const abort = new AbortController();
    const setStreaming = (up: boolean): void => {
      streaming = up;
      if (mounted) setLive(up);
    };
    void (async () => {
      while (mounted) {
        await stream(k, abort.signal, setStreaming, read).catch(() => undefined);
        setStreaming(false);
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    })();
    const timer = setInterval(() => {
      if (document.visibilityState !== "visible") return;
      if (Date.now() - lastRead >= (streaming ? SLOW_REFRESH_MS : REFRESH_MS)) read();
    }, REFRESH_MS);
    return () => {
      mounted = false;
      abort.abort();
      clearInterval(timer);
    };
  }, [k]);
  const gates = (data?.runs ?? []).flatMap((run) =>
    run.status === "AWAITING"
      ? run.steps
          .filter((s) => s.kind === "gate" && s.status === "AWAITING")
          .map((step) => ({ run, step }))
      : [],
  );
  return html`<header>
      <h1>Club</h1>
      <p>
        ${`Signed in as ${props.me.member}${props.me.admin ? " (operator)" : ""} · `}
        <span class=${live ? "live" : "stale"} role="status" data-testid="live">
          ${live ? "live" : "refreshing every few seconds"}
        </span>
        ${" "}
        <button type="button" onClick=${props.signOut}>Sign out</button>
      </p>
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    </header>
    ${
      data === null
        ? html`<p role="status">Loading…</p>`
        : html`
            <${Section} title="Waiting for you">
              ${
                gates.length === 0
                  ? html`<p class="empty">No workflow waits for an approval.</p>`
                  : gates.map(
                      (g) =>
                        html`<${Gate}
                          k=${k}
                          run=${g.run}
                          step=${g.step}
                          onDone=${() => refresh.current()}
                        />`,
                    )
              }
            <//>
            <${Section} title="Models you can use">
              <${Table}
                head=${["model", "rig", "type", "context", "in → out"]}
                empty="No model is online for you now."
                rows=${data.models.map((m) => [
                  m.id,
                  m.owned_by,
                  m.service_type ?? "",
                  m.context_length ? String(m.context_length) : "",
                  `${(m.input_modalities ?? []).join(", ")} → ${(m.output_modalities ?? []).join(", ")}`,
                ])}
              />
            <//>
            <${Section} title="Your rigs">
              <${Table}
                head=${["rig", "state", "in flight", "models"]}
                empty="None of your rigs is connected."
                rows=${data.rigs.map((r) => [
                  r.name,
                  r.paused ? `paused: ${r.paused}` : "serving",
                  String(r.in_flight),
                  r.models.map((m) => m.id).join(", "),
                ])}
              />
            <//>
            <${Section} title="Workflow runs">
              <${Table}
                head=${["run", "template", "status", "steps", "started"]}
                empty="No workflow runs."
                rows=${data.runs.map((r) => [
                  r.id,
                  r.template ?? "",
                  r.error?.message ? `${r.status}: ${r.error.message}` : r.status,
                  r.steps.map((s) => `${s.step_id} ${s.status.toLowerCase()}`).join(", "),
                  when(r.created),
                ])}
              />
            <//>
            <${Section} title="Jobs">
              <${Table}
                head=${["job", "model", "endpoint", "status", "created"]}
                empty="No jobs."
                rows=${data.jobs.map((j) => [j.id, j.model ?? "", j.endpoint ?? "", j.status, when(j.created)])}
              />
            <//>
            <${Section} title="Batches">
              <${Table}
                head=${["batch", "status", "done / total", "created"]}
                empty="No batches."
                rows=${data.batches.map((b) => [
                  b.id,
                  b.status,
                  `${b.request_counts?.completed ?? 0} / ${b.request_counts?.total ?? 0}`,
                  when(b.created_at),
                ])}
              />
            <//>
            <${Section} title="Your media library">
              <${Media} k=${k} files=${data.files} empty="Nothing in your library yet." />
            <//>
            <${Section} title="Public gallery">
              <${Media} k=${k} files=${data.gallery} empty="The gallery is empty." />
            <//>
            ${data.admin ? html`<${AdminView} admin=${data.admin} />` : null}
          `
    }`;
}

function AdminView(props: { admin: Admin }): VNode {
  const a = props.admin;
  return html`<${Section} title="Providers online">
      <${Table}
        head=${["rig", "member", "version", "since", "state", "in flight", "models", ...(a.instances.length > 1 ? ["instance"] : [])]}
        empty="No provider is connected."
        rows=${a.providers.map((p) => [
          p.name,
          p.member,
          p.version,
          when(p.connected_at),
          p.paused ? `paused: ${p.paused}` : "serving",
          String(p.in_flight),
          p.models.join(", "),
          ...(a.instances.length > 1 ? [p.instance] : []),
        ])}
      />
    <//>
    <${Section} title=${`Usage per member (last ${a.usage_days} days)`}>
      <${Table}
        head=${["member", "requests", "errors", "prompt tokens", "completion tokens", "sent"]}
        empty="No usage recorded."
        rows=${a.usage.map((u) => [
          u.member,
          String(u.requests),
          String(u.errors),
          String(u.prompt_tokens),
          String(u.completion_tokens),
          bytes(u.bytes_out),
        ])}
      />
    <//>
    ${
      a.instances.length > 1
        ? html`<${Section} title="Instances">
            <${Table}
              head=${["instance", "providers"]}
              empty=""
              rows=${a.instances.map((i) => [i.id, String(i.providers)])}
            />
          <//>`
        : null
    }`;
}

function SignIn(props: { error: string | null; onKey: (key: string) => void }): VNode {
  const [value, setValue] = useState("");
  return html`<header><h1>Club</h1></header>
    <${Section} title="Sign in">
      <form
        class="inline"
        onSubmit=${(e: Event) => {
          e.preventDefault();
          if (value.trim()) props.onKey(value.trim());
        }}
      >
        <label>
          API key
          <input
            type="password"
            autocomplete="off"
            value=${value}
            onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit" class="primary">Sign in</button>
      </form>
      <p class="note">The key stays in this tab (session storage) and is sent only to this club.</p>
      ${props.error ? html`<p class="error" role="alert">${props.error}</p>` : null}
    <//>`;
}

function App(): VNode {
  const [key, setKey] = useState(() => sessionStorage.getItem(KEY));
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!key) return;
    void (async () => {
      const res = await call(key, "/ui/api/me");
      if (res.ok) {
        setMe((await res.json()) as Me);
        sessionStorage.setItem(KEY, key);
        setError(null);
      } else {
        setError(await errorMessage(res));
        sessionStorage.removeItem(KEY);
        setKey(null);
      }
    })();
  }, [key]);
  const signOut = (): void => {
    sessionStorage.removeItem(KEY);
    setKey(null);
    setMe(null);
  };
  if (!key) return html`<${SignIn} error=${error} onKey=${setKey} />`;
  if (!me) return html`<p role="status">Signing in…</p>`;
  return html`<${Dashboard} k=${key} me=${me} signOut=${signOut} />`;
}

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(html`<${App} />`, root);
}
