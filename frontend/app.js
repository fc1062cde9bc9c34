// ib web UI: browse backups by tag set, look inside one folder at a time,
// download files, whole backups (tar) and the ib CLI, search file names.
import { html, render, useState, useEffect } from "/vendor/htm-preact-3.1.1.mjs";

// A private server (serve --private) wants a token for reads: it is asked
// for once and kept in this tab's session storage, never in a URL.
const token = () => sessionStorage.getItem("ib.token") || "";
const authHeaders = () => (token() ? { Authorization: `Bearer ${token()}` } : {});

const api = async (path) => {
  const r = await fetch("/api/v1" + path, { headers: authHeaders() });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw Object.assign(new Error(body.error || `${r.status} ${r.statusText}`), { status: r.status });
  return body;
};

// With a token, a download link fetches with it and saves what came.
const download = (e) => {
  if (!token()) return;
  e.preventDefault();
  const href = e.currentTarget.getAttribute("href");
  fetch(href, { headers: authHeaders() }).then((r) => {
    if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
    const name = decodeURIComponent((r.headers.get("Content-Disposition") || "").split("''")[1] || "download");
    return r.blob().then((b) => {
      const a = Object.assign(document.createElement("a"), { href: URL.createObjectURL(b), download: name });
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    });
  }).catch((err) => alert(String(err.message || err)));
};
const DL = ({ href, children, ...rest }) => html`<a href=${href} onClick=${download} ...${rest}>${children}</a>`;

// shq quotes one argument for a POSIX shell: a copied command runs only
// what it shows, whatever a file name or a link's ?path= holds.
const shq = (s) => "'" + String(s).replaceAll("'", "'\\''") + "'";
// vis shows control and bidirectional-override characters as escapes, so a
// name cannot hide a line break or reorder what is shown.
const vis = (s) => String(s ?? "").replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
  (c) => "\\u{" + c.codePointAt(0).toString(16).padStart(4, "0") + "}");

