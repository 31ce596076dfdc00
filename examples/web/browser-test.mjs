// Browser test: headless Chromium (Debian's chromium, driven by playwright-core) opens the
// example web app against the emulator and checks the whole embedding path.
//
//   cargo build -p pbi-embed-examples-server --example web_app && npm ci --prefix examples/web
//   node examples/web/browser-test.mjs
//
// It starts target/debug/examples/web_app itself twice (WEB_APP_BIN overrides;
// CARGO_TARGET_DIR is honoured): once on the plain-http emulator with 1-minute tokens
// renewed 50 s before expiry, once on the emulator over TLS with embed URLs under
// https://emu.powerbi.com:<port>, so that powerbi-client embeds reports, dashboards and
// tiles itself. No request is intercepted: Chromium resolves emu.powerbi.com to 127.0.0.1
// (--host-resolver-rules) and trusts the emulator's CA through its NSS database (certutil,
// from Debian's libnss3-tools), as a developer's browser would. Screenshots go to
// target/browser-test/.

import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { get as httpsGet } from "node:https";
import { tmpdir } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const target = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : resolve(root, "target");
const bin = process.env.WEB_APP_BIN || resolve(target, "debug/examples/web_app");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const artifacts = resolve(target, "browser-test");
mkdirSync(artifacts, { recursive: true });

let passed = 0;
let failed = 0;
function check(name, ok, detail = "") {
  if (ok) { passed += 1; console.log(`ok   ${name}`); } else { failed += 1; console.log(`FAIL ${name} ${detail}`); }
}

// Uncaught errors of any page; the test fails if there is one.
const pageErrors = [];
function watch(page, name) {
  page.on("pageerror", (error) => pageErrors.push(`${name}: ${error.message}`));
}

