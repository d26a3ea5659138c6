// The control-room board: panels re-rendered by the server whenever /v1/stream says something changed.
(function () {
  "use strict";
  const intake = document.body.dataset.intake;
  const $ = (id) => document.getElementById(id);
  const store = window.sessionStorage;
  let refreshTimer = null;
  let streamAbort = null;

  // The token is pasted into the sign-in form and only ever sent in the Authorization header.

  function headers(extra) {
    const h = Object.assign({ Authorization: "Bearer " + (store.getItem("muster.token") || "") }, extra || {});
    const reason = store.getItem("muster.reason");
    if (reason) h["X-Access-Reason"] = reason;
    return h;
  }

  function subject() {
    try {
      const part = (store.getItem("muster.token") || "").split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part)).sub;
    } catch (e) { return "operator"; }
  }

  function setLive(on, text) {
    const el = $("live");
    el.textContent = text;
    el.className = "live " + (on ? "on" : "off");
  }

  async function refresh() {
    refreshTimer = null;
    const res = await fetch("/board/panels", { headers: headers() });
    if (!res.ok) { setLive(false, "signed out (" + res.status + ")"); return; }
    const p = await res.json();
    $("incidents").innerHTML = p.incidents;
    $("escalations").innerHTML = p.escalations;
    $("wards").innerHTML = p.wards;
    $("banner").textContent = p.banner;
    $("banner").className = "banner" + (p.banner === "OFFICIAL-SENSITIVE" ? " sensitive" : "");
  }

  function scheduleRefresh() {
    if (refreshTimer === null) refreshTimer = setTimeout(refresh, 100);
  }

  // Server-sent events over fetch, so the token travels in a header rather than the URL.
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
          if (event === "ready") { setLive(true, "live"); scheduleRefresh(); }
          else if (event === "incident" || event === "escalation" || event === "tension") scheduleRefresh();
        }
      }
    } catch (e) {
      if (abort.signal.aborted) return;
    }
    setLive(false, "reconnecting");
    setTimeout(listen, 2000);
  }

  async function post(path, body) {
    const res = await fetch(intake + path, {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
    });
    const text = await res.text();
    let data = {};
    try { data = JSON.parse(text); } catch (e) { data = { detail: text }; }
    if (!res.ok) throw new Error(data.detail || res.status);
    return data;
  }

  $("raise").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const out = $("raise-result");
    try {
      const done = await post("/v1/incidents", {
        occurred_at: new Date().toISOString(),
        category: f.get("category"),
        severity: Number(f.get("severity")),
        location: { ward_code: f.get("ward_code") },
        description: f.get("description"),
      });
      out.textContent = "Raised " + done.incident_id;
      out.dataset.incidentId = done.incident_id;
      ev.target.reset();
    } catch (e) { out.textContent = "Not raised: " + e.message; }
  });

  $("incidents").addEventListener("click", async (ev) => {
    const button = ev.target.closest("button.ack");
    if (!button) return;
    button.disabled = true;
    try {
      await post("/v1/incidents/" + button.dataset.id + "/events", {
        event_type: "IncidentAcknowledged",
        occurred_at: new Date().toISOString(),
        acknowledged_by: subject(),
      });
      button.textContent = "Sent";
    } catch (e) { button.disabled = false; button.textContent = "Retry"; button.title = e.message; }
  });

  $("signin").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if ($("token").value) store.setItem("muster.token", $("token").value.trim());
    store.setItem("muster.reason", $("reason").value.trim());
    $("token").value = "";
    refresh();
    listen();
  });

  setInterval(() => {  // ages tick without asking the server
    const now = Date.now();
    document.querySelectorAll("td.age[data-since]").forEach((td) => {
      const m = Math.max(0, Math.floor((now - Date.parse(td.dataset.since)) / 60000));
      td.textContent = m < 60 ? m + " min" : m < 2880 ? Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min" : Math.floor(m / 1440) + " days";
    });
  }, 30000);

  if (store.getItem("muster.token")) { $("reason").value = store.getItem("muster.reason") || ""; listen(); }
})();
