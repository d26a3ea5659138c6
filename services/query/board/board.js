// The control-room board. Pages are server-rendered shells; each view fetches its fragments
// (server-rendered HTML) with the operator's token and patches them into the page in place
// (a keyed morph: unchanged rows, focus and scroll stay), again whenever /v1/stream says
// something changed, and again after the stream reconnects (a query-service restart).
(function () {
  "use strict";
  const body = document.body;
  const intake = body.dataset.intake;
  const view = body.dataset.view;
  const $ = (id) => document.getElementById(id);
  const store = window.sessionStorage;
  let mayPost = null;           // event types intake says this caller may post (null: not known yet)
  let level3 = null;            // level-3 incident ids on screen at the last refresh (null: first load)
  let refreshTimer = null;
  let refreshing = false;
  let again = false;
  let firstRender = true;
  let streamAbort = null;
  let retry = 1000;

  // --- sign-in: the token is pasted into the sign-in form, kept in this tab's session storage
  // and only ever sent in the Authorization header (fragments, stream, intake), never in a URL.
  const token = () => store.getItem("muster.token") || "";

  function headers(extra) {
    const h = Object.assign({ Authorization: "Bearer " + token() }, extra || {});
    const reason = store.getItem("muster.reason");
    if (reason) h["X-Access-Reason"] = reason;
    return h;
  }

  function claims() {
    try {
      const part = token().split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part));
    } catch (e) { return {}; }
  }

  function setLive(on, text) {
    const el = $("live");
    el.textContent = text;
    el.className = "live " + (on ? "on" : "off");
  }

  function showSignedIn() {
    const signedIn = !!token();
    $("token-field").hidden = signedIn;
    $("signin-submit").textContent = signedIn ? "Set reason" : "Sign in";
    $("who").hidden = !signedIn;
    $("signout").hidden = !signedIn;
    if (signedIn) {
      const c = claims();
      const reason = store.getItem("muster.reason");
      $("who").textContent = (c.sub || "operator") + " (" + (c.role || "?") + ", " + (c.agency || "?") + ")" +
        (reason ? "; reason stated" : "");
    }
  }

  // --- patching in place --------------------------------------------------------------------
  const keyOf = (n) => (n.nodeType === 1 && n.dataset ? n.dataset.key || null : null);

  function morph(from, to) {
    if (from.nodeType !== to.nodeType || from.nodeName !== to.nodeName || keyOf(from) !== keyOf(to)) {
      from.replaceWith(to);
      return;
    }
    if (from.nodeType !== 1) {
      if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
      return;
    }
    for (const a of Array.from(from.attributes)) if (!to.hasAttribute(a.name)) from.removeAttribute(a.name);
    for (const a of Array.from(to.attributes)) if (from.getAttribute(a.name) !== a.value) from.setAttribute(a.name, a.value);
    morphChildren(from, to);
  }

  function morphChildren(from, to) {
    const keyed = new Map();
    for (const c of Array.from(from.childNodes)) { const k = keyOf(c); if (k) keyed.set(k, c); }
    let cur = from.firstChild;
    for (const t of Array.from(to.childNodes)) {
      const k = keyOf(t);
      let match = null;
      if (k) { match = keyed.get(k) || null; if (match) keyed.delete(k); }
      else if (cur && !keyOf(cur) && cur.nodeName === t.nodeName) match = cur;
      if (!match) { from.insertBefore(t, cur); continue; }
      if (match === cur) cur = cur.nextSibling; else from.insertBefore(match, cur);
      morph(match, t);
    }
    while (cur) { const next = cur.nextSibling; from.removeChild(cur); cur = next; }
  }

  function patch(id, html) {
    const el = $(id);
    if (!el || html === undefined) return;
    const next = document.createElement(el.tagName);
    next.innerHTML = html;
    applyPermissions(next);
    morphChildren(el, next);
  }

  function setBanner(text) {
    $("banner").textContent = text;
    $("banner").className = "banner" + (text === "OFFICIAL-SENSITIVE" ? " sensitive" : "");
  }

  // --- what this caller may do: intake's own write rules, asked once --------------------------
  async function loadPermissions() {
    try {
      const res = await fetch(intake + "/v1/permissions", { headers: headers() });
      if (!res.ok) throw new Error(String(res.status));
      mayPost = new Set((await res.json()).may_post);
    } catch (e) {
      mayPost = new Set();
      const none = $("act-none");
      if (none) none.textContent = "Could not ask intake what you may do (" + e.message + "); no action is offered.";
    }
    applyPermissions(document);
  }

  function applyPermissions(root) {
    if (mayPost === null) return;
    root.querySelectorAll("[data-needs]").forEach((el) => { el.hidden = !mayPost.has(el.dataset.needs); });
    const none = root.querySelector ? root.querySelector("#act-none") : null;
    if (none) {
      const offered = root.querySelectorAll(".act[data-needs]:not([hidden]), button.ack:not([hidden])").length;
      none.textContent = offered ? "" : "Your role may not change this incident.";
      none.hidden = !!offered;
    }
  }

  // --- fragments per view -------------------------------------------------------------------
  function filterQuery() {
    const params = new URLSearchParams(window.location.search);
    for (const [k, v] of Array.from(params.entries())) if (!v) params.delete(k);
    return params;
  }

  async function getJSON(path) {
    const res = await fetch(path, { headers: headers() });
    if (res.status === 401) { setLive(false, "signed out: sign in again"); store.removeItem("muster.token"); showSignedIn(); }
    const data = await res.json().catch(() => ({}));
    return { status: res.status, data };
  }

  async function refreshBoard() {
    const q = filterQuery();
    const { status, data } = await getJSON("/board/fragments/screen?" + q.toString());
    if (status !== 200) { patch("list-body", '<p class="warn">' + escapeText(data.detail || status) + "</p>"); return; }
    patch("strip-body", data.strip);
    patch("list-body", data.list);
    patch("map-body", data.map);
    $("list-count").textContent = "(" + data.count + ")";
    setBanner(data.banner);
    announceLevel3(data.level3);
  }

  async function refreshAnalysis() {
    const by = new URLSearchParams(window.location.search).get("by") || "ward";
    const { status, data } = await getJSON("/board/fragments/analysis?by=" + encodeURIComponent(by));
    if (status !== 200) { patch("heatmap-body", '<p class="warn">' + escapeText(data.detail || status) + "</p>"); return; }
    patch("heatmap-body", data.heatmap);
    patch("tension-body", data.tension);
  }

  async function refreshCasework() {
    const { status, data } = await getJSON("/board/fragments/casework");
    if (status === 428) {
      patch("cases-body", '<p class="warn">Casework is OFFICIAL-SENSITIVE. State why you are reading it ' +
        "(Reason for sensitive records, above; audited) to see the cases.</p>");
      return;
    }
    if (status !== 200) { patch("cases-body", '<p class="warn">' + escapeText(data.detail || status) + "</p>"); return; }
    patch("cases-body", data.cases);
  }

  async function refreshIncident() {
    const id = $("incident-body").dataset.incidentId;
    const { status, data } = await getJSON("/board/fragments/incidents/" + id);
    if (status === 428) {
      patch("incident-body", '<p class="warn">This record is OFFICIAL-SENSITIVE. State why you are reading it ' +
        "(Reason for sensitive records, above; audited) to see it.</p>");
      $("reason").focus();
      return;
    }
    if (status !== 200) {
      patch("incident-body", '<p class="warn">' + (status === 404 ? "No such incident, or not one you may see." :
        escapeText(data.detail || status)) + "</p>");
      return;
    }
    patch("incident-body", data.html);
    document.title = data.title.replace(/_/g, " ") + " - Muster control room";
    setBanner(data.banner);
  }

  const REFRESH = { board: refreshBoard, analysis: refreshAnalysis, casework: refreshCasework, incident: refreshIncident };

  // What the page is doing about its reads, on body as data-refresh: "pending" (a read is
  // scheduled, or queued behind the one running), "running" (one is in flight, none after it)
  // or "idle" (none will start unless the stream, the address or a sign-in asks). Shown to
  // nobody; the browser tests wait on it, as a count of reads done cannot say whether the read
  // they caused has run yet.
  function showRefresh() {
    body.dataset.refresh = refreshTimer !== null || again ? "pending" : refreshing ? "running" : "idle";
  }

  async function refresh() {
    refreshTimer = null;
    if (!token()) { showRefresh(); return; }
    if (refreshing) { again = true; showRefresh(); return; }
    refreshing = true;
    showRefresh();
    try {
      await REFRESH[view]();
      if (firstRender) { firstRender = false; performance.mark("board:first-render"); body.dataset.rendered = "yes"; }
      body.dataset.refreshes = String(Number(body.dataset.refreshes || 0) + 1);
    } catch (e) {
      setLive(false, "cannot reach the board (" + e.message + "); retrying");
    } finally {
      refreshing = false;
      if (again) { again = false; scheduleRefresh(); }
      showRefresh();
    }
  }

  function scheduleRefresh(delay) {
    if (refreshTimer === null) refreshTimer = setTimeout(refresh, delay === undefined ? 150 : delay);
    showRefresh();
  }

  function escapeText(s) {
    const d = document.createElement("div");
    d.textContent = String(s);
    return d.innerHTML;
  }

  // --- a new level 3: said in words and by shape, announced, and shown above everything ------
  function announceLevel3(ids) {
    const before = level3;
    level3 = new Set(ids);
    if (before === null) return;
    const fresh = ids.filter((id) => !before.has(id));
    if (!fresh.length) return;
    const items = fresh.map((id) => {
      const card = document.querySelector('#strip-body li.esc[data-key="' + id + '"] a');
      const what = card ? card.textContent : "incident " + id.slice(0, 8);
      if (card) card.closest("li").classList.add("new");
      return '<a href="/board/incidents/' + id + '">' + escapeText(what) + "</a>";
    });
    const alert = $("l3-alert");
    alert.innerHTML = '<span class="shape" aria-hidden="true">\u25b2</span> <strong>New level 3: major incident.</strong> ' +
      items.join("; ") + ' <button type="button" id="l3-dismiss">Dismiss</button>';
    alert.hidden = false;
    if (!document.title.startsWith("\u25b2")) document.title = "\u25b2 NEW LEVEL 3 - " + document.title;
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && !$("l3-alert").hidden) $("l3-dismiss").click();
  });

  document.addEventListener("click", (ev) => {
    if (ev.target.id !== "l3-dismiss") return;
    $("l3-alert").hidden = true;
    $("l3-alert").textContent = "";
    document.title = document.title.replace(/^\u25b2 NEW LEVEL 3 - /, "");
  });

  // An incident's page reads itself again only for changes to it or to a report related to it.
  function concernsThisPage(block) {
    if (view !== "incident") return true;
    const page = $("incident-body");
    try {
      const data = JSON.parse((block.match(/^data: ?(.*)$/m) || [])[1] || "{}");
      const ids = [data.incident_id, data.lead_incident_id].filter(Boolean);
      return ids.some((id) => id === page.dataset.incidentId || page.querySelector('[data-key="' + id + '"]'));
    } catch (e) { return true; }
  }

  // --- the live stream: server-sent events over fetch, so the token travels in a header -------
  async function listen() {
    if (streamAbort) streamAbort.abort();
    const abort = new AbortController();
    streamAbort = abort;
    try {
      const res = await fetch("/v1/stream", { headers: headers({ Accept: "text/event-stream" }), signal: abort.signal });
      if (res.status === 401) { setLive(false, "signed out (token expired or invalid)"); return; }
      if (!res.ok) throw new Error("stream " + res.status);
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = (block.match(/^event: ?(.*)$/m) || [])[1];
          if (event === "expired") { abort.abort(); setLive(false, "signed out (token expired)"); return; }
          if (event === "ready") { retry = 1000; setLive(true, "live"); scheduleRefresh(0); }
          else if (event === "incident" || event === "escalation") { if (concernsThisPage(block)) scheduleRefresh(); }
          else if (event === "tension") scheduleRefresh(view === "analysis" ? 2000 : 150);
        }
      }
    } catch (e) {
      if (abort.signal.aborted) return;
    }
    setLive(false, "reconnecting");
    setTimeout(listen, retry);
    retry = Math.min(retry * 2, 5000);
  }

  // --- writes: to intake, as this caller; intake decides -------------------------------------
  async function post(path, payload) {
    const res = await fetch(intake + path, {
      method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(payload),
    });
    const text = await res.text();
    let data = {};
    try { data = JSON.parse(text); } catch (e) { data = { detail: text }; }
    if (!res.ok) throw new Error(data.detail || data.error || res.status);
    return data;
  }

  const fact = (type, fields) => Object.assign({ event_type: type, occurred_at: new Date().toISOString() }, fields);

  document.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button.ack");
    if (!button) return;
    button.disabled = true;
    try {
      await post("/v1/incidents/" + button.dataset.id + "/events",
        fact("IncidentAcknowledged", { acknowledged_by: claims().sub || "operator" }));
      button.textContent = "Sent";
    } catch (e) { button.disabled = false; button.textContent = "Retry acknowledge"; button.title = e.message; }
  });

  document.addEventListener("submit", async (ev) => {
    const form = ev.target;
    if (!form.classList || !form.classList.contains("act")) return;
    ev.preventDefault();
    const fields = {};
    for (const [k, v] of new FormData(form).entries()) if (v !== "") fields[k] = k === "severity" ? Number(v) : v;
    const out = $("act-result");
    try {
      await post("/v1/incidents/" + form.dataset.id + "/events", fact(form.dataset.event, fields));
      out.textContent = form.querySelector("legend").textContent + ": sent.";
      form.reset();
    } catch (e) { out.textContent = form.querySelector("legend").textContent + ": refused, " + e.message; }
  });

  if ($("raise")) {
    $("raise").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target);
      const out = $("raise-result");
      try {
        const done = await post("/v1/incidents", {
          occurred_at: new Date().toISOString(), category: f.get("category"), severity: Number(f.get("severity")),
          location: { ward_code: f.get("ward_code") }, description: f.get("description"),
        });
        out.textContent = "Raised " + done.incident_id;
        out.dataset.incidentId = done.incident_id;
        ev.target.reset();
      } catch (e) { out.textContent = "Not raised: " + e.message; }
    });
  }

  // --- the board's filters, pages and ward map: the address says what is shown ---------------
  function go(params) {
    for (const [k, v] of Array.from(params.entries())) if (!v) params.delete(k);
    const q = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (q ? "?" + q : ""));
    scheduleRefresh(0);
  }

  if ($("filters")) {
    const form = $("filters");
    form.addEventListener("change", () => go(new URLSearchParams(new FormData(form))));
    form.addEventListener("submit", (ev) => { ev.preventDefault(); go(new URLSearchParams(new FormData(form))); });
    form.addEventListener("reset", () => setTimeout(() => go(new URLSearchParams()), 0));
    $("list-body").addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-page]");
      if (!b) return;
      const params = filterQuery();
      params.set("page", b.dataset.page);
      go(params);
      $("list-h").focus && $("list-h").scrollIntoView({ block: "nearest" });
    });
    $("map-body").addEventListener("click", (ev) => {
      const tile = ev.target.closest("button.tile");
      if (!tile) return;
      const params = filterQuery();
      const same = params.get("ward") === tile.dataset.ward;
      params.delete("page");
      if (same) params.delete("ward"); else params.set("ward", tile.dataset.ward);
      $("f-ward").value = same ? "" : tile.dataset.ward;
      go(params);
    });
  }

  // --- signing in and out ---------------------------------------------------------------------
  $("signin").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if ($("token").value) store.setItem("muster.token", $("token").value.trim());
    store.setItem("muster.reason", $("reason").value.trim());
    $("token").value = "";
    start();
  });
  $("signout").addEventListener("click", () => {
    store.removeItem("muster.token");
    store.removeItem("muster.reason");
    if (streamAbort) streamAbort.abort();
    window.location.reload();
  });

  setInterval(() => {  // ages tick without asking the server
    const now = Date.now();
    document.querySelectorAll(".age[data-since]").forEach((el) => {
      const m = Math.max(0, Math.floor((now - Date.parse(el.dataset.since)) / 60000));
      el.textContent = m < 60 ? m + " min" : m < 2880 ? Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min" : Math.floor(m / 1440) + " days";
    });
  }, 30000);

  function start() {
    showRefresh();
    showSignedIn();
    if (!token()) { setLive(false, "signed out"); return; }
    $("reason").value = store.getItem("muster.reason") || "";
    loadPermissions();
    scheduleRefresh(0);
    listen();
  }
  start();
})();
