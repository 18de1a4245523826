// The console's admin pages in headless Chromium against `wasmstack serve --demo`: accounts
// and users (create, keys, disable/enable, password), Chinese on that page, a volume attached
// from the instances page, and the events page filtered. Screenshots go to the run's folder.
//
//   NODE_PATH=~/.cache/wasmstack/node/node_modules node --test tests/console/

"use strict";

const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const h = require("./helpers.cjs");

const PASSWORD = "admin-" + Math.random().toString(36).slice(2);
const { run, shots } = h.makeRun("wasmstack-admin-");

/** Calls the API from the page with its session (the console's own login); polls async jobs. */
function api(page, command, params = {}) {
  return page.evaluate(
    async ([command, params]) => {
      const post = async (p) => {
        const body = new URLSearchParams({ ...p, response: "json", sessionkey: sessionStorage.getItem("wasmstack.sessionkey") });
        const r = await fetch("/client/api", { method: "POST", body });
        const j = await r.json();
        const payload = Object.values(j)[0];
        if (payload.errortext) throw new Error(`${p.command}: ${payload.errortext}`);
        return payload;
      };
      let reply = await post({ command, ...params });
      if (reply.jobid && command !== "queryAsyncJobResult") {
        for (;;) {
          const job = await post({ command: "queryAsyncJobResult", jobid: reply.jobid });
          if (job.jobstatus === 1) return job.jobresult;
          if (job.jobstatus === 2) throw new Error(`${command}: ${JSON.stringify(job.jobresult)}`);
          await new Promise((r) => setTimeout(r, 300));
        }
      }
      return reply;
    },
    [command, params],
  );
}

