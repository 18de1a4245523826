// The web console in a real browser (Debian's chromium, driven by playwright-core) against
// the real server: log in, the dashboard, the deploy wizard on the demo cloud up to Running,
// the instances list and a stop job, Chinese, branding, logout. Screenshots go to the
// run's temporary folder, printed at the start.
//
//   NODE_PATH=~/.cache/wasmstack/node/node_modules node --test tests/console/
//
// Environment: WASMSTACK_BIN (default $CARGO_TARGET_DIR/release/wasmstack), WASMSTACK_WEB_DIR
// (default: `web` beside the binary), CHROMIUM (default /usr/bin/chromium).

"use strict";

const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const helpers = require("./helpers.cjs");

const { BIN, WEB_DIR, launchBrowser, stopServer, supportsDemo } = helpers;
const PASSWORD = "console-" + Math.random().toString(36).slice(2);
const FIRST_PAGE_LIMIT = 500 * 1024;

const { run, shots } = helpers.makeRun("wasmstack-console-");

/** A server for this file's run; the admin password is PASSWORD unless given. */
function startServer(dataDir, { demo = false, password = PASSWORD } = {}) {
  return helpers.startServer(run, dataDir, { demo, password });
}

test("web console", { timeout: 600000 }, async (t) => {
  assert.ok(fs.existsSync(BIN), `no server binary at ${BIN} (run scripts/build.sh)`);
  assert.ok(fs.existsSync(path.join(WEB_DIR, "index.html")), `no console in ${WEB_DIR} (run scripts/build.sh)`);
  const demo = supportsDemo();
  const dataDir = path.join(run, "data");
  const server = await startServer(dataDir, { demo });
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await stopServer(server, dataDir);
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  await t.test("the login page loads small", async () => {
    const finished = [];
    page.on("requestfinished", (r) => finished.push(r));
    await page.goto(`${server.base}/client/`);
    await page.locator("#username").waitFor();
    let bytes = 0;
    for (const r of finished) {
      const sizes = await r.sizes();
      bytes += sizes.responseBodySize + sizes.responseHeadersSize;
    }
    page.removeAllListeners("requestfinished");
    console.log(`# first page: ${finished.length} requests, ${bytes} bytes over the wire`);
    assert.ok(bytes < FIRST_PAGE_LIMIT, `the first page took ${bytes} bytes`);
    assert.equal(await page.title(), "wasmstack");
    await shot("01-login");
  });

  await t.test("a wrong password shows the API's error", async () => {
    await helpers.logIn(page, "admin", "not-the-password");
    const err = page.locator(".login .error");
    await err.filter({ hasText: /\S/ }).waitFor();
    assert.match(await err.innerText(), /authenticat|credential|password/i);
    await shot("02-login-error");
  });

  await t.test("log in, the dashboard", async () => {
    await page.fill("#password", PASSWORD);
    await page.click("button[type=submit]");
    await page.locator("section.dashboard").waitFor();
    await page.locator("section.dashboard .stat, section.dashboard .muted:not(:empty)").first().waitFor();
    await shot("03-dashboard");
  });

  const vmName = "web-" + Date.now().toString(36);
  if (demo) {
    await t.test("the deploy wizard reaches Running", async () => {
      await server.demoReady;
      await page.click("nav >> text=Deploy");
      // Zone, template, offering: the demo has one of each, picked for the user; the network is chosen.
      for (const step of ["zone", "template", "offering"]) {
        await page.locator(".choice.selected").first().waitFor();
        await page.click("#next");
      }
      await page.locator(".choice", { hasText: "demo-network" }).click();
      await page.click("#next");
      await page.fill("#vm-name", vmName);
      await page.click("#next");
      await page.locator("table.review", { hasText: vmName }).waitFor();
      await shot("04-deploy-review");
      await page.click("#launch");
      await page.locator("#deploy-status.ok").waitFor({ timeout: 180000 });
      assert.match(await page.locator("#deploy-status").innerText(), /running/i);
      await shot("05-deploy-running");
    });
  }

  await t.test("the instances list renders, with server-side paging and search", async () => {
    await page.click("nav >> text=Instances");
    await page.locator("table.vm-table").waitFor();
    await page.locator("table.vm-table:not(.loading)").waitFor();
    assert.match(await page.locator(".pager").innerText(), /Previous\s+Page 1 of \d+\s+Next/);
    if (demo) {
      const row = page.locator("table.vm-table tbody tr", { hasText: vmName });
      await row.waitFor();
      assert.match(await row.locator(".state").innerText(), /Running/);
      await page.fill("#vm-search", "no-such-instance");
      await page.click("form.search button");
      await page.locator("table.vm-table tbody tr").first().waitFor({ state: "detached" });
      await page.fill("#vm-search", vmName);
      await page.click("form.search button");
      await row.waitFor();
    }
    await shot("06-instances");
  });

  if (demo) {
    await t.test("stop runs the job and shows its result", async () => {
      const row = page.locator("table.vm-table tbody tr", { hasText: vmName });
      await row.locator("button.act-stop").click();
      await row.locator(".job", { hasText: /Stop: (Done|Failed)/ }).waitFor({ timeout: 120000 });
      assert.match(await row.locator(".job").innerText(), /Stop: Done/);
      await row.locator(".state", { hasText: "Stopped" }).waitFor();
      await shot("07-stopped");
    });
  }

  await t.test("switching to Chinese", async () => {
    await page.selectOption(".nav .lang select", "zh");
    await page.locator("nav a[href=\"/client/instances\"]", { hasText: "实例" }).waitFor();
    assert.equal(await page.locator("#logout").innerText(), "退出");
    assert.match(await page.locator(".pager").innerText(), /第 1 页/);
    await shot("08-chinese");
    // Back to English for the rest, and the choice survives a reload.
    await page.selectOption(".nav .lang select", "en");
  });

  await t.test("branding.json sets the title and colours", async () => {
    fs.writeFileSync(
      path.join(dataDir, "branding.json"),
      JSON.stringify({
        product_name: "Acme Cloud",
        colors: { primary: "#c0392b", nav_background: "#102030" },
        footer: "Acme Corp",
        links: [{ label: "Help", url: "https://example.invalid/help" }],
      }),
    );
    await page.reload();
    await page.locator("#logout").waitFor();
    await page.waitForFunction(() => document.title === "Acme Cloud");
    const nav = await page.locator("header.nav").evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.equal(nav, "rgb(16, 32, 48)");
    const primary = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue("--primary").trim());
    assert.equal(primary, "#c0392b");
    assert.equal(await page.locator(".brand .product").innerText(), "Acme Cloud");
    assert.match(await page.locator("footer").innerText(), /Acme Corp/);
    await shot("09-branded");
  });

  await t.test("log out", async () => {
    await page.click("#logout");
    await page.locator("#username").waitFor();
    await shot("10-logged-out");
    assert.deepEqual(consoleErrors, []);
  });
});

test("a generated first password must be changed before anything else", { timeout: 120000 }, async (t) => {
  const dataDir = path.join(run, "data-first-password");
  const server = await startServer(dataDir, { password: null });
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await stopServer(server, dataDir);
  });
  const generated = fs.readFileSync(path.join(dataDir, "admin-password"), "utf8").trim();
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${server.base}/client/instances`);
  await helpers.logIn(page, "admin", generated);
  await page.locator("#change-password").waitFor();
  // No page is reachable before the change.
  assert.equal(await page.locator("table.vm-table").count(), 0);
  await page.fill("#new-password", "first-choice-1");
  await page.fill("#new-password-again", "something-else");
  await page.click("#change-password button[type=submit]");
  await page.locator("#change-password .error", { hasText: "differ" }).waitFor();
  await page.screenshot({ path: path.join(shots, "11-change-password.png") });
  await page.fill("#new-password-again", "first-choice-1");
  await page.click("#change-password button[type=submit]");
  await page.locator("table.vm-table").waitFor();
  await page.click("#logout");
  await helpers.logIn(page, "admin", "first-choice-1");
  await page.locator("table.vm-table").waitFor();
  assert.equal(await page.locator("#change-password").count(), 0);
});
