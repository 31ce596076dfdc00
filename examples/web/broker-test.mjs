// Browser test of the broker and its companion: headless Chromium (Debian's chromium,
// driven by playwright-core) opens a page that embeds a report with
// pbi-embed-client.js from `pbi-embed serve`, over the emulator's TLS, with one-minute
// embed tokens, and stays loaded through two refreshes without reloading; then Power BI's
// TokenExpired error makes it set a new token at once.
//
//   cargo build -p pbi-embed-cli && npm ci --prefix examples/web
//   node examples/web/broker-test.mjs
//
// Processes: `pbi-embed emulator --tls` (Power BI, Entra ID, and the page user's identity
// provider) and `pbi-embed serve` (PBI_EMBED_BIN overrides; CARGO_TARGET_DIR is honoured).
// The page comes from a small server here, on another origin than the broker (CORS). No
// request is intercepted: Chromium resolves emu.powerbi.com to 127.0.0.1 and trusts the
// emulator's CA through its NSS database (certutil), as a developer's browser would.

import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { request as httpsRequest } from "node:https";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const target = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : resolve(root, "target");
const bin = process.env.PBI_EMBED_BIN || resolve(target, "debug/pbi-embed");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const artifacts = resolve(target, "broker-test");
mkdirSync(artifacts, { recursive: true });
const HTTPS_NAME = "emu.powerbi.com";
const AUDIENCE = "api://broker";

let passed = 0;
let failed = 0;
function check(name, ok, detail = "") {
  if (ok) { passed += 1; console.log(`ok   ${name}`); } else { failed += 1; console.log(`FAIL ${name} ${detail}`); }
}

function freePort() {
  return new Promise((done, fail) => {
    const server = createNetServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    }).on("error", fail);
  });
}

// Starts `bin args`; resolves when a stdout line matches `pattern`, with the match.
function start(args, env, pattern) {
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  const found = new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`${args[0]} did not start`)), 30000);
    createInterface({ input: child.stdout }).on("line", (line) => {
      const match = pattern.exec(line);
      if (match) { clearTimeout(timer); done(match); }
    });
    child.on("exit", (code) => fail(new Error(`${args[0]} exited with ${code}`)));
  });
  return { child, found };
}

const home = mkdtempSync(resolve(tmpdir(), "pbi-embed-broker-"));
const caFile = resolve(home, "emulator-ca.pem");
const port = await freePort();
const emulatorBase = `https://127.0.0.1:${port}`;
const emulator = start(
  ["emulator", "--listen", `127.0.0.1:${port}`, "--tls", "--tls-name", HTTPS_NAME, "--tls-ca-out", caFile,
    "--embed-base", `https://${HTTPS_NAME}:${port}`],
  {}, /listening on (https:\/\/\S+)/);
