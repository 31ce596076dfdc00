//! The stand-in embed page served at each embed URL (`/reportEmbed`, `/dashboardEmbed`,
//! `/embed`): when the browser's `powerbi-client` loads it in its iframe and sends its
//! load request through `postMessage`, the page checks the token with the emulator (valid,
//! not expired, for this item, with which identity), answers the handshake and raises the
//! client's `loaded` event, or its `error` event with a clear message (a `tokenType` other
//! than Embed is one). It also accepts `setAccessToken` (a new token for the same item).

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
  var current = null;
  var counter = 0;
  function post(message) { window.parent.postMessage(message, "*"); }
  function reply(request, statusCode, body) {
    post({ statusCode: statusCode, headers: { id: request.headers && request.headers.id }, body: body });
  }
  function raise(kind, name, body) {
    var prefix = kind === "report" ? "reports" : kind === "dashboard" ? "dashboards" : "tile";
    var message = { method: "POST", url: "/" + prefix + "/" + uid + "/events/" + name, headers: { id: "emu-" + (++counter) } };
    if (body !== undefined) { message.body = body; }
    post(message);
  }
  function introspect(token) {
    return fetch("/_emulator/introspect", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: String(token || "") })
    }).then(function (r) { return r.json(); });
  }
  function problemWith(info, kind, id) {
    if (!info.valid) { return info.reason || "the embed token is not valid"; }
    var wanted = String(id || "").toLowerCase();
    var granted = info.token.resources.some(function (r) { return r.kind === kind && r.id === wanted; });
    return granted ? null : "the embed token does not grant access to " + kind + " " + id;
  }
  function show(kind, id, info) {
    document.getElementById("title").textContent = "Power BI emulator: " + kind + " " + id;
    var identity = info.token.identities[0];
    var rows = [
      ["Token id", info.token.tokenId],
      ["Expires", info.token.expiration],
      ["Access", info.token.accessLevel || (info.token.resources.some(function (r) { return r.editable; }) ? "Edit" : "View")],
      ["Identity", identity ? (identity.username || "(identity blob)") + " roles [" + identity.roles.join(", ") + "]" : "none"]
    ];
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
  window.addEventListener("message", function (event) {
    var m = event.data;
    if (!m || typeof m !== "object" || !m.method || !m.url) { return; }
    var match = /^\/(report|dashboard|tile)\/(load|prepare|render|token)$/.exec(m.url);
    if (!match) { reply(m, 404, { message: "NotSupportedByEmulator", detailedMessage: m.method + " " + m.url }); return; }
    var kind = match[1], action = match[2];
    if (action === "render") { reply(m, 202, {}); raise(kind, "rendered"); return; }
    if (action === "token") {
      if (!current) { reply(m, 400, { message: "NotLoaded" }); return; }
      introspect(m.body).then(function (info) {
        var problem = problemWith(info, kind, current.id);
        if (problem) { reply(m, 403, { message: "TokenRejected", detailedMessage: problem }); return; }
        current.token = m.body;
        show(kind, current.id, info);
        document.getElementById("status").textContent = "Token refreshed.";
        reply(m, 200, null);
      });
      return;
    }
    uid = (m.headers && m.headers.uid) || uid;
    var body = m.body || {};
    current = { kind: kind, id: body.id, token: body.accessToken };
    reply(m, 202, {});
    if (body.tokenType !== 1) {
      // Real Power BI reads a token without tokenType Embed (1) as an Entra access token.
      fail(kind, "tokenType is " + (body.tokenType === 0 ? "0 (Aad)" : "not set") +
        ": an embed token needs tokenType 1 (models.TokenType.Embed)");
      return;
    }
    introspect(body.accessToken).then(function (info) {
      var problem = problemWith(info, kind, body.id);
      if (problem) { fail(kind, problem); return; }
      show(kind, body.id, info);
      var status = document.getElementById("status");
      status.className = "";
      status.textContent = "Loaded " + kind + " " + body.id + ".";
      raise(kind, "loaded");
      if (kind === "tile") { raise(kind, "tileLoaded", { tileId: body.id }); }
      if (kind === "report" && action === "load") { raise(kind, "rendered"); }
    }, function (error) { fail(kind, "the emulator could not check the token: " + error); });
  });
})();
</script>
</body>
</html>
"#;