const size = (n) => {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(1)} ${units[i]}`;
};
const when = (t) => new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
const mode = (m) => "0" + m.toString(8).padStart(3, "0");
// A value with spaces or quotes is shown quoted, as the CLI shows it.
const tagValue = (v) => (/[\s"\\]/.test(v) ? JSON.stringify(v) : v);
const tagText = (tags) => Object.keys(tags || {}).sort().map((k) => `${k}=${tagValue(tags[k])}`).join(" ");
// filterTerms reads a filter: key=value (value may be "quoted") or text.
const filterTerms = (s) => (s.match(/[^\s"=]+="[^"]*"?|\S+/g) || []).map((w) => {
  const m = w.match(/^([^=]+)=(.*)$/);
  if (!m) return { text: w };
  let v = m[2];
  if (v.startsWith('"')) v = v.replace(/^"|"$/g, "");
  return { key: m[1], value: v };
});
const Labels = ({ labels }) => Object.keys(labels || {}).sort().map((k) => html`<span class="label">${vis(k)}=${vis(labels[k])}</span>`);
const hasContent = (e) => e.type === "file" || e.type === "hardlink";
const Tags = ({ tags }) => Object.keys(tags || {}).sort().map((k) => html`<span class="tag">${vis(k)}=${vis(tagValue(tags[k]))}</span>`);
const encPath = (p) => p.split("/").map(encodeURIComponent).join("/");
const origin = location.origin;

// Client-side navigation: links with data-nav push a new URL.
const go = (url) => { history.pushState(null, "", url); window.dispatchEvent(new Event("ib:nav")); };
const Link = ({ href, children, ...rest }) =>
  html`<a href=${href} onClick=${(e) => { if (e.ctrlKey || e.metaKey || e.button) return; e.preventDefault(); go(href); }} ...${rest}>${children}</a>`;

function useLoad(fn, deps) {
  const [state, set] = useState({ loading: true });
  useEffect(() => {
    let live = true;
    set({ loading: true });
    fn().then((data) => live && set({ data }), (error) => live && set({ error }));
    return () => { live = false; };
  }, deps);
  return state;
}

function Err({ error }) {
  if (error.status === 404 || (typeof error === "string" && error.startsWith("No such page")))
    return html`<div class="error not-found">${vis(error.message || error)}
      <p><${Link} href="/">Back to all backups</${Link}></p></div>`;
  if (error.status !== 401) return html`<div class="error">${vis(error.message || error)}</div>`;
  const save = (e) => { e.preventDefault(); sessionStorage.setItem("ib.token", e.target.token.value.trim()); location.reload(); };
  return html`<form class="card token-form" onSubmit=${save}>
    <p>${token() ? "The server refused this token." : "This server is private: reads need a token."}
      The token is kept in this browser tab only.</p>
    <input name="token" type="password" placeholder="token" aria-label="token" autocomplete="off" />
    <button class="button primary">Use token</button>
  </form>`;
}

function Copy({ text }) {
  const [done, setDone] = useState(false);
  const copy = () => navigator.clipboard?.writeText(text).then(() => { setDone(true); setTimeout(() => setDone(false), 1500); });
  return html`<div class="copy"><pre class="cmd">${vis(text)}</pre><button class="button" onClick=${copy}>${done ? "Copied" : "Copy"}</button></div>`;
}

// "/" : backups grouped by tag set, newest first, filtered by tags.
function Backups() {
  const params = new URLSearchParams(location.search);
  const [filter, setFilterState] = useState(params.get("tags") || "");
  // the filter lives in the URL too, so a filtered view can be shared
  const setFilter = (v) => {
    setFilterState(v);
    const u = new URL(location.href);
    if (v.trim()) u.searchParams.set("tags", v); else u.searchParams.delete("tags");
    history.replaceState(null, "", u.pathname + u.search);
  };
  const st = useLoad(() => api("/backups"), []);
  if (st.error) return html`<${Err} error=${st.error} />`;
  if (st.loading) return html`<p class="muted">Loading…</p>`;
  const want = filterTerms(filter.trim());
  const groups = new Map();
  for (const b of st.data) {
    const t = tagText(b.tags);
    if (want.some((w) => !(w.key !== undefined ? (b.tags || {})[w.key] === w.value : t.includes(w.text)))) continue;
    if (!groups.has(t)) groups.set(t, []);
    groups.get(t).push(b);
  }
  return html`
    <h1>Backups</h1>
    <div class="bar">
      <input placeholder="Filter by tags, e.g. node=tezos network=mainnet" value=${filter}
        onInput=${(e) => setFilter(e.target.value)} aria-label="filter" />
      <span class="muted">${st.data.length} backups in all</span>
    </div>
    ${groups.size === 0 && html`<p class="muted">No backups${want.length ? " match" : " yet"}.</p>`}
    ${[...groups.entries()].map(([t, list]) => html`
      <section class="card tagset">
        <div class="head"><${Tags} tags=${list[0].tags} />${t === "" && html`<span class="muted">(no tags)</span>`}
          <span class="muted">${list.length} backup${list.length > 1 ? "s" : ""}</span>
          ${(() => { const f = freshness(list); return html`<span class=${"fresh " + f.level} title=${`expected every ${ago(f.expected)}`}>newest ${ago(f.age)} ago</span>`; })()}
          <${SizeChart} list=${list} /></div>
        <table>
          <thead><tr><th>ID</th><th>Created</th><th class="num">Files</th><th class="num">Size</th><th class="num" title="bytes of blocks the server did not have before this backup">Added</th><th></th></tr></thead>
          <tbody>${list.map((b, i) => html`
            <tr>
              <td><${Link} href=${`/backups/${b.id}`}>#${b.id}</${Link}></td>
              <td>${when(b.created_at)}${b.labels && html` <${Labels} labels=${b.labels} />`}</td>
              <td class="num">${b.files.toLocaleString()}</td>
              <td class="num">${size(b.bytes)}</td>
              <td class="num added">${b.added_bytes == null ? "—" : size(b.added_bytes)}</td>
              <td><${DL} href=${`/api/v1/backups/${b.id}/archive.tar`}>tar</${DL}>
                ${i + 1 < list.length && html` · <${Link} class="compare" href=${`/compare?a=${list[i + 1].id}&b=${b.id}`}>changes</${Link}>`}</td>
            </tr>`)}</tbody>
        </table>
      </section>`)}`;
}

// "/backups/{id}?path=DIR": one folder at a time, with details and downloads.
function Backup({ id }) {
  const params = new URLSearchParams(location.search);
  const path = params.get("path") || ".";
  const backup = useLoad(() => api(`/backups/${id}`), [id]);
  const [pages, setPages] = useState({ key: "", entries: [], next: null, entry: null, error: null });
  const [selected, setSelected] = useState(null);
  const [cart, setCart] = useCart(id);
  const key = `${id}:${path}`;
  const load = (after) =>
    api(`/backups/${id}/tree?path=${encodeURIComponent(path)}${after != null ? `&after=${after}` : ""}`).then(
      (t) => setPages((p) => ({ key, entry: t.entry, entries: after != null ? [...p.entries, ...t.entries] : t.entries, next: t.next, error: null })),
      (error) => setPages({ key, entries: [], next: null, entry: null, error }));
  useEffect(() => { setSelected(null); load(null); }, [key]);
  if (backup.error) return html`<${Err} error=${backup.error} />`;
  if (!backup.data) return html`<p class="muted">Loading…</p>`;
  const b = backup.data;
  const parts = path === "." ? [] : path.split("/");
  const tarURL = `/api/v1/backups/${id}/archive.tar${path === "." ? "" : `?path=${encodeURIComponent(path)}`}`;
  // The command is shown only for a folder the backup has (its listing
  // came back), every argument quoted.
  const known = pages.key === key && pages.entry && !pages.error;
  const restore = `ib backup restore ${id} ./restored --server ${shq(origin)}${path === "." ? "" : ` --path ${shq(path)}`}`;
  return html`
    <h1>Backup #${b.id} <${Tags} tags=${b.tags} /></h1>
    <p class="muted">${when(b.created_at)} · ${b.files.toLocaleString()} files · ${b.dirs.toLocaleString()} folders · ${size(b.bytes)}</p>
    ${b.labels && html`<p class="labels">Labels: <${Labels} labels=${b.labels} /></p>`}
    <div class="bar">
      <${DL} class="button primary" href=${tarURL}>Download ${path === "." ? "backup" : "folder"} as tar</${DL}>
      <${DL} class="button" href=${tarURL.replace("archive.tar", "archive.tar.lz4")}>tar.lz4</${DL}>
    </div>
    ${known && cart.length === 0 && html`<${Copy} text=${restore} />`}
    ${cart.length > 0 && html`<${Cart} id=${id} cart=${cart} clear=${() => setCart([])} />`}
    <div class="crumbs bar">
      <${Link} href=${`/backups/${id}`}>/</${Link}>
      ${parts.map((p, i) => html`<span class="muted">›</span><${Link} href=${`/backups/${id}?path=${encodeURIComponent(parts.slice(0, i + 1).join("/"))}`}>${vis(p)}</${Link}>`)}
    </div>
    ${pages.error && html`<${Err} error=${pages.error} />`}
    ${selected && html`<${Details} id=${id} e=${selected} close=${() => setSelected(null)} />`}
    <section class="card">
      <table class="tree">
        <thead><tr><th class="pick"></th><th>Name</th><th>Mode</th><th>Modified</th><th class="num">Size</th><th></th></tr></thead>
        <tbody>${pages.key === key && pages.entries.map((e) => html`
          <tr>
            <td class="pick"><input type="checkbox" aria-label=${"select " + e.name} checked=${cart.includes(e.path)}
              onChange=${(ev) => setCart(ev.target.checked ? [...cart, e.path] : cart.filter((p) => p !== e.path))} /></td>
            <td class="name">${e.type === "dir"
              ? html`<span class="ico dir"></span><${Link} href=${`/backups/${id}?path=${encodeURIComponent(e.path)}`}>${vis(e.name)}/</${Link}>`
              : html`<span class=${"ico " + e.type}></span><a href="#" onClick=${(ev) => { ev.preventDefault(); setSelected(e); }}>${vis(e.name)}</a>${e.type === "symlink" && html` <span class="muted">→ ${vis(e.target)}</span>`}${e.type === "hardlink" && html` <span class="muted">⇔ ${vis(e.target)}</span>`}${e.changed_during_read && html` <span class="warn" title="This file kept changing while it was backed up: it may be inconsistent">changed while read</span>`}${e.encryption && html` <span class="lock" title=${`Encrypted on the client with age: the download is ${e.name}.age; decrypt it with age -d -i key.txt`}><${Lock} /> encrypted</span>`}`}</td>
            <td>${mode(e.mode)}</td>
            <td>${when(e.mtime)}</td>
            <td class="num">${hasContent(e) ? size(e.encryption ? e.plain_size : e.size) : ""}</td>
            <td>${hasContent(e) && html`<${DL} href=${`/api/v1/backups/${id}/files/${encPath(e.path)}`}>download</${DL}>`}</td>
          </tr>`)}</tbody>
      </table>
      ${pages.key === key && pages.entries.length === 0 && !pages.error && html`<p class="muted pad">Empty folder.</p>`}
    </section>
    ${pages.next != null && html`<button class="button" onClick=${() => load(pages.next)}>Load more</button>`}`;
}

// Lock: a padlock drawn inline (no icon font needed), marking an encrypted file.
const Lock = () => html`<svg class="lock-icon" viewBox="0 0 16 16" width="12" height="12" aria-hidden="true"><rect x="3" y="7" width="10" height="8" rx="1.5" fill="currentColor" /><path d="M5 7V5a3 3 0 0 1 6 0v2" fill="none" stroke="currentColor" stroke-width="1.6" /></svg>`;

function Details({ id, e, close }) {
  const url = `/api/v1/backups/${id}/files/${encPath(e.path)}`;
  const base = e.path.split("/").pop();
  const file = e.encryption ? base + ".age" : base; // what the download is called
  return html`
    <section class="card details-card">
      <div class="head"><h2>${vis(e.path)}</h2><button class="button push" onClick=${close}>Close</button></div>
      <div class="details">
        <span class="muted">Type</span><span>${e.type}</span>
        <span class="muted">Size</span><span>${size(e.encryption ? e.plain_size : e.size)} (${(e.encryption ? e.plain_size : e.size).toLocaleString()} bytes)</span>
        ${e.encryption && html`<span class="muted">Encryption</span><span class="lock"><${Lock} /> ${e.encryption}: stored as an age file of ${e.size.toLocaleString()} bytes, encrypted on the client; the server holds no key</span>`}
        <span class="muted">Mode</span><span>${mode(e.mode)}</span>
        <span class="muted">Modified</span><span>${e.mtime}</span>
        <span class="muted">Owner</span><span>${e.uid}:${e.gid}</span>
        ${e.type === "symlink" && html`<span class="muted">Target</span><span>${vis(e.target)}</span>`}
        ${e.type === "hardlink" && html`<span class="muted">Hard link to</span><span>${vis(e.target)} (stored once)</span>`}
        ${e.changed_during_read && html`<span class="muted">Consistency</span><span class="warn">kept changing while read: stored as last read, may be inconsistent</span>`}
        ${hasContent(e) && html`<span class="muted">Blocks</span><span>${e.blocks}</span>
        <span class="muted">Download</span><span><${DL} href=${url}>${vis(file)}</${DL}></span>`}
      </div>
      ${hasContent(e) && html`<div class="pad"><${Copy} text=${`curl -fLo ${shq(file)} ${shq(origin + url)}`} /></div>`}
      ${e.encryption && html`<p class="pad decrypt-hint">Decrypt it with the identity it was encrypted to (<code>ib key generate</code> wrote it) and the age command line: <code>age -d -i key.txt ${shq(file)} > ${shq(base)}</code>, or restore with <code>ib backup restore … --identity key.txt</code>.</p>`}
      <${History} id=${id} path=${e.path} />
    </section>`;
}

// useCart keeps the files and folders picked in a backup's tree, across
// its folders, for this browser tab.
function useCart(id) {
  const k = `ib.cart.${id}`;
  const [cart, set] = useState(() => { try { return JSON.parse(sessionStorage.getItem(k)) || []; } catch { return []; } });
  const setCart = (c) => { set(c); sessionStorage.setItem(k, JSON.stringify(c)); };
  return [cart, setCart];
}

// Cart: the picked paths as one tar, or the restore command for them.
function Cart({ id, cart, clear }) {
  const sorted = [...cart].sort();
  const q = new URLSearchParams(sorted.map((p) => ["path", p]));
  const tarURL = `/api/v1/backups/${id}/archive.tar?${q}`;
  const cmd = `ib backup restore ${id} ./restored --server ${shq(origin)}` + sorted.map((p) => ` --path ${shq(p)}`).join("");
  return html`
    <section class="card cart">
      <div class="head"><strong>${cart.length} selected</strong>
        <${DL} class="button primary" href=${tarURL}>Download selection as tar</${DL}>
        <button class="button push" onClick=${clear}>Clear</button></div>
      <ul class="picked">${sorted.map((p) => html`<li>${vis(p)}</li>`)}</ul>
      <div class="pad"><${Copy} text=${cmd} /></div>
    </section>`;
}

// diffManifests compares two manifests' entries as `ib backup diff ID1 ID2`
// does: + added, - removed, M content, m mode/mtime/owner (not a folder's
// mtime), T type, R the same blocks at another path.
function diffManifests(old, cur) {
  const kind = (t) => (t === "hardlink" ? "file" : t);
  const blocks = (e) => (e.blocks || []).map((b) => b.cid).join(",");
  const byPath = new Map(old.map((e) => [e.path, e]));
  const out = [], added = [];
  for (const e of cur) {
    const o = byPath.get(e.path);
    if (!o) { added.push(e); continue; }
    byPath.delete(e.path);
    const line = { path: e.path, type: e.type };
    if (kind(o.type) !== kind(e.type)) out.push({ ...line, op: "T" });
    else if (e.type === "symlink" && o.target !== e.target) out.push({ ...line, op: "M" });
    else if (kind(e.type) === "file" && (o.size !== e.size || (e.size > 0 && blocks(o) !== blocks(e)))) out.push({ ...line, op: "M" });
    else if (o.mode !== e.mode || o.uid !== e.uid || o.gid !== e.gid || (e.type !== "dir" && o.mtime !== e.mtime)) out.push({ ...line, op: "m" });
  }
  const gone = new Map();
  for (const o of byPath.values()) if (kind(o.type) === "file" && o.size > 0) gone.set(blocks(o), [...(gone.get(blocks(o)) || []), o]);
  const renamed = new Set();
  for (const e of added) {
    const olds = kind(e.type) === "file" && e.size > 0 ? gone.get(blocks(e)) : null;
    if (olds && olds.length) { const o = olds.shift(); renamed.add(o); out.push({ op: "R", path: e.path, from: o.path, type: e.type }); }
    else out.push({ op: "+", path: e.path, type: e.type });
  }
  for (const o of byPath.values()) if (!renamed.has(o)) out.push({ op: "-", path: o.path, type: o.type });
  return out;
}

// "/compare?a=ID1&b=ID2": what changed from backup a to backup b. The
// manifests are compared here, in the browser: the server only sends them.
function Compare() {
  const params = new URLSearchParams(location.search);
  const a = params.get("a"), b = params.get("b");
  const [shown, setShown] = useState(500);
  const st = useLoad(() => Promise.all([api(`/backups/${a}/manifest`), api(`/backups/${b}/manifest`)])
    .then(([x, y]) => diffManifests(x.entries, y.entries)), [a, b]);
  if (!/^\d+$/.test(a || "") || !/^\d+$/.test(b || "")) return html`<${Err} error="compare needs ?a=ID&b=ID" />`;
  if (st.error) return html`<${Err} error=${st.error} />`;
  if (!st.data) return html`<p class="muted">Comparing the manifests of #${a} and #${b}…</p>`;
  const counts = {};
  for (const c of st.data) counts[c.op] = (counts[c.op] || 0) + 1;
  const names = { "+": "added", "-": "removed", M: "changed", m: "metadata", T: "type", R: "renamed" };
  const dir = (p) => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : ".");
  return html`
    <h1>Changes from <${Link} href=${`/backups/${a}`}>#${a}</${Link}> to <${Link} href=${`/backups/${b}`}>#${b}</${Link}></h1>
    <p class="muted summary">${st.data.length === 0 ? "No differences." :
      Object.keys(names).filter((k) => counts[k]).map((k) => `${counts[k].toLocaleString()} ${names[k]}`).join(" · ")}</p>
    ${st.data.length > 0 && html`<section class="card">
      <table class="changes">
        <tbody>${st.data.slice(0, shown).map((c) => html`
          <tr><td class=${"op op-" + (names[c.op] || "")}>${c.op}</td>
            <td><${Link} href=${`/backups/${c.op === "-" ? a : b}?path=${encodeURIComponent(dir(c.path))}`}>${c.op === "R" ? `${vis(c.from)} → ` : ""}${vis(c.path)}${c.type === "dir" ? "/" : ""}</${Link}></td></tr>`)}</tbody>
      </table>
    </section>`}
    ${st.data.length > shown && html`<button class="button" onClick=${() => setShown(shown + 500)}>Show more</button>`}`;
}