test("admin pages", { timeout: 600000 }, async (t) => {
  assert.ok(fs.existsSync(h.BIN), `no server binary at ${h.BIN} (run scripts/build.sh)`);
  if (!h.supportsDemo()) {
    t.skip("this server has no --demo");
    return;
  }
  const dataDir = path.join(run, "data");
  const server = await h.startServer(run, dataDir, { demo: true, password: PASSWORD });
  const browser = await h.launchBrowser();
  t.after(async () => {
    await browser.close();
    await h.stopServer(server, dataDir);
  });
  const { page, shot, pageErrors } = await h.openPage(browser, shots, 1280, 900);
  page.on("dialog", (d) => d.accept());
  const status = page.locator("#acct-status");

  await page.goto(`${server.base}/client/`);
  await h.logIn(page, "admin", PASSWORD);
  await page.locator("section.dashboard").waitFor();

  const account = "acct-" + Date.now().toString(36);
  const user2 = account + "-dev";
  let keys;

  await t.test("create an account", async () => {
    await page.click("nav >> text=Accounts");
    await page.locator("table.acct-table:not(.loading)").waitFor();
    await page.click("#add-account");
    await page.fill("#acct-username", account);
    await page.fill("#acct-password", "pw-" + account);
    await page.fill("#acct-email", `${account}@example.invalid`);
    await page.fill("#acct-firstname", "Ada");
    await page.fill("#acct-lastname", "Lovelace");
    await page.click("#account-form button[type=submit]");
    await status.filter({ hasText: /Add account: (done|failed)/ }).waitFor();
    assert.match(await status.innerText(), /Add account: done/);
    const row = page.locator("table.acct-table tbody tr", { hasText: account });
    await row.waitFor();
    assert.match(await row.locator(".state").innerText(), /Enabled/);
    await shot("a01-account-created");
  });

  await t.test("add a user and generate its keys", async () => {
    const row = page.locator("table.acct-table tbody tr", { hasText: account });
    await row.locator("button.act-users").click();
    await page.locator("#users-panel table.user-table tbody tr", { hasText: account }).first().waitFor();
    await page.click("#add-user");
    await page.fill("#user-username", user2);
    await page.fill("#user-password", "pw-" + user2);
    await page.fill("#user-email", `${user2}@example.invalid`);
    await page.fill("#user-firstname", "Grace");
    await page.fill("#user-lastname", "Hopper");
    await page.click("#user-form button[type=submit]");
    const urow = page.locator("#users-panel table.user-table tbody tr", { hasText: user2 });
    await urow.waitFor();
    await urow.locator("button.act-keys").click();
    await page.locator("#user-keys #secretkey").filter({ hasText: /\S/ }).waitFor();
    keys = {
      api: (await page.locator("#user-keys #apikey").innerText()).trim(),
      secret: (await page.locator("#user-keys #secretkey").innerText()).trim(),
    };
    assert.ok(keys.api.length > 20 && keys.secret.length > 20, JSON.stringify(keys));
    await urow.locator("code.apikey", { hasText: keys.api }).waitFor();
    await shot("a02-user-keys");
    // The keys shown work: a signed request made with them is that user's.
    const r = await h.signedCall(server.base, keys.api, keys.secret, "listUsers", { username: user2 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const users = r.body.listusersresponse.user;
    assert.equal(users.length, 1);
    assert.equal(users[0].username, user2);
    assert.equal(users[0].apikey, keys.api);
  });

  await t.test("disable and enable the user, change its password", async () => {
    const urow = page.locator("#users-panel table.user-table tbody tr", { hasText: user2 });
    await urow.locator("button.act-disable").click();
    await urow.locator(".state", { hasText: "Disabled" }).waitFor({ timeout: 60000 });
    const refused = await h.signedCall(server.base, keys.api, keys.secret, "listUsers", { username: user2 });
    assert.notEqual(refused.status, 200, "a disabled user's keys still work");
    await shot("a03-user-disabled");
    await urow.locator("button.act-enable").click();
    await urow.locator(".state", { hasText: "Enabled" }).waitFor();
    await urow.locator("button.act-password").click();
    await page.fill("#user-new-password", "new-pw-" + user2);
    await page.click("#password-form button[type=submit]");
    await status.filter({ hasText: /Change password: done/ }).waitFor();
    const login = await fetch(`${server.base}/client/api`, {
      method: "POST",
      body: new URLSearchParams({ command: "login", username: user2, password: "new-pw-" + user2, response: "json" }),
    });
    assert.equal(login.status, 200, "the new password does not log in");
  });

  await t.test("the accounts page in Chinese", async () => {
    await page.selectOption(".nav .lang select", "zh");
    await page.locator("section.accounts h1", { hasText: "账户" }).waitFor();
    const urow = page.locator("#users-panel table.user-table tbody tr", { hasText: user2 });
    assert.match(await urow.locator("button.act-keys").innerText(), /生成密钥/);
    assert.match(await urow.locator(".state").innerText(), /已启用/);
    await shot("a04-accounts-chinese");
    await page.selectOption(".nav .lang select", "en");
    await page.locator("section.accounts h1", { hasText: "Accounts" }).waitFor();
  });

  await t.test("disable and enable the account", async () => {
    const row = page.locator("table.acct-table tbody tr", { hasText: account });
    await row.locator("button.act-disable").click();
    await row.locator(".state", { hasText: "Disabled" }).waitFor({ timeout: 60000 });
    await row.locator("button.act-enable").click();
    await row.locator(".state", { hasText: "Enabled" }).waitFor();
  });

  const vmName = "adm-" + Date.now().toString(36);
  await t.test("attach and detach a volume from the instances page", async () => {
    await server.demoReady;
    const zone = (await api(page, "listZones")).zone[0];
    const template = (await api(page, "listTemplates", { templatefilter: "executable", zoneid: zone.id })).template[0];
    const offering = (await api(page, "listServiceOfferings")).serviceoffering[0];
    const network = (await api(page, "listNetworks", { zoneid: zone.id })).network.find((n) => n.name === "demo-network");
    await api(page, "deployVirtualMachine", {
      zoneid: zone.id,
      templateid: template.id,
      serviceofferingid: offering.id,
      networkids: network.id,
      name: vmName,
    });
    const disk = await api(page, "createDiskOffering", { name: "adm-disk", displaytext: "adm-disk", disksize: "1" });
    const volName = vmName + "-data";
    await api(page, "createVolume", { name: volName, zoneid: zone.id, diskofferingid: disk.diskoffering.id });

    await page.click("nav >> text=Instances");
    await page.fill("#vm-search", vmName);
    await page.click("form.search button");
    const row = page.locator("table.vm-table tbody tr", { hasText: vmName });
    await row.waitFor();
    await row.locator("button.act-storage").click();
    const panel = page.locator("#storage-panel");
    await panel.locator("#volume-pick option", { hasText: volName }).waitFor({ state: "attached" });
    await page.selectOption("#volume-pick", { label: volName });
    await page.click("#attach-volume");
    await row.locator(".job", { hasText: /Attach volume: (Done|Failed)/ }).waitFor({ timeout: 120000 });
    assert.match(await row.locator(".job").innerText(), /Attach volume: Done/);
    await panel.locator("ul.attached li", { hasText: volName }).waitFor();
    await shot("a05-volume-attached");
    await panel.locator("ul.attached li", { hasText: volName }).locator("button").click();
    await row.locator(".job", { hasText: /Detach volume: (Done|Failed)/ }).waitFor({ timeout: 120000 });
    assert.match(await row.locator(".job").innerText(), /Detach volume: Done/);
    await panel.locator("ul.attached li", { hasText: volName }).waitFor({ state: "detached" });
  });

  await t.test("Console opens the VM's console page in a new tab", async () => {
    const row = page.locator("table.vm-table tbody tr", { hasText: vmName });
    const [tab] = await Promise.all([page.waitForEvent("popup"), row.locator("button.act-console").click()]);
    // The tab opens at once (popup blockers) and goes to the console page once the API answers;
    // where the VM's driver has no display to give, the tab closes and the row says why.
    const outcome = await Promise.race([
      tab.waitForURL(/\/client\/console\.html\?token=/).then(
        () => "opened",
        () => new Promise(() => {}),
      ),
      row.locator(".job", { hasText: "Console: Failed" }).waitFor().then(() => "refused"),
    ]);
    if (outcome === "refused") console.log(`# console refused: ${await row.locator(".job").innerText()}`);
    if (!tab.isClosed()) await tab.close();
  });

  await t.test("the events page, filtered", async () => {
    await page.click("nav >> text=Events");
    await page.locator("table.event-table:not(.loading)").waitFor();
    await page.locator("table.event-table tbody tr").first().waitFor();
    await page.fill("#ev-type", "VOLUME.ATTACH");
    await page.click("#event-filters button[type=submit]");
    await page.locator("table.event-table:not(.loading)").waitFor();
    const types = await page.locator("table.event-table tbody td.type").allInnerTexts();
    assert.ok(types.length > 0, "no VOLUME.ATTACH event");
    assert.ok(types.every((x) => x === "VOLUME.ATTACH"), types.join(","));
    // A date range that ends before today shows nothing.
    await page.fill("#ev-to", "2001-01-01");
    await page.click("#event-filters button[type=submit]");
    await page.locator("section.events p.muted", { hasText: "No events." }).waitFor();
    await page.click("#event-filters button[type=button]");
    await page.locator("table.event-table tbody tr").first().waitFor();
    await shot("a06-events");
  });

  await t.test("the dashboard: capacity, alerts, jobs, recent events", async () => {
    await page.click("nav >> text=Dashboard");
    const zone = page.locator("table.capacity tbody tr", { hasText: "Demo" });
    await zone.waitFor({ timeout: 10000 }).catch(async (e) => {
      await shot("a07-dashboard-failed");
      throw e;
    });
    // listCapacity's figures: what is allocated of the demo host's CPU and memory, the pool's use.
    const cells = await zone.locator("td").allInnerTexts();
    assert.match(cells[1], /^\d+ MHz \/ [1-9]\d* MHz \(\d+%\)$/, cells.join(" | "));
    assert.match(cells[2], /^[\d.]+ (B|KiB|MiB|GiB) \/ [\d.]+ (MiB|GiB|TiB) \(\d+%\)$/, cells.join(" | "));
    assert.match(cells[3], /%\)/);
    await page.locator("#alerts").waitFor();
    await page.locator("#running-jobs").waitFor();
    await page.locator("#recent-events li").first().waitFor();
    await shot("a07-dashboard");
  });

  await t.test("the plugins page lists kvm and local", async () => {
    await page.click("nav >> text=Plugins");
    const kvm = page.locator("table.plugin-table tbody tr[data-name=kvm]");
    await kvm.waitFor();
    const cells = await kvm.locator("td").allInnerTexts();
    assert.equal(cells[2], "hypervisor");
    assert.equal(cells[3], "Loaded");
    assert.match(cells[4], /libvirt/i, "kvm asks for libvirt");
    const local = page.locator("table.plugin-table tbody tr[data-name=local]");
    assert.equal(await local.locator("td").nth(2).innerText(), "storage");
    await shot("a08-plugins");
  });

  await t.test("no page errors", async () => {
    assert.deepEqual(pageErrors, []);
  });
});
