// The volumes page and the instances page's ISO action in a real browser, on the demo cloud
// (the Simulator): a data volume refused for an empty name (the API's message beside the
// field, nothing made), then created, attached to an instance, snapshotted, resized,
// reverted to its snapshot, the snapshot deleted, the volume detached and deleted; and an
// ISO attached to an instance from the instances page and reported on the instance. What
// the page shows is checked against the API.
//
//   NODE_PATH=~/.cache/wasmstack/node/node_modules node --test tests/console/storage.test.cjs

"use strict";

const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const h = require("./helpers.cjs");

const PASSWORD = "storage-" + Math.random().toString(36).slice(2);
const { run, shots } = h.makeRun("wasmstack-console-storage-");

/** Serves `body` as /tiny.iso on a free port; resolves with { url, close }. */
function serveIso(body) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": body.length });
    res.end(body);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}/tiny.iso`, close: () => server.close() });
    });
  });
}

/** An ISO image: the tiny guest's when it has been built, else a blank one (the Simulator boots nothing). */
function isoBytes() {
  const guest = process.env.WASMSTACK_GUEST_DIR || path.join(require("node:os").homedir(), ".cache", "wasmstack", "guest");
  const file = path.join(guest, "tiny.iso");
  return fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(64 * 2048);
}

test("volumes, snapshots and ISOs in the console", { timeout: 600000 }, async (t) => {
  assert.ok(fs.existsSync(h.BIN), `no server binary at ${h.BIN} (run scripts/build.sh)`);
  assert.ok(fs.existsSync(path.join(h.WEB_DIR, "index.html")), `no console in ${h.WEB_DIR} (run scripts/build.sh)`);
  assert.ok(h.supportsDemo(), "the server has no --demo");
  const dataDir = path.join(run, "data");
  // The ISO's HTTP server is on 127.0.0.1, which downloads reach only where the operator allows:
  // the demo's first start writes the configuration and sets the cloud up, then the server
  // starts again with the allowance added (the demo cloud is left as it is).
  const first = await h.startServer(run, dataDir, { demo: true, password: PASSWORD });
  await first.demoReady;
  await h.stopProcess(first);
  fs.appendFileSync(path.join(dataDir, "wasmstack.toml"), `\n[downloads]\nallowed-internal-sites = ["127.0.0.1/32"]\n`);
  const server = await h.startServer(run, dataDir, { demo: true, password: PASSWORD });
  const iso = await serveIso(isoBytes());
  const browser = await h.launchBrowser();
  t.after(async () => {
    iso.close();
    await browser.close();
    await h.stopServer(server, dataDir);
  });
  const { page, shot, pageErrors } = await h.openPage(browser, shots, 1280, 900);
  page.on("dialog", (d) => d.accept());

  /** One API call with the page's own session, to check from outside the page what exists. */
  const api = (command, params = {}) =>
    page.evaluate(
      async ({ command, params }) => {
        const body = new URLSearchParams({ ...params, command, response: "json" });
        body.set("sessionkey", sessionStorage.getItem("wasmstack.sessionkey"));
        const res = await fetch("/client/api", { method: "POST", body });
        const payload = Object.values(await res.json())[0];
        if (payload.errortext) throw new Error(`${command}: ${payload.errortext}`);
        return payload;
      },
      { command, params },
    );
  const waitJob = async (jobid) => {
    for (let i = 0; i < 600; i++) {
      const r = await api("queryAsyncJobResult", { jobid });
      if (r.jobstatus === 1) return r.jobresult;
      if (r.jobstatus === 2) throw new Error(`job failed: ${JSON.stringify(r.jobresult)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error("the job did not end");
  };
  const dataVolumes = async () => (await api("listVolumes", { type: "DATADISK", listall: "true" })).volume || [];

  await page.goto(`${server.base}/client/`);
  await h.logIn(page, "admin", PASSWORD);
  await page.locator("#logout").waitFor();

  // An instance to attach to, and an ISO, made through the API.
  const [zone] = (await api("listZones")).zone;
  const [offering] = (await api("listServiceOfferings", { name: "Small" })).serviceoffering;
  const [template] = (await api("listTemplates", { templatefilter: "all", name: "Demo Linux" })).template;
  const [network] = (await api("listNetworks", { listall: "true", name: "demo-network" })).network;
  const vmName = "vol-vm-" + Date.now().toString(36);
  const deployed = await api("deployVirtualMachine", {
    zoneid: zone.id,
    serviceofferingid: offering.id,
    templateid: template.id,
    networkids: network.id,
    name: vmName,
  });
  const vm = (await waitJob(deployed.jobid)).virtualmachine;
  assert.equal(vm.state, "Running");
  const isoName = "tiny-iso-" + Date.now().toString(36);
  const [registered] = (
    await api("registerIso", { name: isoName, displaytext: "A tiny ISO", url: iso.url, zoneid: zone.id, bootable: "true" })
  ).iso;
  for (let i = 0; !((await api("listIsos", { isofilter: "all", id: registered.id })).iso[0].isready); i++) {
    assert.ok(i < 300, "the ISO did not download");
    await new Promise((r) => setTimeout(r, 200));
  }

  await t.test("an empty volume name is refused beside the field; nothing is created", async () => {
    await page.click("nav >> text=Volumes");
    await page.locator("#volumes table.list-table:not(.loading)").waitFor();
    // The demo instance's root disk is listed, with its type and instance.
    const root = page.locator("#volumes tbody tr", { hasText: vmName });
    await root.waitFor();
    assert.match(await root.innerText(), /ROOT/);
    await page.fill("#vol-name", "   ");
    await page.fill("#vol-size", "1");
    await page.click("#create-volume button[type=submit]");
    const fieldError = page.locator("label:has(#vol-name) .field-error");
    await fieldError.filter({ hasText: /\S/ }).waitFor();
    assert.match(await fieldError.innerText(), /name/i);
    assert.deepEqual(await dataVolumes(), []);
    await shot("storage-01-empty-name");
  });

  const volName = "data-" + Date.now().toString(36);
  await t.test("create a data volume: it is listed", async () => {
    await page.fill("#vol-name", volName);
    await page.click("#create-volume button[type=submit]");
    await page.locator("#create-volume .ok", { hasText: `Created ${volName}` }).waitFor({ timeout: 60000 });
    assert.equal(await page.locator("label:has(#vol-name) .field-error").innerText(), "");
    const row = page.locator(`#volumes tr[data-name="${volName}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /DATADISK/);
    assert.match(await row.innerText(), /1\.0 GiB/);
    const [made] = await dataVolumes();
    assert.equal(made.name, volName);
    // The keyword search finds it, and only it.
    await page.fill("#vol-search", volName);
    await page.click("section.volumes form.search button");
    await page.locator("#volumes tbody tr", { hasText: vmName }).waitFor({ state: "detached" });
    assert.equal(await page.locator("#volumes tbody tr").count(), 1);
    await shot("storage-02-created");
  });

  await t.test("attach it to the instance", async () => {
    const row = page.locator(`#volumes tr[data-name="${volName}"]`);
    await row.locator(".act-manage").click();
    await page.locator("#volume-panel").waitFor();
    await page.selectOption("#vol-vm-pick", vm.id);
    await page.click("#vol-attach");
    await row.locator(".job-line", { hasText: /Attach: (Done|Failed)/ }).waitFor({ timeout: 120000 });
    assert.match(await row.locator(".job-line").innerText(), /Attach: Done/);
    await page.locator("#volume-panel .attached-to", { hasText: vmName }).waitFor();
    await page.locator(`#volumes tr[data-name="${volName}"] td.vol-instance`, { hasText: vmName }).waitFor();
    const [attached] = await dataVolumes();
    assert.equal(attached.virtualmachineid, vm.id);
    await shot("storage-03-attached");
  });

  const snapName = "snap-" + Date.now().toString(36);
  await t.test("take a snapshot: it is listed under the volume", async () => {
    await page.fill("#snap-name", snapName);
    await page.click("#snap-take");
    const snapRow = page.locator(`#snapshots tr[data-name="${snapName}"]`);
    await snapRow.waitFor({ timeout: 120000 });
    assert.match(await page.locator("#volume-panel .job-line").innerText(), /Take snapshot: Done/);
    const { snapshot } = await api("listSnapshots", { volumeid: (await dataVolumes())[0].id });
    assert.deepEqual(
      snapshot.map((s) => s.name),
      [snapName],
    );
    await shot("storage-04-snapshot");
  });

  await t.test("resize it: no size is refused beside the field, then it grows", async () => {
    const row = page.locator(`#volumes tr[data-name="${volName}"]`);
    await page.click("#vol-resize");
    const fieldError = page.locator("label:has(#resize-size) .field-error");
    await fieldError.filter({ hasText: /\S/ }).waitFor();
    assert.match(await fieldError.innerText(), /size/i);
    assert.equal((await dataVolumes())[0].size, 1 << 30);
    await page.fill("#resize-size", "2");
    await page.click("#vol-resize");
    await row.locator(".job-line", { hasText: /Resize: (Done|Failed)/ }).waitFor({ timeout: 120000 });
    assert.match(await row.locator(".job-line").innerText(), /Resize: Done/);
    await row.locator("td.col-size", { hasText: "2.0 GiB" }).waitFor();
    assert.equal((await dataVolumes())[0].size, 2 * (1 << 30));
    assert.equal(await fieldError.innerText(), "");
    await shot("storage-05-resized");
  });

  await t.test("revert to the snapshot: refused while the VM runs, then the volume is its size again", async () => {
    const row = page.locator(`#volumes tr[data-name="${volName}"]`);
    await page.locator(`#snapshots tr[data-name="${snapName}"] .act-revert`).click();
    await row.locator(".job-line", { hasText: /Revert: (Done|Failed)/ }).waitFor({ timeout: 120000 });
    assert.match(await row.locator(".job-line").innerText(), /Revert: Failed .*stop it before reverting/);
    assert.equal((await dataVolumes())[0].size, 2 * (1 << 30));
    await waitJob((await api("stopVirtualMachine", { id: vm.id })).jobid);
    await page.locator(`#snapshots tr[data-name="${snapName}"] .act-revert`).click();
    await row.locator(".job-line", { hasText: /Revert: Done/ }).waitFor({ timeout: 120000 });
    await row.locator("td.col-size", { hasText: "1.0 GiB" }).waitFor();
    assert.equal((await dataVolumes())[0].size, 1 << 30);
    await shot("storage-06-reverted");
    await waitJob((await api("startVirtualMachine", { id: vm.id })).jobid);
  });

  await t.test("delete the snapshot", async () => {
    await page.locator(`#snapshots tr[data-name="${snapName}"] .act-delete`).click();
    await page.locator(`#snapshots tr[data-name="${snapName}"]`).waitFor({ state: "detached", timeout: 120000 });
    const left = await api("listSnapshots", { volumeid: (await dataVolumes())[0].id });
    assert.equal((left.snapshot || []).length, 0);
    await page.locator("#snapshots .empty").waitFor();
    await shot("storage-07-snapshot-deleted");
  });

  await t.test("detach and delete the volume", async () => {
    const row = page.locator(`#volumes tr[data-name="${volName}"]`);
    await page.click("#vol-detach");
    await row.locator(".job-line", { hasText: /Detach: (Done|Failed)/ }).waitFor({ timeout: 120000 });
    assert.match(await row.locator(".job-line").innerText(), /Detach: Done/);
    await page.locator("#volume-panel #vol-attach").waitFor();
    assert.equal(await row.locator("td.vol-instance").innerText(), "");
    assert.equal((await dataVolumes())[0].virtualmachineid, undefined);
    await row.locator(".act-delete").click();
    await row.waitFor({ state: "detached" });
    assert.deepEqual(await dataVolumes(), []);
    await shot("storage-08-volume-deleted");
  });

  await t.test("attach an ISO from the instances page; the instance reports it", async () => {
    await page.click("nav >> text=Instances");
    const row = page.locator("table.vm-table tbody tr", { hasText: vmName });
    await row.waitFor();
    await row.locator(".act-storage").click();
    await page.locator("#storage-panel").waitFor();
    await page.locator("#storage-panel", { hasText: "No ISO attached." }).waitFor();
    await page.selectOption("#iso-pick", registered.id);
    await page.click("#attach-iso");
    await row.locator(".job", { hasText: /Attach ISO: (Done|Failed)/ }).waitFor({ timeout: 120000 });
    assert.match(await row.locator(".job").innerText(), /Attach ISO: Done/);
    await page.locator("#storage-panel .iso-name", { hasText: isoName }).waitFor();
    await page.locator("#detach-iso").waitFor();
    const [listed] = (await api("listVirtualMachines", { id: vm.id })).virtualmachine;
    assert.equal(listed.isoid, registered.id);
    assert.equal(listed.isoname, isoName);
    await shot("storage-09-iso-attached");
  });

  await t.test("the volumes page speaks Chinese too", async () => {
    await page.selectOption(".nav .lang select", "zh");
    await page.click("nav a[href=\"/client/volumes\"]");
    await page.locator("section h1", { hasText: "卷" }).waitFor();
    await page.locator("h2", { hasText: "创建数据卷" }).waitFor();
    await shot("storage-10-chinese");
    await page.selectOption(".nav .lang select", "en");
    await page.locator("h2", { hasText: "Create a data volume" }).waitFor();
  });

  await t.test("the page raised no script errors", () => {
    assert.deepEqual(pageErrors, []);
  });
});