// A path's versions across the backups of this tag set, oldest first.
function History({ id, path }) {
  const h = useLoad(() => api(`/backups/${id}/history?path=${encodeURIComponent(path)}`), [id, path]);
  if (h.error) return html`<${Err} error=${h.error} />`;
  if (!h.data) return html`<p class="muted pad">Loading history…</p>`;
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  return html`
    <div class="history pad">
      <h3>History in this tag set</h3>
      <table>
        <thead><tr><th>Backup</th><th>Created</th><th class="num">Size</th><th>Content</th><th></th></tr></thead>
        <tbody>${h.data.versions.slice().reverse().map((v, i, all) => html`
          <tr class=${v.backup.id === Number(id) ? "current" : ""}>
            <td><${Link} href=${`/backups/${v.backup.id}?path=${encodeURIComponent(dir)}`}>#${v.backup.id}</${Link}></td>
            <td>${when(v.backup.created_at)}</td>
            <td class="num">${hasContent(v.entry) ? size(v.entry.size) : v.entry.type}</td>
            <td>${v.content_changed ? html`<span class="warn">changed</span>` : html`<span class="muted">${i === all.length - 1 ? "first" : "same"}</span>`}</td>
            <td>${hasContent(v.entry) && html`<${DL} href=${`/api/v1/backups/${v.backup.id}/files/${encPath(v.entry.path)}`}>download</${DL}>`}</td>
          </tr>`)}</tbody>
      </table>
    </div>`;
}

