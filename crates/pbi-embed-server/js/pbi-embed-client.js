// pbi-embed-client.js: embed any Power BI item through a pbi-embed broker and keep it
// alive. An ES module with no dependencies besides powerbi-client (the page loads it);
// no build step. Served by the broker at /pbi-embed-client.js.
//
//   import { embed } from "https://broker.example.com/pbi-embed-client.js";
//   const handle = await embed(document.getElementById("report"), {
//     broker: "https://broker.example.com",
//     type: "report", id: "5b218778-e7a5-4d73-8187-f10824047715",
//     getToken: async () => (await msal.acquireTokenSilent(request)).accessToken,
//   });
//
// It asks the broker for the configuration (with the page's own bearer token), embeds it
// with powerbi-client, and keeps the embed token fresh: a new one is set with
// setAccessToken at the broker's refreshAt, at once on Power BI's TokenExpired error, and
// at once when a tab that slept wakes up past refreshAt. A failed refresh is retried with
// backoff (1 s, doubling, at most 60 s) and reported through onError.

const MIN_RETRY_MS = 1000;
const MAX_RETRY_MS = 60000;

/** An error from the broker: its status, code and Power BI's RequestId. */
export class BrokerError extends Error {
  constructor(status, body) {
    super((body && body.error) || `the broker answered ${status}`);
    this.name = "BrokerError";
    this.status = status;
    this.code = body && body.code;
    this.requestId = body && body.requestId;
  }
}

/**
 * Fetches a configuration from the broker: `GET {broker}/v1/embed/{type}/{id}?{params}`.
 * @returns {Promise<object>} the broker's answer: a configuration with `refreshAt`, or
 *   `{configs, refreshAt}` for several reports.
 */
export async function fetchConfig({ broker, type, id, params = {}, getToken, fetch: fetchImpl = fetch }) {
  const query = new URLSearchParams(params).toString();
  const ids = Array.isArray(id) ? id.join(",") : id;
  const url = `${broker.replace(/\/$/, "")}/v1/embed/${encodeURIComponent(type)}/${ids.split(",").map(encodeURIComponent).join(",")}${query ? `?${query}` : ""}`;
  const headers = {};
  if (getToken) { headers.Authorization = `Bearer ${await getToken()}`; }
  const response = await fetchImpl(url, { headers, credentials: "omit", cache: "no-store" });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) { throw new BrokerError(response.status, body); }
  return body;
}

// What powerbi.embed takes: the broker's configuration less what only this module uses.
function embedConfigOf(config, settings) {
  const { refreshAt, tokenId, expiration, ...embedConfig } = config;
  if (settings) { embedConfig.settings = settings; }
  return embedConfig;
}

/**
 * Embeds `type`/`id` from the broker into `container` and keeps its token fresh.
 *
 * Options: `broker` (its base URL), `type` (report, paginated, dashboard, tile, visual,
 * qna, create, reports), `id` (an id, or ids for reports), `params` (dashboard for a tile,
 * page and visual for a visual, question for Q&A), `getToken` (the page's bearer token for
 * the broker), `powerbi` (default `window.powerbi`), `settings` (powerbi-client settings),
 * `onError(error)`, `onRefresh(config)`, `now` (a clock, for tests).
 *
 * @returns {Promise<{embeds: object[], refresh: () => Promise<void>, stop: () => void}>}
 *   `refresh()` sets a new token now, or joins the refresh already under way; it settles
 *   when that refresh has ended (a failure goes to onError, never to the promise).
 */
export async function embed(container, options) {
  const powerbi = options.powerbi || window.powerbi;
  const now = options.now || (() => Date.now());
  const onError = options.onError || ((error) => showError(container, error));
  const body = await fetchConfig(options);
  const configs = body.configs || [body];
  const embeds = configs.map((config) => {
    let target = container;
    if (configs.length > 1) {
      target = document.createElement("div");
      target.className = "pbi-embed-pane";
      container.appendChild(target);
    }
    const embedConfig = embedConfigOf(config, options.settings);
    return config.type === "create" ? powerbi.createReport(target, embedConfig) : powerbi.embed(target, embedConfig);
  });

  let refreshAt = Date.parse(body.refreshAt);
  let timer = null;
  let retryMs = MIN_RETRY_MS;
  let refreshing = null;
  let stopped = false;

  function schedule(at) {
    clearTimeout(timer);
    if (!stopped) { timer = setTimeout(refresh, Math.max(0, at - now())); }
  }

  // A new token for every embed; on failure, again after a backoff.
  function refresh() {
    if (refreshing || stopped) { return refreshing || Promise.resolve(); }
    clearTimeout(timer);
    refreshing = (async () => {
      try {
        const next = await fetchConfig(options);
        const token = (next.configs ? next.configs[0] : next).accessToken;
        await Promise.all(embeds.map((e) => e.setAccessToken(token)));
        refreshAt = Date.parse(next.refreshAt);
        retryMs = MIN_RETRY_MS;
        clearError(container);
        if (options.onRefresh) { options.onRefresh(next); }
        schedule(refreshAt);
      } catch (error) {
        onError(error);
        const wait = retryMs;
        retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
        schedule(now() + wait);
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  // Power BI's own word that the token expired: a new one at once.
  for (const embedded of embeds) {
    embedded.on("error", (event) => {
      const detail = (event && event.detail) || {};
      if (detail.message === "TokenExpired") { refresh(); }
    });
  }
  // A tab that slept (timers stop) wakes up past refreshAt: refresh at once.
  const onWake = () => {
    if (document.visibilityState === "visible" && now() >= refreshAt) { refresh(); }
  };
  document.addEventListener("visibilitychange", onWake);
  window.addEventListener("focus", onWake);
  window.addEventListener("online", onWake);
  schedule(refreshAt);

  return {
    embeds,
    refresh,
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", onWake);
      window.removeEventListener("focus", onWake);
      window.removeEventListener("online", onWake);
    },
  };
}

// The default way to show what went wrong: a box before the container, replaced each time.
function showError(container, error) {
  let box = container.previousElementSibling;
  if (!box || !box.classList || !box.classList.contains("pbi-embed-error")) {
    box = document.createElement("div");
    box.className = "pbi-embed-error";
    box.setAttribute("role", "alert");
    container.parentNode.insertBefore(box, container);
  }
  const id = error.requestId ? ` (RequestId ${error.requestId})` : "";
  box.textContent = `Refreshing the report's access failed: ${error.message}${id}. Retrying…`;
}

function clearError(container) {
  const box = container.previousElementSibling;
  if (box && box.classList && box.classList.contains("pbi-embed-error")) { box.remove(); }
}
