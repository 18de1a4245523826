// Driver settings forms rendered from describe()'s config-schema: the zone wizard shows the
// KVM driver's settings for the host and, once a storage driver is chosen, that driver's for
// the primary storage, and so do the infrastructure page's forms that add a host or a
// primary storage pool. The driver is dirpool, the folder-backed driver the driver kit test
// (tests/all/driver_kit.rs) builds from `wasmstack plugins new`: the console knows nothing
// of it. A bad value comes back from the API beside its field and nothing is made; a good
// one reaches the driver (the pool's size is the quota it was given).
//
//   NODE_PATH=~/.cache/wasmstack/node/node_modules node --test tests/console/driver_config.test.cjs

"use strict";

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const h = require("./helpers.cjs");

const PASSWORD = "drivers-" + Math.random().toString(36).slice(2);
const { run, shots } = h.makeRun("wasmstack-console-drivers-");

/** The dirpool driver, built by its Rust test when this run has not built it yet. */
function dirpoolWasm() {
  const wasm = path.join(path.dirname(path.dirname(h.BIN)), "wasm32-wasip2", "release", "dirpool.wasm");
  if (!fs.existsSync(wasm)) {
    const test = "driver_kit::an_authors_storage_driver_passes_check_and_serves_a_running_server";
    const r = spawnSync("cargo", ["test", "--release", "-p", "wasmstack", "--test", "all", test], { stdio: "inherit" });
    assert.equal(r.status, 0, "building dirpool through its Rust test");
  }
  assert.ok(fs.existsSync(wasm), `no dirpool driver at ${wasm}`);
  return wasm;
}