// "/search?q=TEXT[&tags=FILTER]": file names across every backup (or the
// backups of one tag set), one row per path with the backups that hold it.
function Search() {
  const params = new URLSearchParams(location.search);
  const q = params.get("q") || "";
  const tags = params.get("tags") || "";
  const query = () => {
    const u = new URLSearchParams({ q, limit: "1000" });
    for (const w of filterTerms(tags)) if (w.key !== undefined) u.append(w.key, w.value);
    return api(`/search?${u}`);
  };
  const st = useLoad(() => (q ? query() : Promise.resolve({ hits: [] })), [q, tags]);
  const setTags = (e) => {
    e.preventDefault();
    const u = new URLSearchParams({ q });
    if (e.target.tags.value.trim()) u.set("tags", e.target.tags.value.trim());
    go(`/search?${u}`);
  };
  const rows = new Map(); // path → hits, newest backup first
  for (const h of st.data?.hits || []) {
    if (!rows.has(h.entry.path)) rows.set(h.entry.path, []);
    rows.get(h.entry.path).push(h);
  }
  return html`
    <h1>Search ${q && html`<span class="muted">“${vis(q)}”</span>`}</h1>
    <form class="bar" onSubmit=${setTags}>
      <input name="tags" placeholder="Only backups with these tags, e.g. node=tezos" value=${tags} aria-label="search tags" />
      <button class="button">Filter</button>
    </form>
    ${!q && html`<p class="muted">Type part of a file name in the search box.</p>`}
    ${st.error && html`<${Err} error=${st.error} />`}
    ${st.data && q && html`
      <section class="card">
        <table class="hits">
          <thead><tr><th>Path</th><th class="num">Size</th><th>In backups</th></tr></thead>
          <tbody>${[...rows.entries()].map(([p, hs]) => {
            const h = hs[0];
            const dir = p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : ".";
            return html`<tr>
              <td class="name"><${Link} href=${`/backups/${h.backup.id}?path=${encodeURIComponent(dir)}`}>${vis(p)}</${Link}></td>
              <td class="num">${hasContent(h.entry) ? size(h.entry.size) : h.entry.type}</td>
              <td>${hs.slice(0, 5).map((x) => html`<span class="hit-backup"><${Link} href=${`/backups/${x.backup.id}?path=${encodeURIComponent(dir)}`}>#${x.backup.id}</${Link}>
                <span class="muted">${when(x.backup.created_at)}</span> <${Tags} tags=${x.backup.tags} /></span>`)}
                ${hs.length > 5 && html`<span class="muted">and ${hs.length - 5} more</span>`}</td></tr>`;
          })}</tbody>
        </table>
        ${st.data.hits.length === 0 && html`<p class="muted pad">No file name contains “${vis(q)}”${tags ? " in backups with those tags" : ""}.</p>`}
      </section>`}`;
}

