// docs.test.mjs -- the reference page in a real browser: Debian's headless
// Chromium, driven by playwright-core, loads /docs from a running daemon,
// every loss must be on the page, nothing may be fetched from another host
// and no script may fail; screenshots go to build/ (docs.png: the top of
// the page; docs-softmax.png: one loss's section).
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { BUILD, DOCS_HTML_PATH, computePaths, doc, get, lossNames, requireApi, startDaemon } from "./lib.mjs";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let d;
let url;
let servedByDaemon;
let context;
let profile;

before(async () => {
  d = await startDaemon(["--threads", "1"]);
  const page = readFileSync(DOCS_HTML_PATH, "utf8");
  const res = await get(d.port, "/docs");
  servedByDaemon = res.status === 200 && res.text === page;
  url = `http://127.0.0.1:${d.port}/docs`;
  const { chromium } = requireApi("playwright-core");
  profile = mkdtempSync(path.join(os.tmpdir(), "lossd-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1400, height: 900 },
  });
});

after(async () => {
  if (context) await context.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (d) await d.stop();
});

test("the daemon serves the embedded reference page at /docs", () => {
  assert.ok(servedByDaemon, "GET /docs is not the page built from api/openapi.yaml");
});

test("/docs renders every loss, fetches only from its own host and runs without errors", async () => {
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("response", (r) => {
    if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`);
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  await page.goto(url, { waitUntil: "networkidle" });
  const intro = await page.evaluate(() => document.body.innerText);
  assert.ok(intro.includes(doc.info.title), "no title");
  await page.screenshot({ path: path.join(BUILD, "docs.png") });

  // Redoc shows one tag's operations at a time: open each from the sidebar
  // as a reader would, and collect what the page says.
  let text = intro;
  for (const tag of doc.tags) {
    await page.getByText(tag.name, { exact: true }).first().click();
    await page.locator("h2", { hasText: tag.name }).first().waitFor();
    await page.waitForLoadState("networkidle");
    // The tag's list of operations may end in "Show N more".
    const more = page.getByText(/^Show \d+ more/);
    if (await more.count()) await more.first().click();
    text += "\n" + (await page.evaluate(() => document.body.innerText));
  }
  for (const path of computePaths) {
    const summary = doc.paths[path].post.summary;
    assert.ok(text.includes(summary), `the summary of ${path} is not on the page`);
  }
  for (const name of lossNames) assert.ok(text.includes(`/loss/${name}`), `/loss/${name} is not on the page`);
  for (const p of Object.keys(doc.paths)) assert.ok(text.includes(p), `${p} is not on the page`);

  // One operation in full: its request fields and an example.
  await page.goto(`${url}#/classification/computesoftmax`, { waitUntil: "networkidle" });
  const heading = page.locator("h2", { hasText: doc.paths["/loss/softmax"].post.summary }).first();
  await heading.waitFor();
  await heading.scrollIntoViewIfNeeded();
  await page.getByText("label_smoothing").first().waitFor();
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(BUILD, "docs-softmax.png") });

  // Every link on the page opens in a new tab too: none names a root path
  // (/section/errors), which the daemon does not serve; each is its hash.
  const rooted = await page.$$eval("a[href]", (as) =>
    as.map((a) => a.getAttribute("href")).filter((h) => h.startsWith("/") && !h.startsWith("//")),
  );
  assert.deepEqual(rooted, [], "links to root paths");
  const tab = await context.newPage();
  await tab.goto(`${url}#/section/errors`, { waitUntil: "networkidle" });
  // The page scrolls once it has rendered, which may follow the load.
  await tab.waitForFunction(() => window.scrollY > 0, null, { timeout: 10000 }).catch(() => {});
  assert.ok((await tab.evaluate(() => window.scrollY)) > 0, "#/section/errors did not scroll to the section");
  await tab.close();

  const own = new URL(url).host;
  const foreign = requests.filter((u) => !/^(data|blob|about):/.test(u) && new URL(u).host !== own);
  assert.deepEqual(foreign, [], "requests to other hosts");
  assert.deepEqual(errors, [], "script errors");
  assert.ok(existsSync(path.join(BUILD, "docs.png")));
  await page.close();
});