const children = [emulator.child];
let browser = null;
let pageServer = null;
try {
  await emulator.found;
  const ca = readFileSync(caFile, "utf8");
  // A JSON request to the emulator, trusting only its CA.
  const emulatorJson = (method, path, body) => new Promise((done, fail) => {
    const request = httpsRequest(`${emulatorBase}${path}`, { method, ca, headers: { "content-type": "application/json" } }, (response) => {
      let text = "";
      response.on("data", (chunk) => { text += chunk; });
      response.on("end", () => { try { done(JSON.parse(text)); } catch (error) { fail(error); } });
    });
    request.on("error", fail);
    request.end(body ? JSON.stringify(body) : undefined);
  });
  const fixture = await emulatorJson("GET", "/_emulator/fixture");
  const tenant = fixture.tenant.id;
  const principal = fixture.servicePrincipals[0];
  const workspace = "f089354e-8366-4e18-aea3-4cb4a3a50b48";
  const report = "5b218778-e7a5-4d73-8187-f10824047715";

  // The page, on an origin of its own.
  const page = readFileSync(resolve(here, "broker-page.html"), "utf8");
  const powerbiJs = readFileSync(resolve(here, "node_modules/powerbi-client/dist/powerbi.js"));
  pageServer = createServer((req, res) => {
    if (req.url.startsWith("/powerbi.js")) { res.writeHead(200, { "content-type": "text/javascript" }); res.end(powerbiJs); return; }
    if (req.url === "/" || req.url.startsWith("/?")) { res.writeHead(200, { "content-type": "text/html" }); res.end(page); return; }
    res.writeHead(404); res.end();
  });
  await new Promise((done) => pageServer.listen(0, "127.0.0.1", done));
  const site = `http://127.0.0.1:${pageServer.address().port}`;

  // The broker: one-minute tokens, served until 40 s before they expire.
  const config = resolve(home, "broker.toml");
  writeFileSync(config, `[server]
listen = "127.0.0.1:0"
cors_origins = ["${site}"]

[powerbi]
api_base = "${emulatorBase}"
authority_host = "${emulatorBase}"
ca_file = "${caFile}"
embed_margin_seconds = 40
refresh_ahead_seconds = 0

[[issuers]]
issuer = "${emulatorBase}/${tenant}/v2.0"
audience = "${AUDIENCE}"
customer = "contoso"

[[customers]]
id = "contoso"
workspace = "${workspace}"
roles = ["Region"]
lifetime_minutes = 1
items = [{ type = "report", id = "${report}" }]
`);
  const broker = start(["serve", "--config", config],
    { AZURE_TENANT_ID: tenant, AZURE_CLIENT_ID: principal.clientId, AZURE_CLIENT_SECRET: principal.clientSecret,
      AZURE_CLIENT_CERTIFICATE_PATH: "", AZURE_FEDERATED_TOKEN_FILE: "", IDENTITY_ENDPOINT: "" },
    /listening on (http:\/\/\S+)/);
  children.push(broker.child);
  const brokerUrl = (await broker.found)[1];

  // The page user's token, from the emulator as identity provider.
  const { token } = await emulatorJson("POST", "/_emulator/user-tokens",
    { username: "alice@contoso.com", audience: AUDIENCE, lifetimeSeconds: 3600 });

  // The browser trusts the emulator's CA, and nothing else new.
  const nssdb = resolve(home, ".pki/nssdb");
  mkdirSync(nssdb, { recursive: true });
  execFileSync("certutil", ["-d", `sql:${nssdb}`, "-N", "--empty-password"]);
  execFileSync("certutil", ["-d", `sql:${nssdb}`, "-A", "-t", "C,,", "-n", "pbi-embed emulator", "-i", caFile]);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    env: { ...process.env, HOME: home },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      `--host-resolver-rules=MAP ${HTTPS_NAME} 127.0.0.1`],
  });
  const tab = await browser.newPage({ viewport: { width: 1000, height: 600 } });
  const pageErrors = [];
  tab.on("pageerror", (error) => pageErrors.push(error.message));
  await tab.addInitScript((t) => { window.userToken = t; }, token);
  await tab.goto(`${site}/?broker=${encodeURIComponent(brokerUrl)}&type=report&id=${report}`);
  await tab.waitForFunction(() => window.state && (window.state.loaded > 0 || window.state.failure), null, { timeout: 30000 });
  const first = await tab.evaluate(() => window.state);
  check("the companion embeds the report from the broker and it loads", first.loaded > 0 && !first.failure, JSON.stringify(first));
  const frame = tab.frames().find((f) => f.url().startsWith(`https://${HTTPS_NAME}`));
  const details = frame ? await frame.textContent("#details") : "";
  check("the embed page checked a token carrying the caller's identity from its JWT", details.includes("alice@contoso.com") && details.includes("Region"), details);
  await tab.screenshot({ path: resolve(artifacts, "loaded.png") });

  // Two refreshes at the broker's refreshAt (about 30 s apart: halfway through a token too short to cache for long), without reloading.
  const errorBox = () => tab.evaluate(() => { const box = document.querySelector(".pbi-embed-error"); return box ? box.textContent : null; });
  await tab.waitForFunction(() => window.state.refreshed.length >= 2 || document.querySelector(".pbi-embed-error"), null, { timeout: 80000 });
  const later = await tab.evaluate(() => window.state);
  check("two refreshes, each a new token", later.refreshed.length >= 2 && new Set(later.refreshed).size === later.refreshed.length, JSON.stringify(later));
  const set = await emulatorJson("GET", "/_emulator/tokens-set");
  check("the emulator's embed page got each one through setAccessToken", later.refreshed.every((id) => set.includes(id)), `${JSON.stringify(set)} vs ${JSON.stringify(later.refreshed)}`);
  const same = await tab.evaluate(() => performance.getEntriesByType("navigation").length === 1
    && document.querySelector("#report iframe") === window.firstIframe && window.state.marker === window.firstMarker);
  check("the page and its iframe were never reloaded", same);
  const noError = await errorBox();
  check("no refresh failed", noError === null, noError);
  const frameStatus = frame ? await frame.textContent("#status") : "";
  check("the embed page says the token was refreshed", frameStatus.includes("Token refreshed"), frameStatus);

  // Power BI says the token expired (a tab that slept past it): a new token at once.
  const before = later.refreshed.length;
  await frame.evaluate(() => window.emulatorExpireToken());
  await tab.waitForFunction((n) => window.state.refreshed.length > n, before, { timeout: 15000 }).catch(() => {});
  const recovered = await tab.evaluate(() => window.state);
  check("a TokenExpired error sets a token at once", recovered.refreshed.length > before, JSON.stringify(recovered));
  const setAfter = await emulatorJson("GET", "/_emulator/tokens-set");
  check("the embed page accepted it", setAfter.includes(recovered.refreshed[recovered.refreshed.length - 1]), JSON.stringify(setAfter));
  await tab.screenshot({ path: resolve(artifacts, "refreshed.png") });

  // A tab that slept past refreshAt (its timers stopped) refreshes as soon as it is seen.
  const beforeWake = recovered.refreshed.length;
  // The clock is put back as soon as the wake-up has been seen: left skewed, the refresh
  // would schedule the next one at once (its refreshAt lies in the skewed past), and that
  // one could still be out when the broker stops below.
  await tab.evaluate(() => {
    window.skew = 10 * 60 * 1000;
    document.dispatchEvent(new Event("visibilitychange"));
    window.skew = 0;
  });
  await tab.waitForFunction((n) => window.state.refreshed.length > n, beforeWake, { timeout: 15000 }).catch(() => {});
  const woken = await tab.evaluate(() => window.state.refreshed.length);
  check("a tab waking past refreshAt refreshes at once", woken > beforeWake, `${woken} refreshes`);

  // The broker gone: the refresh fails, the page says so, and it tries again. refresh()
  // joins a refresh already out, which may have reached the broker before it stopped, so
  // the test asks again once that one has ended.
  broker.child.kill("SIGTERM");
  await new Promise((done) => broker.child.on("exit", done));
  await tab.evaluate(async () => {
    await window.handle.refresh();
    if (!document.querySelector(".pbi-embed-error")) { await window.handle.refresh(); }
  });
  const shown = await errorBox();
  check("a failed refresh is shown on the page", shown !== null && shown.includes("Retrying"), String(shown));
  check("and the embed is still loaded", await tab.evaluate(() => document.querySelector("#report iframe") === window.firstIframe));
  await tab.screenshot({ path: resolve(artifacts, "refresh-failed.png") });
  check("no page raised an uncaught error", pageErrors.length === 0, pageErrors.join("; "));
} finally {
  if (browser) { await browser.close(); }
  if (pageServer) { pageServer.close(); }
  for (const child of children) { child.kill("SIGTERM"); }
  rmSync(home, { recursive: true, force: true });
}
console.log(`\nscreenshots in ${artifacts}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