// "/downloads": the ib CLI for every OS and architecture.
function Downloads() {
  const st = useLoad(() => api("/downloads"), []);
  if (st.error) return html`<${Err} error=${st.error} />`;
  if (st.loading) return html`<p class="muted">Loading…</p>`;
  return html`
    <h1>Download the ib CLI</h1>
    <section class="card">
      <table class="downloads">
        <thead><tr><th>OS</th><th>Arch</th><th class="num">Size</th><th>SHA-256</th><th></th></tr></thead>
        <tbody>${st.data.map((b) => html`
          <tr>
            <td>${b.os}</td><td>${b.arch}</td><td class="num">${size(b.size)}</td>
            <td><code class="muted">${b.sha256.slice(0, 16)}…</code></td>
            <td><a href=${b.url} download>${b.name}</a></td>
          </tr>
          <tr><td colspan="5"><${Copy} text=${b.os === "windows"
            ? `curl.exe -fLo ib.exe ${shq(origin + b.url)}`
            : `curl -fLo ib ${shq(origin + b.url)} && chmod +x ib`} /></td></tr>`)}</tbody>
      </table>
    </section>`;
}

// "/stats": what the server holds.
// "/activity": the firing alerts, running jobs with live progress (the
// server's event stream; a private server's are polled, as EventSource
// sends no token), and the history of jobs with filters and each job's log.
const ago = (ms) => {
  const s = Math.max(0, ms / 1000);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
};