test("driver settings forms from config-schema", { timeout: 600000 }, async (t) => {
  assert.ok(fs.existsSync(h.BIN), `no server binary at ${h.BIN} (run scripts/build.sh)`);
  assert.ok(fs.existsSync(path.join(h.WEB_DIR, "index.html")), `no console in ${h.WEB_DIR} (run scripts/build.sh)`);
  const wasm = dirpoolWasm();
  const store = path.join(run, "store");
  fs.mkdirSync(path.join(store, "primary"), { recursive: true });
  fs.mkdirSync(path.join(store, "images"));
  const grants =
    `[plugin.kvm]\nlibvirt = ["test:///default"]\ntimeout-ms = 20000\n\n` +
    `[plugin.local]\nimages = ["file://${store}"]\n\n[plugin.dirpool]\nimages = ["file://${store}"]\n`;
  const dataDir = path.join(run, "data");
  fs.mkdirSync(path.join(dataDir, "plugins"), { recursive: true });
  fs.copyFileSync(wasm, path.join(dataDir, "plugins", "dirpool.wasm"));
  const server = await h.startServer(run, dataDir, { grants, password: PASSWORD });
  const browser = await h.launchBrowser();
  t.after(async () => {
    await browser.close();
    await h.stopServer(server, dataDir);
  });
  const api = await h.apiSession(server.base, "admin", PASSWORD);
  const { page, shot, pageErrors } = await h.openPage(browser, shots, 1280, 1200);

  await page.goto(`${server.base}/client/`);
  await h.logIn(page, "admin", PASSWORD);
  await page.locator("#logout").waitFor();

  await t.test("the host step shows the KVM driver's settings, defaults filled", async () => {
    await page.click("nav >> text=Add zone");
    const accel = page.locator("#zw-host-detail-accel");
    await accel.waitFor();
    assert.equal(await accel.inputValue(), "auto");
    assert.deepEqual(await accel.locator("option").allInnerTexts(), ["auto", "kvm", "tcg"]);
    const label = page.locator("label:has(#zw-host-detail-accel)");
    assert.match(await label.innerText(), /Acceleration/);
    assert.match(await label.locator("small").innerText(), /TCG/);
  });

  await t.test("choosing a dropped-in storage driver renders its schema", async () => {
    // No settings until a driver is chosen: the URL's scheme picks a built-in one.
    assert.equal(await page.locator("#zw-pool-settings").count(), 0);
    assert.deepEqual((await page.locator("#zw-poolprovider option").evaluateAll((o) => o.map((x) => x.value))).sort(), [
      "",
      "dirpool",
      "local",
    ]);
    await page.selectOption("#zw-poolprovider", "dirpool");
    const quota = page.locator("#zw-pool-detail-quota-mib");
    await quota.waitFor();
    assert.equal(await quota.getAttribute("type"), "number");
    assert.equal(await quota.getAttribute("min"), "1");
    assert.equal(await quota.inputValue(), "", "no default: left empty");
    const quotaLabel = page.locator("label:has(#zw-pool-detail-quota-mib)");
    assert.match(await quotaLabel.innerText(), /Quota \(MiB\)/);
    assert.equal(await quotaLabel.locator("abbr.required").count(), 1, "required is marked");
    assert.match(await quotaLabel.locator("small").innerText(), /The space the pool offers/);
    const layout = page.locator("#zw-pool-detail-layout");
    assert.equal(await layout.inputValue(), "nested", "the default is chosen");
    assert.deepEqual(await layout.locator("option").allInnerTexts(), ["nested", "flat"]);
    assert.equal(await page.locator("label:has(#zw-pool-detail-layout) abbr.required").count(), 0);
    await shot("drivers-01-settings");
  });

  await t.test("a bad setting is refused beside its field, and no pool is made", async () => {
    await page.fill("#zw-name", "zone-drivers");
    await page.fill("#zw-poolurl", `file://${path.join(store, "primary")}`);
    await page.fill("#zw-storeurl", `file://${path.join(store, "images")}`);
    await page.fill("#zw-pool-detail-quota-mib", "0");
    await page.click("#zw-launch");
    await page.locator("li[data-step=primary].failed").waitFor({ timeout: 120000 });
    const fieldError = page.locator("label:has(#zw-pool-detail-quota-mib) .field-error");
    assert.equal(await fieldError.innerText(), "Invalid detail quota-mib=0: must be at least 1");
    assert.equal(await page.locator("label:has(#zw-pool-detail-layout) .field-error").innerText(), "");
    assert.equal(await page.locator("li[data-step=host]").getAttribute("class"), "done");
    assert.equal(((await api("listStoragePools")).storagepool || []).length, 0);
    await shot("drivers-02-bad-quota");
  });

  await t.test("fixed and retried, the driver gets the settings", async () => {
    await page.fill("#zw-pool-detail-quota-mib", "2048");
    await page.selectOption("#zw-pool-detail-layout", "flat");
    await page.click("li[data-step=primary] .zw-retry");
    await page.locator("#zw-ready").waitFor({ timeout: 120000 });
    assert.equal(await page.locator("label:has(#zw-pool-detail-quota-mib) .field-error").innerText(), "");
    const [pool] = (await api("listStoragePools")).storagepool;
    assert.equal(pool.disksizetotal, 2048 * 1024 * 1024, "the driver reports the quota it was given");
    // The flat layout keeps volumes in the pool's own folder: no vols/ was made.
    assert.ok(!fs.existsSync(path.join(store, "primary", "vols")));
    const [host] = (await api("listHosts")).host;
    assert.equal(host.state, "Up", "the KVM driver's default setting left the host URL as it was");
    await shot("drivers-03-done");
  });

  await t.test("the infrastructure page adds a pool on the driver, settings refused beside their field", async () => {
    await page.click('nav a[href="/client/infra"]');
    await page.click("#tab-pools");
    await page.locator("#add-pool").waitFor();
    assert.equal(await page.locator("#pool-settings").count(), 0);
    await page.selectOption("#pool-provider", "dirpool");
    await page.locator("#pool-detail-quota-mib").waitFor();
    assert.equal(await page.locator("#pool-detail-layout").inputValue(), "nested");
    await page.fill("#pool-name", "pool-2");
    await page.fill("#pool-url", `file://${path.join(store, "p2")}`);
    await page.fill("#pool-detail-quota-mib", "0");
    await page.click("#add-pool button[type=submit]");
    const fieldError = page.locator("label:has(#pool-detail-quota-mib) .field-error");
    await fieldError.filter({ hasText: /\S/ }).waitFor({ timeout: 10000 }).catch(async (e) => {
      await shot("drivers-04-infra-failed");
      throw e;
    });
    assert.equal(await fieldError.innerText(), "Invalid detail quota-mib=0: must be at least 1");
    assert.equal((await api("listStoragePools")).storagepool.length, 1, "nothing was made");
    await shot("drivers-04-infra-bad-quota");
    await page.fill("#pool-detail-quota-mib", "512");
    await page.click("#add-pool button[type=submit]");
    await page.locator("#pools tr[data-name=pool-2]").waitFor();
    assert.equal(await fieldError.innerText(), "");
    const pool = (await api("listStoragePools", { name: "pool-2" })).storagepool[0];
    assert.equal(pool.disksizetotal, 512 * 1024 * 1024);
    assert.ok(fs.existsSync(path.join(store, "p2", "vols")), "the nested layout (the default) made vols/");
  });

  await t.test("the hosts tab adds a host with the KVM driver's settings", async () => {
    await page.click("#tab-hosts");
    const accel = page.locator("#host-detail-accel");
    await accel.waitFor();
    assert.equal(await accel.inputValue(), "auto");
    await page.fill("#host-url", "test:///default");
    await page.fill("#host-password", "x");
    await page.click("#add-host button[type=submit]");
    await page.locator("#add-host .ok", { hasText: "test:///default" }).waitFor();
    assert.equal((await api("listHosts")).host.length, 2);
    await shot("drivers-05-infra-host");
  });

  await t.test("the settings form speaks Chinese too", async () => {
    await page.click('nav a[href="/client/zone-wizard"]');
    await page.selectOption(".nav .lang select", "zh");
    await page.locator("#zw-host-settings h4", { hasText: "驱动设置" }).waitFor();
    await page.selectOption(".nav .lang select", "en");
    assert.deepEqual(pageErrors, []);
  });
});
