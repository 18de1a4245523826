// The operator's pages in a real browser against a bare server (no --demo): the zone wizard
// on the Simulator with a failing step retried, the infrastructure views, a template
// registered from a URL served by this test and watched until Ready, and forms refusing bad
// input with the API's message beside the field while nothing is created.
//
//   NODE_PATH=~/.cache/wasmstack/node/node_modules node --test tests/console/

"use strict";

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const h = require("./helpers.cjs");

const PASSWORD = "infra-" + Math.random().toString(36).slice(2);
const { run, shots } = h.makeRun("wasmstack-console-infra-");

/** Serves one file over HTTP on a free port, slowly (ten pieces half a second apart) so that
 *  the download's progress can be seen; resolves with { url, close }. */
function serveFile(file) {
  const server = http.createServer(async (req, res) => {
    const body = fs.readFileSync(file);
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": body.length });
    const piece = Math.ceil(body.length / 10);
    for (let at = 0; at < body.length; at += piece) {
      if (!res.write(body.subarray(at, at + piece))) await new Promise((r) => res.once("drain", r));
      await new Promise((r) => setTimeout(r, 500));
    }
    res.end();
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}/${path.basename(file)}`, close: () => server.close() });
    });
  });
}

test("zone wizard, infrastructure, templates and forms", { timeout: 600000 }, async (t) => {
  assert.ok(fs.existsSync(h.BIN), `no server binary at ${h.BIN} (run scripts/build.sh)`);
  assert.ok(fs.existsSync(path.join(h.WEB_DIR, "index.html")), `no console in ${h.WEB_DIR} (run scripts/build.sh)`);
  // The primary pool and the image store live in one folder granted to the local driver.
  const store = path.join(run, "store");
  fs.mkdirSync(path.join(store, "primary"), { recursive: true });
  fs.mkdirSync(path.join(store, "images"));
  // The template's HTTP server (serveFile) is on 127.0.0.1, which downloads reach only where allowed.
  const grants =
    `[plugin.kvm]\nlibvirt = ["test:///default"]\ntimeout-ms = 20000\n\n` +
    `[plugin.local]\nimages = ["file://${store}"]\n\n` +
    `[downloads]\nallowed-internal-sites = ["127.0.0.1/32"]\n`;
  const dataDir = path.join(run, "data");
  const server = await h.startServer(run, dataDir, { grants, password: PASSWORD });
  const image = path.join(run, "small.qcow2");
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "64M"]);
  const files = await serveFile(image);
  const browser = await h.launchBrowser();
  t.after(async () => {
    files.close();
    await browser.close();
    await h.stopServer(server, dataDir);
  });
  const api = await h.apiSession(server.base, "admin", PASSWORD);
  const count = async (command, object, params = {}) => ((await api(command, params))[object] || []).length;
  const { page, shot, pageErrors } = await h.openPage(browser, shots, 1280, 900);

  await page.goto(`${server.base}/client/`);
  await h.logIn(page, "admin", PASSWORD);
  await page.locator("#logout").waitFor();

  await t.test("the zone wizard: a bad CIDR is refused beside its field, nothing is made", async () => {
    await page.click("nav >> text=Add zone");
    await page.locator("#zw-launch").waitFor();
    await page.fill("#zw-name", "zone-web");
    await page.fill("#zw-guestcidraddress", "10.1.1.0/33");
    await page.fill("#zw-poolurl", `file://${path.join(store, "primary")}`);
    await page.fill("#zw-storeurl", `file://${path.join(store, "images")}`);
    // The host URL is one the KVM driver is not granted: that step fails later.
    await page.fill("#zw-url", "test:///not-granted");
    await page.click("#zw-launch");
    const fieldError = page.locator("label:has(#zw-guestcidraddress) .field-error");
    await fieldError.filter({ hasText: /\S/ }).waitFor();
    assert.match(await fieldError.innerText(), /guestcidraddress.*10\.1\.1\.0\/33/);
    assert.match(await page.locator("li[data-step=zone] .zw-error").innerText(), /10\.1\.1\.0\/33/);
    assert.equal(await count("listZones", "zone"), 0);
    await shot("infra-01-wizard-bad-cidr");
  });

  await t.test("the zone wizard: a failing host step is retried, earlier objects kept", async () => {
    await page.fill("#zw-guestcidraddress", "10.1.1.0/24");
    await page.click("li[data-step=zone] .zw-retry");
    await page.locator("li[data-step=host].failed").waitFor({ timeout: 60000 });
    assert.match(await page.locator("li[data-step=host] .zw-error").innerText(), /not granted/);
    for (const step of ["zone", "pod", "network", "cluster"]) {
      assert.equal(await page.locator(`li[data-step=${step}]`).getAttribute("class"), "done");
    }
    await shot("infra-02-wizard-host-failed");
    await page.fill("#zw-url", "test:///default");
    await page.click("li[data-step=host] .zw-retry");
    await page.locator("#zw-ready").waitFor({ timeout: 120000 });
    for (const step of ["host", "primary", "secondary", "launch"]) {
      assert.equal(await page.locator(`li[data-step=${step}]`).getAttribute("class"), "done");
    }
    await shot("infra-03-wizard-done");
    // One of each: the retries made nothing twice.
    const zones = (await api("listZones")).zone;
    assert.equal(zones.length, 1);
    assert.equal(zones[0].allocationstate, "Enabled");
    assert.equal(await count("listPods", "pod"), 1);
    assert.equal(await count("listClusters", "cluster"), 1);
    assert.equal(await count("listHosts", "host"), 1);
    assert.equal(await count("listPhysicalNetworks", "physicalnetwork"), 1);
    assert.equal(await count("listNetworks", "network", { listall: "true" }), 1);
    assert.equal(await count("listStoragePools", "storagepool"), 1);
    assert.equal(await count("listImageStores", "imagestore"), 1);
  });

  await t.test("the infrastructure views list what the wizard made", async () => {
    await page.click("nav >> text=Infrastructure");
    await page.locator("#zones tr[data-name=zone-web]").waitFor();
    await page.click("#tab-hosts");
    const host = page.locator("#hosts tbody tr").first();
    await host.waitFor();
    assert.match(await host.innerText(), /Up/);
    assert.match(await host.locator(".col-memory").innerText(), /GiB/);
    await shot("infra-04-hosts");
    await page.click("#tab-pools");
    await page.locator("#pools tr[data-name=primary-1]").waitFor();
    await page.click("#tab-stores");
    await page.locator("#stores tr[data-name=images-1]").waitFor();
    assert.match(await page.locator(".pager").innerText(), /Page 1 of 1/);
    await shot("infra-05-stores");
  });

  await t.test("template forms refuse an empty name and a bad URL, creating nothing", async () => {
    await page.click("nav >> text=Templates");
    await page.locator("form#register").waitFor();
    await page.fill("#tpl-url", files.url);
    await page.click("form#register button[type=submit]");
    const nameError = page.locator("label:has(#tpl-name) .field-error");
    await nameError.filter({ hasText: /\S/ }).waitFor();
    assert.match(await nameError.innerText(), /name/i);
    await page.fill("#tpl-name", "web-template");
    await page.fill("#tpl-url", "not-a-url");
    await page.click("form#register button[type=submit]");
    const urlError = page.locator("label:has(#tpl-url) .field-error");
    await urlError.filter({ hasText: /not-a-url/ }).waitFor();
    assert.equal(await nameError.innerText(), "");
    assert.equal(await count("listTemplates", "template", { templatefilter: "all", listall: "true" }), 0);
    await shot("infra-06-template-bad-url");
  });

  await t.test("a template registered from a URL downloads until Ready", async () => {
    await page.fill("#tpl-url", files.url);
    await page.click("form#register button[type=submit]");
    const row = page.locator("#templates tr[data-name=web-template]");
    await row.waitFor();
    // While it downloads, the status is the server's own ("42% Downloaded"), re-read every 2 s.
    await row.locator(".tpl-status", { hasText: /Download/ }).waitFor({ timeout: 30000 });
    await shot("infra-07-template-downloading");
    await row.locator(".tpl-status", { hasText: "Ready" }).waitFor({ timeout: 120000 });
    const listed = (await api("listTemplates", { templatefilter: "all", listall: "true" })).template;
    assert.equal(listed.length, 1);
    assert.equal(listed[0].isready, true);
    await shot("infra-08-template-ready");
  });

  await t.test("ISOs have their own list; a template is deleted", async () => {
    await page.click("#tab-isos");
    await page.locator("#isos .empty").waitFor();
    await page.click("#tab-templates");
    const row = page.locator("#templates tr[data-name=web-template]");
    page.once("dialog", (d) => d.accept());
    await row.locator("button.act-delete").click();
    await row.waitFor({ state: "detached", timeout: 60000 });
    assert.equal(await count("listTemplates", "template", { templatefilter: "all", listall: "true" }), 0);
  });

  await t.test("networks: a bad netmask is refused beside its field; create and delete", async () => {
    await page.click("nav >> text=Networks");
    await page.locator("#networks tbody tr").first().waitFor();
    const before = await count("listNetworks", "network", { listall: "true" });
    await page.locator("#net-networkofferingid option", { hasText: "DefaultIsolatedNetworkOfferingWithSourceNatService" }).waitFor({ state: "attached" });
    await page.selectOption("#net-networkofferingid", { label: "DefaultIsolatedNetworkOfferingWithSourceNatService" });
    await page.fill("#net-name", "web-net");
    await page.fill("#net-gateway", "10.9.0.1");
    await page.fill("#net-netmask", "255.255.0.300");
    await page.click("form#create-network button[type=submit]");
    const maskError = page.locator("label:has(#net-netmask) .field-error");
    await maskError.filter({ hasText: /\S/ }).waitFor();
    assert.match(await maskError.innerText(), /255\.255\.0\.300/);
    assert.equal(await count("listNetworks", "network", { listall: "true" }), before);
    await shot("infra-09-network-bad-netmask");
    await page.fill("#net-gateway", "");
    await page.fill("#net-netmask", "");
    await page.click("form#create-network button[type=submit]");
    const row = page.locator("#networks tr[data-name=web-net]");
    await row.waitFor();
    page.once("dialog", (d) => d.accept());
    await row.locator("button.act-delete").click();
    await row.waitFor({ state: "detached", timeout: 60000 });
    assert.equal(await count("listNetworks", "network", { listall: "true" }), before);
  });

  await t.test("offerings: an empty name is refused; a compute offering is created", async () => {
    await page.click("nav >> text=Offerings");
    await page.locator("form#so").waitFor();
    await page.click("form#so button[type=submit]");
    const nameError = page.locator("label:has(#so-name) .field-error");
    await nameError.filter({ hasText: /\S/ }).waitFor();
    assert.equal(await count("listServiceOfferings", "serviceoffering"), 0);
    await page.fill("#so-name", "web-small");
    await page.click("form#so button[type=submit]");
    await page.locator("#service-offerings tr[data-name=web-small]").waitFor();
    await page.fill("#do-name", "web-disk");
    await page.click("form#do button[type=submit]");
    await page.locator("#disk-offerings tr[data-name=web-disk]").waitFor();
    await shot("infra-10-offerings");
  });

  await t.test("the pages speak Chinese too", async () => {
    await page.selectOption(".nav .lang select", "zh");
    await page.locator("nav a[href=\"/client/zone-wizard\"]", { hasText: "添加区域" }).waitFor();
    await page.click("nav a[href=\"/client/infra\"]");
    await page.locator("#tab-hosts", { hasText: "主机" }).waitFor();
    await shot("infra-11-chinese");
    await page.selectOption(".nav .lang select", "en");
    assert.deepEqual(pageErrors, []);
  });
});