// withRate carries a job's rate of bytes from its previous progress.
function withRate(prev, job) {
  const p = job.progress, q = prev?.progress;
  let rate = prev?.rate || 0;
  if (p && q && p.at !== q.at) {
    const dt = (Date.parse(p.at) - Date.parse(q.at)) / 1000;
    const db = (p.bytes + p.bytes_uploaded) - (q.bytes + q.bytes_uploaded);
    if (dt > 0 && db >= 0) rate = rate ? 0.7 * rate + 0.3 * (db / dt) : db / dt;
  }
  return { ...job, rate };
}

function useRunning(onEnd) {
  const [jobs, setJobs] = useState(new Map());
  useEffect(() => {
    let es, timer;
    if (token()) {
      const poll = () => api("/jobs?status=running").then((d) => setJobs((m) => new Map(d.jobs.map((j) => [j.id, withRate(m.get(j.id), j)]))), () => {});
      poll();
      timer = setInterval(() => { poll(); onEnd(); }, 2000);
    } else {
      es = new EventSource("/api/v1/events");
      const apply = (e) => {
        const n = JSON.parse(e.data);
        setJobs((m) => {
          const x = new Map(m);
          if (n.type === "end") x.delete(n.job.id); else x.set(n.job.id, withRate(m.get(n.job.id), n.job));
          return x;
        });
        if (n.type === "end") onEnd();
      };
      for (const t of ["start", "progress", "end"]) es.addEventListener(t, apply);
      es.addEventListener("open", () => setJobs(new Map())); // a reconnect sends the running jobs again
    }
    return () => { es?.close(); clearInterval(timer); };
  }, []);
  return [...jobs.values()].sort((a, b) => a.id - b.id);
}

