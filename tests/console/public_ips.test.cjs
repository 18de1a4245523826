// A network's public IPs in a real browser, on the demo cloud (the Simulator: the same API,
// database and driver calls, no data plane): from the networks page, the demo network's
// public IPs are opened, an address acquired, and on it a firewall rule, a port forwarding
// rule and a load balancing rule with an instance are added (a bad port refused with the
// server's message, nothing made), each checked through the API as well as on screen, then
// deleted and checked gone; static NAT is enabled on a second address to an instance, then
// disabled; releasing the source NAT address shows the server's refusal; an egress rule of
// the network is added and deleted; the labels in Chinese.
//
//   NODE_PATH=~/.cache/wasmstack/node/node_modules node --test tests/console/public_ips.test.cjs

"use strict";

const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const h = require("./helpers.cjs");

const PASSWORD = "pubip-" + Math.random().toString(36).slice(2);
const { run, shots } = h.makeRun("wasmstack-console-pubip-");

test("public IPs and their rules in the console", { timeout: 600000 }, async (t) => {
  assert.ok(fs.existsSync(h.BIN), `no server binary at ${h.BIN} (run scripts/build.sh)`);
  assert.ok(fs.existsSync(path.join(h.WEB_DIR, "index.html")), `no console in ${h.WEB_DIR} (run scripts/build.sh)`);
  assert.ok(h.supportsDemo(), "the server has no --demo");
  const dataDir = path.join(run, "data");
  const server = await h.startServer(run, dataDir, { demo: true, password: PASSWORD });
  await server.demoReady;
  const browser = await h.launchBrowser();
  t.after(async () => {
    await browser.close();
    await h.stopServer(server, dataDir);
  });
  const { page, shot, pageErrors } = await h.openPage(browser, shots, 1280, 1000);
  page.on("dialog", (d) => d.accept());
  const api = await h.apiSession(server.base, "admin", PASSWORD);
  const waitJob = async (jobid) => {
    for (let i = 0; i < 600; i++) {
      const r = await api("queryAsyncJobResult", { jobid });
      if (r.jobstatus === 1) return r.jobresult;
      if (r.jobstatus === 2) throw new Error(`job failed: ${JSON.stringify(r.jobresult)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error("the job did not end");
  };

  // Two instances in the demo network: the first deploy implements it, which gives it its
  // source NAT address.
  const [zone] = (await api("listZones")).zone;
  const [offering] = (await api("listServiceOfferings", { name: "Small" })).serviceoffering;
  const [template] = (await api("listTemplates", { templatefilter: "all", name: "Demo Linux" })).template;
  const [network] = (await api("listNetworks", { listall: "true", name: "demo-network" })).network;
  const stamp = Date.now().toString(36);
  const vms = [];
  for (const name of [`web-a-${stamp}`, `web-b-${stamp}`]) {
    const deployed = await api("deployVirtualMachine", {
      zoneid: zone.id,
      serviceofferingid: offering.id,
      templateid: template.id,
      networkids: network.id,
      name,
    });
    vms.push((await waitJob(deployed.jobid)).virtualmachine);
  }
  const [vmA, vmB] = vms;
  const ips = async () =>
    (await api("listPublicIpAddresses", { associatednetworkid: network.id, listall: "true" })).publicipaddress || [];
  const [sourceNat] = await ips();
  assert.ok(sourceNat && sourceNat.issourcenat, "the demo network has its source NAT address");

  const panel = page.locator("#public-ips");
  const ipRow = (address) => page.locator("#public-ip-list tbody tr", { hasText: address });
  const acquire = async () => {
    const before = new Set((await ips()).map((ip) => ip.id));
    await page.click("#pip-acquire");
    let added = [];
    for (let i = 0; added.length === 0; i++) {
      assert.ok(i < 300, "no address acquired");
      await new Promise((r) => setTimeout(r, 200));
      added = (await ips()).filter((ip) => !before.has(ip.id));
    }
    assert.equal(added.length, 1, "one address acquired");
    const [ip] = added;
    await page.locator("#pip-acquired", { hasText: `Acquired ${ip.ipaddress}.` }).waitFor();
    await ipRow(ip.ipaddress).waitFor();
    assert.match(await ipRow(ip.ipaddress).innerText(), /Allocated/);
    return ip;
  };
  const openRules = async (ip, tab) => {
    await ipRow(ip.ipaddress).locator(".act-rules").click();
    await page.locator(`#ip-rules[data-id="${ip.id}"] h3`, { hasText: ip.ipaddress }).waitFor();
    await page.click(`#tab-${tab}`);
  };

  await page.goto(`${server.base}/client/`);
  await h.logIn(page, "admin", PASSWORD);
  await page.locator("#logout").waitFor();

  await t.test("the network's public IPs open from the networks page", async () => {
    await page.click("nav >> text=Networks");
    const row = page.locator(`#networks tr[data-id="${network.id}"]`);
    await row.waitFor();
    await row.locator(".act-ips").click();
    await panel.locator("h2", { hasText: "Public IPs of demo-network" }).waitFor();
    await ipRow(sourceNat.ipaddress).waitFor();
    const cells = await ipRow(sourceNat.ipaddress).locator("td").allInnerTexts();
    assert.equal(cells[0], sourceNat.ipaddress);
    assert.equal(cells[1], "Yes", "source NAT");
    assert.equal(cells[2], "No", "static NAT");
    await shot("pubip-01-list");
  });

  let ip;
  await t.test("acquire an address: it is listed, as the API says", async () => {
    ip = await acquire();
    assert.equal(ip.issourcenat, false);
    assert.equal((await ips()).length, 2);
  });

  await t.test("a firewall rule: a bad port is refused with the server's message, then one is added and deleted", async () => {
    await openRules(ip, "firewall");
    await page.locator("#firewall-rules table.list-table:not(.loading)").waitFor();
    await page.selectOption("#fw-protocol", "tcp");
    await page.fill("#fw-startport", "70000");
    await page.fill("#fw-endport", "70001");
    await page.click("#firewall-form button[type=submit]");
    // The server's own words, under the form (they name CloudStack's publicPort, no field here).
    await page.locator("#firewall-form .form-error", { hasText: "publicPort is an invalid value: 70000" }).waitFor();
    assert.deepEqual((await api("listFirewallRules", { ipaddressid: ip.id })).firewallrule || [], []);

    await page.fill("#fw-startport", "22");
    await page.fill("#fw-endport", "23");
    await page.fill("#fw-cidrlist", "10.0.0.0/8,192.168.0.0/16");
    await page.click("#firewall-form button[type=submit]");
    const row = page.locator("#firewall-rules tbody tr", { hasText: "22-23" });
    await row.waitFor({ timeout: 60000 });
    assert.match(await row.innerText(), /10\.0\.0\.0\/8,192\.168\.0\.0\/16/);
    const [rule, ...more] = (await api("listFirewallRules", { ipaddressid: ip.id })).firewallrule;
    assert.deepEqual(more, []);
    assert.equal(rule.protocol, "tcp");
    assert.equal(Number(rule.startport), 22);
    assert.equal(Number(rule.endport), 23);
    assert.equal(rule.cidrlist, "10.0.0.0/8,192.168.0.0/16");
    assert.equal(await row.getAttribute("data-id"), rule.id);
    await shot("pubip-02-firewall");

    await row.locator(".act-delete").click();
    await row.waitFor({ state: "detached", timeout: 60000 });
    assert.deepEqual((await api("listFirewallRules", { ipaddressid: ip.id })).firewallrule || [], []);
  });

  await t.test("a port forwarding rule to an instance of the network: added, then deleted", async () => {
    await page.click("#tab-forwarding");
    await page.locator("#forwarding-rules table.list-table:not(.loading)").waitFor();
    await page.locator(`#pf-vm option[value="${vmA.id}"]`).waitFor({ state: "attached" });
    await page.selectOption("#pf-vm", vmA.id);
    await page.fill("#pf-publicport", "8080");
    await page.fill("#pf-privateport", "80");
    await page.click("#forwarding-form button[type=submit]");
    const row = page.locator("#forwarding-rules tbody tr", { hasText: "8080" });
    await row.waitFor({ timeout: 60000 });
    assert.match(await row.innerText(), new RegExp(vmA.name));
    const [rule, ...more] = (await api("listPortForwardingRules", { ipaddressid: ip.id })).portforwardingrule;
    assert.deepEqual(more, []);
    assert.equal(rule.virtualmachineid, vmA.id);
    assert.equal(String(rule.publicport), "8080");
    assert.equal(String(rule.privateport), "80");
    assert.equal(rule.protocol, "tcp");
    await shot("pubip-03-forwarding");

    await row.locator(".act-delete").click();
    await row.waitFor({ state: "detached", timeout: 60000 });
    assert.deepEqual((await api("listPortForwardingRules", { ipaddressid: ip.id })).portforwardingrule || [], []);
  });

  await t.test("a load balancing rule: added, an instance assigned and removed, the rule deleted", async () => {
    await page.click("#tab-balancing");
    await page.locator("#balancing-rules table.list-table:not(.loading)").waitFor();
    await page.fill("#lb-name", "web-lb");
    await page.selectOption("#lb-algorithm", "leastconn");
    await page.fill("#lb-publicport", "80");
    await page.fill("#lb-privateport", "8000");
    await page.click("#balancing-form button[type=submit]");
    const row = page.locator('#balancing-rules tr[data-name="web-lb"]');
    await row.waitFor({ timeout: 60000 });
    assert.match(await row.innerText(), /leastconn/);
    assert.equal(await page.inputValue("#lb-name"), "", "the form empties once the rule is made");
    const [rule, ...more] = (await api("listLoadBalancerRules", { publicipid: ip.id })).loadbalancerrule;
    assert.deepEqual(more, []);
    assert.equal(rule.name, "web-lb");
    assert.equal(rule.algorithm, "leastconn");
    assert.equal(String(rule.publicport), "80");
    assert.equal(String(rule.privateport), "8000");

    await row.locator(".act-members").click();
    await page.locator("#balancing-members table.list-table:not(.loading)").waitFor();
    await page.locator(`#lb-vm option[value="${vmB.id}"]`).waitFor({ state: "attached" });
    await page.selectOption("#lb-vm", vmB.id);
    await page.click("#lb-assign-button");
    const member = page.locator(`#balancing-members tr[data-id="${vmB.id}"]`);
    await member.waitFor({ timeout: 60000 });
    const members = async () =>
      ((await api("listLoadBalancerRuleInstances", { id: rule.id })).loadbalancerruleinstance || []).map((v) => v.id);
    assert.deepEqual(await members(), [vmB.id]);
    await shot("pubip-04-balancing");

    await member.locator(".act-remove").click();
    await member.waitFor({ state: "detached", timeout: 60000 });
    assert.deepEqual(await members(), []);

    await row.locator(".act-delete").click();
    await row.waitFor({ state: "detached", timeout: 60000 });
    assert.deepEqual((await api("listLoadBalancerRules", { publicipid: ip.id })).loadbalancerrule || [], []);
  });

  let second;
  await t.test("static NAT on a second address: enabled to an instance, then disabled", async () => {
    second = await acquire();
    await openRules(second, "staticnat");
    await page.locator(`#nat-vm option[value="${vmB.id}"]`).waitFor({ state: "attached" });
    await page.selectOption("#nat-vm", vmB.id);
    await page.click("#nat-enable");
    await page.locator("#static-nat .mapped-to", { hasText: vmB.name }).waitFor({ timeout: 60000 });
    const [mapped] = (await api("listPublicIpAddresses", { id: second.id })).publicipaddress;
    assert.equal(mapped.isstaticnat, true);
    assert.equal(mapped.virtualmachineid, vmB.id);
    assert.match(await page.locator("#static-nat .mapped-to").innerText(), new RegExp(mapped.vmipaddress.replace(/\./g, "\\.")));
    await ipRow(second.ipaddress).filter({ hasText: vmB.name }).waitFor();
    await shot("pubip-05-static-nat");

    await page.click("#nat-disable");
    await page.locator("#nat-enable").waitFor({ timeout: 60000 });
    const [unmapped] = (await api("listPublicIpAddresses", { id: second.id })).publicipaddress;
    assert.equal(unmapped.isstaticnat, false);
  });

  await t.test("releasing the source NAT address shows the server's refusal; another is released", async () => {
    await ipRow(sourceNat.ipaddress).locator(".act-release").click();
    const line = ipRow(sourceNat.ipaddress).locator(".job-line", { hasText: "Failed" });
    await line.waitFor({ timeout: 60000 });
    assert.match(await line.innerText(), /source nat purposes and can not be disassociated/);
    assert.ok((await ips()).some((x) => x.id === sourceNat.id), "the source NAT address is kept");
    await shot("pubip-06-release-refused");

    await ipRow(second.ipaddress).locator(".act-release").click();
    await ipRow(second.ipaddress).waitFor({ state: "detached", timeout: 60000 });
    assert.deepEqual(
      (await ips()).map((x) => x.id).sort(),
      [sourceNat.id, ip.id].sort(),
    );
  });

  await t.test("the network's egress rules: one added, then deleted", async () => {
    await page.click("#tab-egress");
    await page.locator("#egress-rules table.list-table:not(.loading)").waitFor();
    const egress = async () => (await api("listEgressFirewallRules", { networkid: network.id })).firewallrule || [];
    const before = await egress();
    // "all" has no ports to give.
    await page.selectOption("#eg-protocol", "all");
    await page.locator("#eg-startport").waitFor({ state: "detached" });
    await page.selectOption("#eg-protocol", "tcp");
    await page.fill("#eg-startport", "443");
    await page.fill("#eg-cidrlist", network.cidr);
    await page.fill("#eg-destcidrlist", "203.0.113.0/24");
    await page.click("#egress-form button[type=submit]");
    const row = page.locator("#egress-rules tbody tr", { hasText: "203.0.113.0/24" });
    await row.waitFor({ timeout: 60000 });
    const added = (await egress()).filter((r) => !before.some((b) => b.id === r.id));
    assert.equal(added.length, 1);
    const [rule] = added;
    assert.equal(rule.protocol, "tcp");
    assert.equal(Number(rule.startport), 443);
    assert.equal(rule.cidrlist, network.cidr);
    assert.equal(rule.destcidrlist, "203.0.113.0/24");
    assert.equal(await row.getAttribute("data-id"), rule.id);
    await shot("pubip-07-egress");

    await row.locator(".act-delete").click();
    await row.waitFor({ state: "detached", timeout: 60000 });
    assert.ok(!(await egress()).some((r) => r.id === rule.id), "the egress rule is gone");
    await page.click("#tab-addresses");
    await ipRow(sourceNat.ipaddress).waitFor();
  });

  await t.test("in Chinese", async () => {
    await page.selectOption(".nav .lang select", "zh");
    await page.locator("#pip-acquire", { hasText: "获取 IP" }).waitFor();
    await panel.locator("h2", { hasText: "demo-network 的公网 IP" }).waitFor();
    const headers = await page.locator("#public-ip-list thead th").allInnerTexts();
    assert.deepEqual(headers, ["IP 地址", "源 NAT", "静态 NAT", "状态", "操作"]);
    assert.equal(await ipRow(sourceNat.ipaddress).locator(".act-release").innerText(), "释放");
    await openRules(ip, "firewall");
    assert.equal(await page.locator("#tab-forwarding").innerText(), "端口转发");
    assert.equal(await page.locator("#tab-balancing").innerText(), "负载均衡");
    assert.equal(await page.locator("#firewall-form button[type=submit]").innerText(), "添加规则");
    assert.equal(await page.locator("#tab-egress").innerText(), "出口规则");
    await shot("pubip-08-zh");
    await page.selectOption(".nav .lang select", "en");
  });

  assert.deepEqual(pageErrors, []);
});