// Starts the web app with `env` added; resolves to it and the URLs it prints.
async function startApp(env) {
  const app = spawn(bin, [], {
    env: { ...process.env, AZURE_CLIENT_ID: "", PBI_WEB_LISTEN: "127.0.0.1:0", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const urls = await new Promise((resolveUrls, reject) => {
    const found = {};
    const timer = setTimeout(() => reject(new Error("the web app did not start")), 30000);
    createInterface({ input: app.stdout }).on("line", (line) => {
      const match = /^(emulator|web app): (\S+)/.exec(line);
      if (match) { found[match[1]] = match[2]; }
      if (found.emulator && found["web app"]) { clearTimeout(timer); resolveUrls(found); }
    });
    app.on("exit", (code) => reject(new Error(`the web app exited with ${code}`)));
  });
  return { app, site: urls["web app"].replace(/\/\?.*$/, ""), emulator: urls.emulator };
}

// The plain-http emulator with 1-minute tokens renewed 50 s early: reports, embedded in
// an iframe of the page's own (powerbi-client refuses http embed URLs).
const { app, site, emulator } = await startApp({ PBI_EMBED_LIFETIME_MINUTES: "1", PBI_REFRESH_MARGIN_SECONDS: "50" });
// A second emulator over TLS, its certificate also for emu.powerbi.com, an https Power BI
// host name: powerbi-client's own embedding, for reports, dashboards and tiles.
const HTTPS_NAME = "emu.powerbi.com";
const home = mkdtempSync(resolve(tmpdir(), "pbi-embed-browser-"));
const caFile = resolve(home, "emulator-ca.pem");
const secure = await startApp({ PBI_EMULATOR_TLS_NAME: HTTPS_NAME, PBI_EMULATOR_CA_OUT: caFile }).catch((error) => {
  app.kill();
  throw error;
});
const emulatorCa = readFileSync(caFile, "utf8");
const HTTPS_BASE = `https://${HTTPS_NAME}:${new URL(secure.emulator).port}`;
// The browser's trust: a fresh NSS database in its HOME holding only the emulator's CA.
const nssdb = resolve(home, ".pki/nssdb");
mkdirSync(nssdb, { recursive: true });
execFileSync("certutil", ["-d", `sql:${nssdb}`, "-N", "--empty-password"]);
execFileSync("certutil", ["-d", `sql:${nssdb}`, "-A", "-t", "C,,", "-n", "pbi-embed emulator", "-i", caFile]);

// GET a JSON document from the TLS emulator, trusting only its CA.
function getJson(url) {
  return new Promise((done, fail) => {
    httpsGet(url, { ca: emulatorCa }, (response) => {
      let body = "";
      response.on("data", (chunk) => { body += chunk; });
      response.on("end", () => { try { done(JSON.parse(body)); } catch (error) { fail(error); } });
    }).on("error", fail);
  });
}

const browser = await chromium.launch({
  executablePath: chromiumPath,
  env: { ...process.env, HOME: home },
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    `--host-resolver-rules=MAP ${HTTPS_NAME} 127.0.0.1`],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
  watch(page, "report over http");
  await page.goto(`${site}/?user=alice`);
  await page.waitForFunction(() => window.embedState && (window.embedState.loaded || window.embedState.error), null, { timeout: 30000 });
  const state = await page.evaluate(() => window.embedState);
  check("the report's loaded event fires", state.loaded === true, JSON.stringify(state));

  check("the embed URL is the emulator's report page", state.embedUrl.startsWith(`${emulator}/reportEmbed?reportId=`), state.embedUrl);

  const token = await (await fetch(`${emulator}/_emulator/tokens/${state.tokenIds[0]}`)).json();
  const report = new URL(state.embedUrl).searchParams.get("reportId");
  check("the token is for that report", token.resources.some((r) => r.kind === "report" && r.id === report), JSON.stringify(token.resources));
  check("the token carries alice's identity", token.identities[0] && token.identities[0].username === "alice@contoso.com", JSON.stringify(token.identities));

  // What the embed page shows came to it through powerbi-client's load message: the
  // backend's token, checked by the emulator, and the backend's tokenType (the page
  // refuses any other than Embed).
  const frame = page.frames().find((f) => f.url().startsWith(emulator));
  const shown = frame ? await frame.textContent("#details") : "";
  check("the embed page got the backend's token from powerbi-client", shown.includes(state.tokenIds[0]), shown);
  check("the embed page shows the identity it checked", shown.includes("alice@contoso.com"), shown);
  await page.screenshot({ path: resolve(artifacts, "embedded.png") });

  await page.waitForFunction(() => window.embedState.refreshed.length > 0 || window.embedState.error, null, { timeout: 40000 });
  const later = await page.evaluate(() => window.embedState);
  check("a short-lived token is refreshed before it expires", later.refreshed.length > 0 && !later.error, JSON.stringify(later));
  const renewed = later.refreshed[0];
  check("the refreshed token is a new one", renewed && renewed !== state.tokenIds[0]);
  const status = await page.textContent("#status");
  check("the page says so", status.includes("token refreshed"), status);
  const frameStatus = frame ? await frame.textContent("#status") : "";
  check("the embed page accepted the new token", frameStatus.includes("Token refreshed"), frameStatus);
  await page.screenshot({ path: resolve(artifacts, "refreshed.png") });

  const mistake = await browser.newPage({ viewport: { width: 1100, height: 400 } });
  watch(mistake, "RLS mistake");
  await mistake.goto(`${site}/?user=mallory`);
  await mistake.waitForFunction(() => window.embedState && window.embedState.error, null, { timeout: 30000 });
  const error = await mistake.textContent("#error");
  check("an RLS mistake shows a readable error", error.includes("requires an effective identity") && error.includes("Sales"), error);
  check("the error box is visible", await mistake.isVisible("#error"));
  await mistake.screenshot({ path: resolve(artifacts, "rls-mistake.png") });

  const context = await browser.newContext({ viewport: { width: 1100, height: 600 } });
  // Every https response the browser got came from a certificate it verified.
  const tlsFailures = [];
  context.on("requestfailed", (request) => {
    if (request.url().startsWith("https:")) { tlsFailures.push(`${request.url()}: ${request.failure().errorText}`); }
  });
  for (const kind of ["report", "dashboard", "tile"]) {
    const tab = await context.newPage();
    watch(tab, `${kind} over https`);
    await tab.goto(`${secure.site}/?user=alice&kind=${kind}`);
    await tab.waitForFunction(() => window.embedState && (window.embedState.loaded || window.embedState.error), null, { timeout: 30000 });
    const embedded = await tab.evaluate(() => window.embedState);
    check(`https embed URL: powerbi-client embeds the ${kind} and it loads`, embedded.loaded === true && embedded.embedUrl.startsWith(`${HTTPS_BASE}/`), JSON.stringify(embedded));
    // Here powerbi-client made the iframe itself, from the embed URL it was given.
    const src = await tab.$eval("#report iframe", (iframe) => iframe.src);
    check(`powerbi-client's iframe loads the ${kind}'s embed URL`, src.startsWith(embedded.embedUrl), `${src} vs ${embedded.embedUrl}`);
    const granted = await getJson(`${secure.emulator}/_emulator/tokens/${embedded.tokenIds[0]}`);
    const frame = tab.frames().find((f) => f.url().startsWith(HTTPS_BASE));
    const title = frame ? await frame.textContent("#title") : "";
    const id = title.split(" ").pop();
    check(`the ${kind} token grants the ${kind} the embed page shows`, (granted.resources || []).some((r) => r.kind === kind && r.id === id), `${title} / ${JSON.stringify(granted.resources)}`);
    await tab.screenshot({ path: resolve(artifacts, `https-${kind}.png`) });
  }

  // Every other type powerbi-client embeds, from one backend call each: what the page
  // loaded, what the token grants at the emulator, and the identity it carries.
  const fixture = { paginated: "f904e89a-7ebe-4aa0-8647-e409063b4850", inventory: "e75afc47-1150-45e0-aba7-4eb04e4876e5",
    sales: "cfafbeb1-8037-4d0c-896e-a46fb27ff229", salesReport: "5b218778-e7a5-4d73-8187-f10824047715",
    productsReport: "b2e49b01-2356-4456-bfb9-3f4c2bc4ddbd", workspace: "f089354e-8366-4e18-aea3-4cb4a3a50b48" };
  const types = [
    { kind: "paginated", title: `paginated report ${fixture.paginated}`,
      grants: [["report", fixture.paginated], ["dataset", fixture.inventory]] },
    { kind: "qna", title: `Q&A over dataset ${fixture.sales}`, grants: [["dataset", fixture.sales]] },
    { kind: "visual", title: `visual revenueByRegion on ReportSection of report ${fixture.salesReport}`,
      grants: [["report", fixture.salesReport], ["dataset", fixture.sales]] },
    { kind: "create", title: `new report on dataset ${fixture.sales}`, grants: [["dataset", fixture.sales]],
      targetWorkspace: fixture.workspace },
    { kind: "reports", title: `report ${fixture.productsReport}`,
      grants: [["report", fixture.salesReport], ["report", fixture.productsReport], ["dataset", fixture.sales]], frames: 2 },
  ];
  for (const type of types) {
    const tab = await context.newPage();
    watch(tab, `${type.kind} over https`);
    await tab.goto(`${secure.site}/?user=alice&kind=${type.kind}`);
    await tab.waitForFunction(() => window.embedState && (window.embedState.loaded || window.embedState.error), null, { timeout: 30000 });
    const embedded = await tab.evaluate(() => window.embedState);
    check(`${type.kind}: powerbi-client embeds it and its loaded event fires`,
      embedded.loaded === true && embedded.embedUrls.every((u) => u.startsWith(`${HTTPS_BASE}/`)), JSON.stringify(embedded));
    const granted = await getJson(`${secure.emulator}/_emulator/tokens/${embedded.tokenIds[0]}`);
    const missing = type.grants.filter(([kind, id]) => !(granted.resources || []).some((r) => r.kind === kind && r.id === id));
    check(`${type.kind}: the token grants what is embedded`, missing.length === 0, `missing ${JSON.stringify(missing)} in ${JSON.stringify(granted.resources)}`);
    if (type.targetWorkspace) {
      check(`${type.kind}: the token lets the report be saved to the workspace`,
        (granted.targetWorkspaces || []).includes(type.targetWorkspace), JSON.stringify(granted));
    }
    check(`${type.kind}: the token carries alice's identity`,
      (granted.identities || []).some((i) => i.username === "alice@contoso.com"), JSON.stringify(granted.identities));
    const frames = tab.frames().filter((f) => f.url().startsWith(HTTPS_BASE));
    const titles = await Promise.all(frames.map((f) => f.textContent("#title")));
    check(`${type.kind}: the embed page shows ${type.title}`,
      titles.some((t) => t.endsWith(type.title)) && frames.length === (type.frames || 1), JSON.stringify(titles));
    await tab.screenshot({ path: resolve(artifacts, `https-${type.kind}.png`) });
  }

  // The emulator's embed page refuses an embed token announced as an Entra token, as
  // Power BI does: a page that hard-codes the wrong tokenType fails here.
  const wrongType = await context.newPage();
  watch(wrongType, "tokenType Aad");
  await wrongType.goto(`${secure.site}/?user=alice`);
  await wrongType.waitForFunction(() => window.embedState && (window.embedState.loaded || window.embedState.error), null, { timeout: 30000 });
  const config = await (await fetch(`${secure.site}/api/embed?user=alice`)).json();
  const refused = await wrongType.evaluate(async (config) => {
    const container = document.createElement("div");
    document.body.appendChild(container);
    const models = window["powerbi-client"].models;
    const embedded = powerbi.embed(container, { ...config, tokenType: models.TokenType.Aad });
    return await new Promise((done) => {
      embedded.on("loaded", () => done("loaded"));
      embedded.on("error", (event) => done((event.detail && event.detail.detailedMessage) || "error"));
      setTimeout(() => done("no answer"), 15000);
    });
  }, config);
  check("a token passed with tokenType Aad is refused", refused.includes("tokenType is 0 (Aad)"), refused);
  check("the browser verified the emulator's certificate (no https request failed)", tlsFailures.length === 0, tlsFailures.join("; "));

  // The same browser without the CA in its trust store refuses the emulator.
  const untrusting = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      `--host-resolver-rules=MAP ${HTTPS_NAME} 127.0.0.1`],
  });
  try {
    const tab = await untrusting.newPage();
    const outcome = await tab.goto(`${HTTPS_BASE}/reportEmbed`).then(() => "loaded", (error) => error.message);
    check("a browser that does not trust the emulator's CA refuses it", outcome.includes("ERR_CERT_AUTHORITY_INVALID"), outcome);
  } finally {
    await untrusting.close();
  }
} finally {
  await browser.close();
  app.kill();
  secure.app.kill();
  rmSync(home, { recursive: true, force: true });
}
check("no page raised an uncaught error", pageErrors.length === 0, pageErrors.join("; "));
console.log(`\nscreenshots in ${artifacts}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