function Running({ job }) {
  const p = job.progress || {};
  const done = (p.bytes || 0), total = p.total_bytes || 0;
  const eta = total > done && job.rate > 0 ? (total - done) / job.rate : null;
  return html`<div class="card job running" data-job=${job.id}>
    <div class="head"><b>${job.kind}</b> <${Tags} tags=${job.tags} /> <span class="muted">#${job.id} · started ${ago(Date.now() - Date.parse(job.started))} ago</span></div>
    ${total > 0 ? html`<progress value=${done} max=${total}></progress>` : html`<progress></progress>`}
    <div class="muted progress-line">${vis(p.phase || "starting")} · ${(p.files || 0).toLocaleString()} files · ${size(done)}${total ? ` of ${size(total)}` : ""} read · ${size(p.bytes_uploaded || 0)} sent${job.rate ? ` · ${size(job.rate)}/s` : ""}${eta !== null ? ` · ${ago(eta * 1000)} left` : ""}</div>
  </div>`;
}

function JobLog({ id }) {
  const st = useLoad(() => api(`/jobs/${id}`), [id]);
  if (st.error) return html`<${Err} error=${st.error} />`;
  if (st.loading) return html`<p class="muted">Loading…</p>`;
  const j = st.data;
  return html`<div class="joblog">
    ${j.error && html`<p class="error">${vis(j.error)}</p>`}
    ${(j.events || []).length === 0 ? html`<p class="muted">No log lines.</p>` :
      html`<ul>${j.events.map((e) => html`<li><span class="muted">${when(e.at)}</span> ${vis(e.level)}: ${vis(e.message)}</li>`)}</ul>`}
  </div>`;
}

