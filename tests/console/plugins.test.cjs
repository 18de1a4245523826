// The console's plugins page in headless Chromium against `wasmstack serve --demo`: a driver
// uploaded through the page (file input, then the signed upload), a file the loader refuses,
// a capability granted and revoked (and saved in the server configuration), and a rescan.
// Screenshots go to the run's folder.
//
//   NODE_PATH=~/.cache/wasmstack/node/node_modules node --test tests/console/plugins.test.cjs

"use strict";

const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const h = require("./helpers.cjs");

const PASSWORD = "admin-" + Math.random().toString(36).slice(2);
const { run, shots } = h.makeRun("wasmstack-plugins-");
const BUILT = path.join(path.dirname(path.dirname(h.BIN)), "wasm32-wasip2", "release");

test("plugins page", { timeout: 300000 }, async (t) => {
  assert.ok(fs.existsSync(h.BIN), `no server binary at ${h.BIN} (run scripts/build.sh)`);
  if (!h.supportsDemo()) {
    t.skip("this server has no --demo");
    return;
  }
  const dataDir = path.join(run, "data");
  const pluginDir = path.join(dataDir, "plugins");
  const config = path.join(dataDir, "wasmstack.toml");
  const server = await h.startServer(run, dataDir, { demo: true, password: PASSWORD });
  const browser = await h.launchBrowser();
  t.after(async () => {
    await browser.close();
    await h.stopServer(server, dataDir);
  });
  const { page, shot, pageErrors } = await h.openPage(browser, shots, 1400, 900);
  const status = page.locator("#plugins-status");
  const row = (name) => page.locator(`table.plugin-table tbody tr[data-name=${name}]`);

  await page.goto(`${server.base}/client/`);
  await h.logIn(page, "admin", PASSWORD);
  await page.locator("section.dashboard").waitFor();
  await page.click("nav >> text=Plugins");
  await row("kvm").waitFor();

  await t.test("upload a driver through the page", async () => {
    assert.equal(await row("flat").count(), 0);
    await page.setInputFiles("#plugin-file", path.join(BUILT, "flat.wasm"));
    await page.click("#plugin-upload-button");
    await page.locator("#plugins-status.ok", { hasText: "Loaded flat" }).waitFor();
    await row("flat").waitFor();
    const cells = await row("flat").locator("td").allInnerTexts();
    assert.equal(cells[2], "network");
    assert.equal(cells[3], "Loaded");
    assert.ok(fs.existsSync(path.join(pluginDir, "flat.wasm")));
    await shot("p01-uploaded");
  });

  await t.test("a file the loader refuses shows its message and is not kept", async () => {
    const junk = path.join(run, "junk.wasm");
    fs.writeFileSync(junk, "this is not WebAssembly");
    await page.setInputFiles("#plugin-file", junk);
    await page.click("#plugin-upload-button");
    await page.locator("#plugins-status.error", { hasText: "not a WebAssembly file" }).waitFor();
    assert.match(await status.innerText(), /^The plugin junk\.wasm was refused/);
    assert.deepEqual(fs.readdirSync(pluginDir).filter((f) => f.startsWith("junk") || f.startsWith(".upload")), []);
    await shot("p02-refused");
  });

  await t.test("grant and revoke a capability", async () => {
    const grant = row("flat").locator("ul.missing button.grant").first();
    const cap = await grant.getAttribute("data-cap");
    assert.match(cap, /^netdev /);
    await grant.click();
    await page.locator("#plugins-status.ok", { hasText: `Granted ${cap} to flat` }).waitFor();
    const revoke = row("flat").locator(`ul.granted button.revoke[data-cap="${cap}"]`);
    await revoke.waitFor();
    assert.equal(await row("flat").locator(`ul.missing button[data-cap="${cap}"]`).count(), 0);
    assert.match(fs.readFileSync(config, "utf8"), /\[plugin\.flat\]\s*netdev = \["/);
    assert.match(fs.readFileSync(config, "utf8"), /# Written by `wasmstack serve --demo`/, "the file's comments stay");
    await shot("p03-granted");

    await revoke.click();
    await page.locator("#plugins-status.ok", { hasText: `Revoked ${cap} from flat` }).waitFor();
    await row("flat").locator(`ul.missing button.grant[data-cap="${cap}"]`).waitFor();
    assert.doesNotMatch(fs.readFileSync(config, "utf8"), /netdev = \[/);
    await shot("p04-revoked");
  });

  await t.test("a reload rescans the folder", async () => {
    fs.rmSync(path.join(pluginDir, "flat.wasm"));
    await page.click("#plugins-reload");
    await page.locator("#plugins-status.ok", { hasText: "Rescanned the plugin folder" }).waitFor();
    await row("flat").waitFor({ state: "detached" });
    await row("kvm").waitFor();
    await shot("p05-reloaded");
  });

  await t.test("no page errors", async () => {
    assert.deepEqual(pageErrors, []);
  });
});
