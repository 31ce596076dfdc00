//! The stand-in embed page served at each embed URL (`/reportEmbed`, `/rdlEmbed`,
//! `/qnaEmbed`, `/dashboardEmbed`, `/embed`): when the browser's `powerbi-client` loads it
//! in its iframe and sends its load request through `postMessage` (`/report/load` for a
//! report, a paginated report or a visual, `/report/create`, `/qna/load`,
//! `/dashboard/load`, `/tile/load`), the page checks the token with the emulator (valid,
//! not expired, granting what is embedded: the report, the dataset(s) for Q&A and create,
//! the target workspace for create; a visual's page and name must exist), answers the
//! handshake and raises the client's `loaded` event (and `visualRendered` for a Q&A
//! question), or its `error` event with a clear message (a `tokenType` other than Embed is
//! one). It also accepts `setAccessToken` (a new token for the same item; the emulator
//! records each, `GET /_emulator/tokens-set`), and when the token it holds expires it
//! raises the `error` event Power BI raises then (`TokenExpired`, 403);
//! `window.emulatorExpireToken()` raises it at once, for tests of a page's recovery.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};

use crate::reply::{Body, full};

/// The page.
pub(crate) fn page() -> Response<Body> {
    let mut response = Response::new(full(PAGE));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Power BI emulator</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 0; background: #f3f2f1; color: #252423; }
  header { background: #f2c811; padding: 8px 16px; font-weight: 600; }
  main { padding: 16px; }
  .card { background: white; border-radius: 4px; padding: 16px; box-shadow: 0 1px 3px rgba(0,0,0,.2); }
  .error { color: #a4262c; font-weight: 600; }
  dt { color: #605e5c; margin-top: 8px; } dd { margin: 0; font-family: monospace; }
  .bars { display: flex; gap: 8px; align-items: flex-end; height: 80px; margin-top: 16px; }
  .bars div { background: #118dff; width: 32px; }
</style>
</head>
<body>
<header id="title">Power BI emulator: waiting for powerbi-client</header>
<main><div class="card">
  <div id="status">Waiting for the load request from the host page.</div>
  <dl id="details"></dl>
  <div class="bars"><div style="height:40%"></div><div style="height:75%"></div><div style="height:55%"></div><div style="height:90%"></div><div style="height:30%"></div></div>
</div></main>
<script>
(function () {
  "use strict";
  var uid = new URLSearchParams(location.search).get("uid");
  var paginated = /^\/rdlembed$/i.test(location.pathname);
  var current = null;
  var counter = 0;
  function post(message) { window.parent.postMessage(message, "*"); }
  function reply(request, statusCode, body) {
    post({ statusCode: statusCode, headers: { id: request.headers && request.headers.id }, body: body });
  }
  // Event paths: /reports/{uid}/… (report, visual, create), /dashboards/…, /tile/…, /qna/….
  function prefixOf(kind) {
    return kind === "dashboard" ? "dashboards" : kind === "tile" ? "tile" : kind === "qna" ? "qna" : "reports";
  }
  function raise(kind, name, body) {
    var message = { method: "POST", url: "/" + prefixOf(kind) + "/" + uid + "/events/" + name, headers: { id: "emu-" + (++counter) } };
    if (body !== undefined) { message.body = body; }
    post(message);
  }
  function introspect(token, purpose) {
    var body = { token: String(token || "") };
    if (purpose) { body.purpose = purpose; }
    return fetch("/_emulator/introspect", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (r) { return r.json(); });
  }
  // Power BI's error event when the token an embed holds expires.
  var expiryTimer = null;
  function tokenExpired() {
    if (!current) { return; }
    var status = document.getElementById("status");
    status.className = "error";
    status.textContent = "Token expired.";
    raise(current.kind, "error", { message: "TokenExpired",
      detailedMessage: "Access token has expired, resubmit with a new access token", errorCode: "403", level: 6 });
  }
  function watchExpiry(info) {
    clearTimeout(expiryTimer);
    var at = info.token && info.token.expiresAtMs;
    if (at) { expiryTimer = setTimeout(tokenExpired, Math.max(0, at - Date.now())); }
  }
  window.emulatorExpireToken = tokenExpired;
  // What the embedded item needs the token to grant: [kind, id] pairs.
  function problemWith(info, item) {
    if (!info.valid) { return info.reason || "the embed token is not valid"; }
    for (var i = 0; i < item.needs.length; i++) {
      var kind = item.needs[i][0], wanted = String(item.needs[i][1] || "").toLowerCase();
      var granted = info.token.resources.some(function (r) { return r.kind === kind && r.id === wanted; });
      if (!granted) { return "the embed token does not grant access to " + kind + " " + item.needs[i][1]; }
    }
    if (item.targetWorkspace && (info.token.targetWorkspaces || []).indexOf(String(item.targetWorkspace).toLowerCase()) < 0) {
      return "the embed token does not allow saving to workspace " + item.targetWorkspace;
    }
    return null;
  }
  function show(item, info) {
    document.getElementById("title").textContent = "Power BI emulator: " + item.title;
    var identity = info.token.identities[0];
    var rows = [
      ["Token id", info.token.tokenId],
      ["Expires", info.token.expiration],
      ["Access", info.token.accessLevel || (info.token.resources.some(function (r) { return r.editable; }) ? "Edit" : "View")],
      ["Identity", identity ? (identity.username || "(identity blob)") + " roles [" + identity.roles.join(", ") + "]" : "none"]
    ].concat(item.rows || []);
    document.getElementById("details").innerHTML = rows.map(function (r) {
      return "<dt>" + r[0] + "</dt><dd>" + String(r[1]).replace(/</g, "&lt;") + "</dd>";
    }).join("");
  }
  function fail(kind, text) {
    var status = document.getElementById("status");
    status.className = "error";
    status.textContent = "Error: " + text;
    raise(kind, "error", { message: "LoadReportFailed", detailedMessage: text, errorCode: "403", level: 6 });
  }
  // A visual's page and name: the config's, or the one visible in its custom layout.
  function visualOf(body) {
    var layout = body.settings && body.settings.customLayout && body.settings.customLayout.pagesLayout;
    if (!layout) { return null; }
    var page = body.pageName || Object.keys(layout)[0];
    var visuals = (layout[page] && layout[page].visualsLayout) || {};
    var visual = body.visualName || Object.keys(visuals).filter(function (v) {
      return visuals[v].displayState && visuals[v].displayState.mode === 0;
    })[0];
    return { page: page, visual: visual };
  }
  // Checks that a visual's page and name exist in the report.
  function checkVisual(id, visual) {
    return fetch("/_emulator/reports/" + encodeURIComponent(id)).then(function (r) { return r.json(); }).then(function (report) {
      var page = (report.pages || []).filter(function (p) { return p.name === visual.page; })[0];
      if (!page) { return "report " + id + " has no page named " + visual.page; }
      if (page.visuals.indexOf(visual.visual) < 0) { return "page " + visual.page + " has no visual named " + visual.visual; }
      return null;
    });
  }
  // What a load or create request embeds.
  function itemOf(kind, action, body) {
    if (kind === "qna") {
      var ids = body.datasetIds || [];
      return { kind: "qna", title: "Q&A over dataset " + ids.join(", "), needs: ids.map(function (d) { return ["dataset", d]; }),
        rows: [["Question", body.question || "(none)"]], question: body.question };
    }
    if (action === "create") {
      return { kind: "create", title: "new report on dataset " + body.datasetId, needs: [["dataset", body.datasetId]],
        targetWorkspace: body.groupId, rows: [["Saves to", body.groupId || "(no workspace)"]] };
    }
    if (kind === "report") {
      var visual = visualOf(body);
      if (visual) {
        return { kind: "visual", id: body.id, title: "visual " + visual.visual + " on " + visual.page + " of report " + body.id,
          needs: [["report", body.id]], visual: visual };
      }
      return { kind: "report", id: body.id, title: (paginated ? "paginated report " : "report ") + body.id, needs: [["report", body.id]] };
    }
    return { kind: kind, id: body.id, title: kind + " " + body.id, needs: [[kind, body.id]] };
  }
  window.addEventListener("message", function (event) {
    var m = event.data;
    if (!m || typeof m !== "object" || !m.method || !m.url) { return; }
    var match = /^\/(report|dashboard|tile|qna)\/(load|prepare|render|token|create|interpret)$/.exec(m.url);
    if (!match) { reply(m, 404, { message: "NotSupportedByEmulator", detailedMessage: m.method + " " + m.url }); return; }
    var kind = match[1], action = match[2];
    if (action === "render") { reply(m, 202, {}); raise(kind, "rendered"); return; }
    if (action === "interpret") {
      reply(m, 202, {});
      raise("qna", "visualRendered", { question: m.body && m.body.question });
      return;
    }
    if (action === "token") {
      if (!current) { reply(m, 400, { message: "NotLoaded" }); return; }
      introspect(m.body, "setAccessToken").then(function (info) {
        var problem = problemWith(info, current);
        if (problem) { reply(m, 403, { message: "TokenRejected", detailedMessage: problem }); return; }
        show(current, info);
        watchExpiry(info);
        document.getElementById("status").className = "";
        document.getElementById("status").textContent = "Token refreshed.";
        reply(m, 200, null);
      });
      return;
    }
    uid = (m.headers && m.headers.uid) || uid;
    var body = m.body || {};
    var item = itemOf(kind, action, body);
    current = item;
    reply(m, 202, {});
    if (body.tokenType !== 1) {
      // Real Power BI reads a token without tokenType Embed (1) as an Entra access token.
      fail(item.kind, "tokenType is " + (body.tokenType === 0 ? "0 (Aad)" : "not set") +
        ": an embed token needs tokenType 1 (models.TokenType.Embed)");
      return;
    }
    var visualChecked = item.visual ? checkVisual(item.id, item.visual) : Promise.resolve(null);
    Promise.all([introspect(body.accessToken), visualChecked]).then(function (results) {
      var info = results[0];
      var problem = results[1] || problemWith(info, item);
      if (problem) { fail(item.kind, problem); return; }
      show(item, info);
      watchExpiry(info);
      var status = document.getElementById("status");
      status.className = "";
      status.textContent = "Loaded " + item.title + ".";
      raise(item.kind, "loaded");
      if (item.kind === "tile") { raise("tile", "tileLoaded", { tileId: body.id }); }
      if ((item.kind === "report" || item.kind === "visual") && action === "load" && !paginated) { raise(item.kind, "rendered"); }
      if (item.kind === "qna" && item.question) { raise("qna", "visualRendered", { question: item.question }); }
    }, function (error) { fail(item.kind, "the emulator could not check the token: " + error); });
  });
})();
</script>
</body>
</html>
"#;