function Activity() {
  const [version, setVersion] = useState(0);
  const running = useRunning(() => setVersion((v) => v + 1));
  const [kind, setKind] = useState(""), [status, setStatus] = useState(""), [tags, setTags] = useState("");
  const [pages, setPages] = useState([]);
  const [open, setOpen] = useState(null);
  const query = (before) => {
    const q = new URLSearchParams();
    if (kind) q.set("kind", kind);
    if (status) q.set("status", status);
    for (const w of filterTerms(tags.trim())) if (w.key !== undefined) q.set(w.key, w.value);
    if (before) q.set("before", before);
    return "/jobs?" + q.toString();
  };
  const first = useLoad(() => api(query()), [kind, status, tags, version]);
  useEffect(() => setPages([]), [kind, status, tags, version]);
  const alerts = useLoad(() => api("/alerts").catch(() => ({ alerts: [] })), [version]);
  const jobs = [...(first.data?.jobs || []), ...pages];
  const older = () => api(query(jobs[jobs.length - 1].id)).then((d) => setPages((p) => [...p, ...d.jobs]));
  const sel = (set, opts) => html`<select onChange=${(e) => set(e.target.value)}>${opts.map((o) => html`<option value=${o}>${o || "all"}</option>`)}</select>`;
  return html`
    <h1>Activity</h1>
    ${(alerts.data?.alerts || []).map((a) => html`<div class="error alert" data-alert=${a.kind}>${vis(a.message)} <span class="muted">since ${when(a.since)}</span></div>`)}
    <h2>Running</h2>
    ${running.length === 0 ? html`<p class="muted running-none">Nothing running.</p>` : running.map((j) => html`<${Running} key=${j.id} job=${j} />`)}
    <h2>History</h2>
    <div class="bar">
      ${sel(setKind, ["", "backup", "restore", "verify", "archive", "delete", "prune", "scrub"])}
      ${sel(setStatus, ["", "ok", "warning", "failed", "lost", "running"])}
      <input placeholder="tags, e.g. node=tezos" value=${tags} onInput=${(e) => setTags(e.target.value)} aria-label="job tags" />
    </div>
    ${first.error ? html`<${Err} error=${first.error} />` : html`
    <table class="jobs">
      <thead><tr><th>ID</th><th>Kind</th><th>Tags</th><th>Started</th><th>Took</th><th>Status</th><th class="num">Bytes</th><th>Backup</th></tr></thead>
      <tbody>${jobs.map((j) => html`
        <tr class=${"status-" + j.status} onClick=${() => setOpen(open === j.id ? null : j.id)}>
          <td>#${j.id}</td><td>${j.kind}</td><td><${Tags} tags=${j.tags} /></td><td>${when(j.started)}</td>
          <td>${j.finished ? ago(Date.parse(j.finished) - Date.parse(j.started)) : "…"}</td>
          <td><span class=${"status " + j.status}>${j.status}</span></td><td class="num">${size(j.bytes)}</td>
          <td>${j.backup_id ? html`<${Link} href=${`/backups/${j.backup_id}`}>#${j.backup_id}</${Link}>` : ""}</td>
        </tr>
        ${open === j.id && html`<tr><td colspan="8"><${JobLog} id=${j.id} /></td></tr>`}`)}</tbody>
    </table>
    ${jobs.length > 0 && jobs.length % 100 === 0 && html`<button class="button" onClick=${older}>Older</button>`}`}`;
}

// Freshness of a tag set: the age of its newest backup against the usual
// gap between its backups (the median of the last ten; a day when there
// is one backup): amber past it, red past twice it.
function freshness(list) {
  const times = list.slice(0, 11).map((b) => Date.parse(b.created_at));
  const gaps = times.slice(1).map((t, i) => times[i] - t).sort((a, b) => a - b);
  const expected = Math.max(gaps.length ? gaps[Math.floor(gaps.length / 2)] : 86400000, 60000);
  const age = Date.now() - times[0];
  return { age, expected, level: age > 2 * expected ? "red" : age > expected ? "amber" : "fresh" };
}

// SizeChart draws a tag set's backup sizes over time, oldest first.
function SizeChart({ list }) {
  const pts = list.slice(0, 30).reverse();
  if (pts.length < 2) return null;
  const max = Math.max(...pts.map((b) => b.bytes), 1), w = 160, h = 28;
  const line = (v) => pts.map((b, i) => `${(i * w / (pts.length - 1)).toFixed(1)},${(h - 2 - (v(b) / max) * (h - 4)).toFixed(1)}`).join(" ");
  return html`<svg class="chart" width=${w} height=${h} viewBox=${`0 0 ${w} ${h}`} role="img" aria-label="backup sizes and added bytes over time">
    <title>size (line) and added bytes (dashed) of the last ${pts.length} backups, up to ${size(max)}</title>
    <polyline points=${line((b) => b.bytes)} fill="none" stroke="currentColor" stroke-width="1.5" />
    <polyline class="added" points=${line((b) => b.added_bytes || 0)} fill="none" stroke="#c27c0e" stroke-width="1" stroke-dasharray="3 2" /></svg>`;
}

function Stats() {
  const st = useLoad(() => api("/stats"), []);
  if (st.error) return html`<${Err} error=${st.error} />`;
  if (st.loading) return html`<p class="muted">Loading…</p>`;
  const s = st.data;
  const items = [
    ["Backups", s.backups.toLocaleString()], ["Tag sets", s.tag_sets], ["Blocks", s.blocks.toLocaleString()],
    ["Inline blocks", s.inline_blocks.toLocaleString()], ["Stored", size(s.stored_bytes)],
    ["Inline (SQLite)", size(s.inline_bytes)], ["Offloaded", size(s.offloaded_bytes)],
    ["Logical (all backups)", size(s.logical_bytes)], ["Dedup", `${s.dedup_ratio.toFixed(2)}×`],
    ["Compression", `${s.compression_ratio.toFixed(2)}×`],
  ];
  return html`
    <h1>Server</h1>
    <div class="stats">${items.map(([k, v]) => html`<div class="stat"><div class="muted">${k}</div><div class="v">${v}</div></div>`)}</div>
    <p class="muted">Block store: ${s.block_store}</p>`;
}

function App() {
  const [, tick] = useState(0);
  useEffect(() => {
    const f = () => tick((n) => n + 1);
    window.addEventListener("popstate", f);
    window.addEventListener("ib:nav", f);
    return () => { window.removeEventListener("popstate", f); window.removeEventListener("ib:nav", f); };
  }, []);
  const p = location.pathname;
  const m = p.match(/^\/backups\/(\d+)\/?$/);
  let page, active;
  if (p === "/" || p === "") [page, active] = [html`<${Backups} />`, "/"];
  else if (m) [page, active] = [html`<${Backup} id=${m[1]} />`, "/"];
  else if (p === "/search") [page, active] = [html`<${Search} />`, ""];
  else if (p === "/compare") [page, active] = [html`<${Compare} />`, "/"];
  else if (p === "/downloads") [page, active] = [html`<${Downloads} />`, "/downloads"];
  else if (p === "/stats") [page, active] = [html`<${Stats} />`, "/stats"];
  else if (p === "/activity") [page, active] = [html`<${Activity} />`, "/activity"];
  else page = html`<${Err} error=${"No such page: " + vis(p)} />`;
  const q = p === "/search" ? new URLSearchParams(location.search).get("q") || "" : "";
  const nav = (href, label) => html`<${Link} href=${href} class=${active === href ? "active" : ""}>${label}</${Link}>`;
  return html`
    <header>
      <${Link} href="/" class="brand">ib</${Link}>
      <nav>${nav("/", "Backups")}${nav("/activity", "Activity")}${nav("/downloads", "Downloads")}${nav("/stats", "Stats")}</nav>
      <form onSubmit=${(e) => { e.preventDefault(); go("/search?q=" + encodeURIComponent(e.target.q.value)); }}>
        <input name="q" placeholder="Search file names…" value=${q} aria-label="search" />
      </form>
    </header>
    <main>${page}</main>`;
}

render(html`<${App} />`, document.getElementById("app"));
