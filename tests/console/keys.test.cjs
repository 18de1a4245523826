// SSH key pairs, userdata and passwords in a real browser, on the demo cloud (the Simulator:
// the same API and database, no data plane): a key pair is created on the Key pairs page and
// its private key, shown once, is a PEM whose public half has the fingerprint the API lists
// (and the one on screen), and downloads as <name>.pem; a public key made here is registered
// and a bad one refused with the server's message, nothing added; the deploy wizard deploys
// with a key pair and UTF-8 userdata, checked through the API (keypairs, the userdata decoded),
// and shows the password its job returned; on the instances page the stopped VM's SSH key is
// reset to another key pair (and a reset to a key pair deleted meanwhile shows the server's
// refusal, nothing changed) and its password reset, the new one shown as the job gave it; a
// key pair is deleted; the labels in Chinese.
//
//   NODE_PATH=~/.cache/wasmstack/node/node_modules node --test tests/console/keys.test.cjs

"use strict";

const { test } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const h = require("./helpers.cjs");

const PASSWORD = "keys-" + Math.random().toString(36).slice(2);
const { run, shots } = h.makeRun("wasmstack-console-keys-");

/** An SSH wire-format string: a 32-bit length, then the bytes. */
function sshString(buf) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(buf.length);
  return Buffer.concat([len, buf]);
}

/** An SSH mpint from big-endian unsigned bytes (a leading zero when the top bit is set). */
function sshMpint(buf) {
  let b = buf;
  while (b.length > 1 && b[0] === 0) b = b.subarray(1);
  if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return sshString(b);
}

/** The MD5 fingerprint of an OpenSSH key blob, as `ssh-keygen -E md5 -l` shows it without `MD5:`. */
function md5Fingerprint(blob) {
  return crypto.createHash("md5").update(blob).digest("hex").match(/../g).join(":");
}

/** The OpenSSH blob of an RSA public key. */
function rsaBlob(publicKey) {
  const jwk = publicKey.export({ format: "jwk" });
  const b = (s) => Buffer.from(s, "base64url");
  return Buffer.concat([sshString(Buffer.from("ssh-rsa")), sshMpint(b(jwk.e)), sshMpint(b(jwk.n))]);
}

/** A fresh ed25519 key as an OpenSSH public key line, and its fingerprint. */
function ed25519Line(comment) {
  const { publicKey } = crypto.generateKeyPairSync("ed25519");
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x, "base64url");
  const blob = Buffer.concat([sshString(Buffer.from("ssh-ed25519")), sshString(raw)]);
  return { line: `ssh-ed25519 ${blob.toString("base64")} ${comment}`, fingerprint: md5Fingerprint(blob) };
}

test("key pairs, userdata and passwords in the console", { timeout: 600000 }, async (t) => {
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
  // The results of the jobs the page polls, to compare what it shows with what the server said.
  const jobResults = [];
  page.on("response", async (res) => {
    if (!res.url().endsWith("/client/api") || res.request().method() !== "POST") return;
    if (!/command=queryAsyncJobResult/.test(res.request().postData() || "")) return;
    try {
      const body = Object.values(await res.json())[0];
      if (body.jobstatus === 1) jobResults.push(body.jobresult);
    } catch {
      // A reply that is not JSON is not a job's result.
    }
  });
  const passwordsFromJobs = () =>
    jobResults.map((r) => r && r.virtualmachine && r.virtualmachine.password).filter(Boolean);
  const api = await h.apiSession(server.base, "admin", PASSWORD);
  const keyPairs = async (params = {}) => (await api("listSSHKeyPairs", params)).sshkeypair || [];
  const vmOf = async (id) => (await api("listVirtualMachines", { id })).virtualmachine[0];
  const until = async (what, check) => {
    for (let i = 0; i < 300; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.fail(`timed out waiting for ${what}`);
  };

  const stamp = Date.now().toString(36);
  const created = `made-${stamp}`;
  const registered = `mine-${stamp}`;
  const row = (name) => page.locator(`#keypairs tbody tr[data-name="${name}"]`);

  await page.goto(`${server.base}/client/`);
  await h.logIn(page, "admin", PASSWORD);
  await page.locator("#logout").waitFor();

  await t.test("create a key pair: its private key once, a PEM of the listed key", async () => {
    await page.click("nav >> text=Key pairs");
    await page.locator("section.keypairs h1", { hasText: "SSH key pairs" }).waitFor();
    await page.fill("#kp-create-name", created);
    await page.click("#kp-create button[type=submit]");
    const box = page.locator(`#kp-private[data-name="${created}"]`);
    await box.waitFor();
    assert.match(await box.locator(".warning").innerText(), /shown only now/);
    const pem = await page.inputValue("#kp-private-key");
    assert.match(pem, /^-----BEGIN (RSA )?PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END (RSA )?PRIVATE KEY-----\n?$/);
    const privateKey = crypto.createPrivateKey(pem);
    assert.equal(privateKey.asymmetricKeyType, "rsa");
    const fingerprint = md5Fingerprint(rsaBlob(crypto.createPublicKey(privateKey)));

    const listed = await keyPairs({ name: created });
    assert.equal(listed.length, 1, "listSSHKeyPairs has the new key pair");
    assert.equal(listed[0].fingerprint, fingerprint, "the private key shown is the listed key pair's");
    assert.equal(listed[0].privatekey, undefined, "the list never has the private key");
    assert.equal(await page.locator("#kp-private-fingerprint").innerText(), fingerprint);
    await row(created).waitFor();
    assert.equal(await row(created).locator("td.kp-fingerprint").innerText(), fingerprint);
    await shot("keys-01-created");

    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#kp-download")]);
    assert.equal(download.suggestedFilename(), `${created}.pem`);
    assert.equal(fs.readFileSync(await download.path(), "utf8"), pem, "the download is the private key");

    await page.click("#kp-private-close");
    await box.waitFor({ state: "detached" });
    // Not shown again: not after closing, nor on the page opened anew.
    await page.click("nav >> text=Dashboard");
    await page.click("nav >> text=Key pairs");
    await row(created).waitFor();
    assert.equal(await page.locator("#kp-private").count(), 0);
    assert.ok(!(await page.content()).includes("PRIVATE KEY"), "the private key is gone from the page");
  });

  await t.test("register a public key; a bad one is refused, nothing added", async () => {
    const { line, fingerprint } = ed25519Line("console-test@example");
    await page.fill("#kp-register-name", registered);
    await page.fill("#kp-register-publickey", line);
    await page.click("#kp-register button[type=submit]");
    await row(registered).waitFor();
    const [listed] = await keyPairs({ name: registered });
    assert.equal(listed.fingerprint, fingerprint, "the API computed the key's MD5 fingerprint");
    assert.equal(await row(registered).locator("td.kp-fingerprint").innerText(), fingerprint);
    assert.equal(await page.inputValue("#kp-register-publickey"), "", "the form empties once registered");

    const before = (await keyPairs()).length;
    await page.fill("#kp-register-name", `bad-${stamp}`);
    await page.fill("#kp-register-publickey", "ssh-rsa this-is-not-a-key nobody@example");
    await page.click("#kp-register button[type=submit]");
    await page.locator("#kp-register [role=alert]", { hasText: "Public key is invalid" }).waitFor();
    await shot("keys-02-bad-key");
    assert.equal((await keyPairs({ name: `bad-${stamp}` })).length, 0, "the bad key is not stored");
    assert.equal((await keyPairs()).length, before, "nothing added");
    assert.equal(await row(`bad-${stamp}`).count(), 0);
  });

  // The demo template made password-enabled, so that deploys and resets make passwords.
  const [template] = (await api("listTemplates", { templatefilter: "all", name: "Demo Linux" })).template;
  await api("updateTemplate", { id: template.id, passwordenabled: "true" });
  const vmName = `keyed-${stamp}`;
  const userdata = "#!/bin/sh\necho 'héllo, 世界' > /tmp/marker\n";
  let vm;

  await t.test("deploy with a key pair and userdata; the password shown once", async () => {
    await page.click("nav >> text=Deploy");
    for (let i = 0; i < 3; i++) {
      await page.locator(".choice.selected").first().waitFor();
      await page.click("#next");
    }
    await page.locator(".choice", { hasText: "demo-network" }).click();
    await page.click("#next");
    await page.fill("#vm-name", vmName);
    await page.locator(`#vm-keypair option[value="${created}"]`).waitFor({ state: "attached" });
    await page.selectOption("#vm-keypair", created);
    await page.fill("#vm-userdata", userdata);
    await shot("keys-03-deploy-access");
    await page.click("#next");
    await page.locator("#review-keypair", { hasText: created }).waitFor();
    assert.equal(await page.locator("#review-userdata").innerText(), `${Buffer.byteLength(userdata)} bytes`);
    await page.click("#launch");
    await page.locator("#deploy-status.ok").waitFor({ timeout: 180000 });
    await shot("keys-04-deployed");

    const list = (await api("listVirtualMachines", { name: vmName })).virtualmachine || [];
    assert.equal(list.length, 1);
    vm = list[0];
    assert.equal(vm.keypairs, created, "the VM has the chosen key pair");
    assert.equal(vm.password, undefined, "the list never shows the password");
    const ud = await api("getVirtualMachineUserData", { virtualmachineid: vm.id });
    assert.equal(Buffer.from(ud.virtualmachineuserdata.userdata, "base64").toString("utf8"), userdata);

    const shown = await page.locator("#deploy-password code").innerText();
    assert.match(shown, /^[A-Za-z0-9]{8,}$/);
    assert.deepEqual(passwordsFromJobs(), [shown], "the password shown is the deploy job's");
  });

  const vmRow = () => page.locator(`table.vm-table tbody tr[data-id="${vm.id}"]`);

  await t.test("reset the SSH key of the stopped VM; a vanished key pair is refused", async () => {
    await page.click("nav >> text=Instances");
    await vmRow().waitFor();
    assert.equal(await vmRow().locator(".act-reset_key").count(), 0, "no reset while it runs");
    await vmRow().locator(".act-stop").click();
    await until("the VM to stop", async () => (await vmOf(vm.id)).state === "Stopped");
    await vmRow().locator(".act-reset_key").waitFor();

    // A key pair that is gone by the time the reset is asked: the server refuses it.
    const doomed = `gone-${stamp}`;
    await api("createSSHKeyPair", { name: doomed });
    await vmRow().locator(".act-reset_key").click();
    const panel = page.locator(`#reset-key-panel[data-id="${vm.id}"]`);
    await panel.locator("#reset-key-now", { hasText: `Key pairs now: ${created}` }).waitFor();
    await panel.locator(`#reset-key-pick option[value="${doomed}"]`).waitFor({ state: "attached" });
    await api("deleteSSHKeyPair", { name: doomed });
    await page.selectOption("#reset-key-pick", doomed);
    await page.click("#reset-key-submit");
    await panel.locator(".job-line", { hasText: "Not all specified keypairs exist" }).waitFor();
    assert.equal((await vmOf(vm.id)).keypairs, created, "a refused reset changes nothing");

    await page.selectOption("#reset-key-pick", registered);
    const before = jobResults.length;
    await page.click("#reset-key-submit");
    await panel.locator(".job-line", { hasText: "Reset SSH key: Done" }).waitFor();
    assert.equal((await vmOf(vm.id)).keypairs, registered, "the VM has the other key pair now");
    await panel.locator("#reset-key-now", { hasText: `Key pairs now: ${registered}` }).waitFor();
    // A password-enabled VM gets a new password with its new key, shown as the job gave it.
    const fresh = jobResults.slice(before).map((r) => r.virtualmachine && r.virtualmachine.password);
    assert.equal(fresh.length, 1);
    await page.locator("#vm-password code", { hasText: fresh[0] }).waitFor();
    await shot("keys-05-key-reset");
    await page.click("#vm-password-close");
    await page.locator("#vm-password").waitFor({ state: "detached" });
  });

  await t.test("reset the password of the stopped VM: the new one shown once", async () => {
    const before = jobResults.length;
    await vmRow().locator(".act-reset_password").click();
    await page.locator("#vm-password").waitFor();
    const fresh = jobResults.slice(before).map((r) => r.virtualmachine && r.virtualmachine.password);
    assert.equal(fresh.length, 1, "one reset job");
    assert.match(fresh[0], /^[A-Za-z0-9]{8,}$/);
    assert.equal(await page.locator("#vm-password code").innerText(), fresh[0]);
    assert.match(await page.locator("#vm-password h2").innerText(), new RegExp(`New password of ${vmName}`));
    assert.ok(!passwordsFromJobs().slice(0, -1).includes(fresh[0]), "a new password, not an old one");
    await shot("keys-06-password-reset");
    await page.click("#vm-password-close");
  });

  await t.test("delete a key pair", async () => {
    await page.click("nav >> text=Key pairs");
    await row(created).waitFor();
    await row(created).locator(".act-delete-keypair").click();
    await page.locator("#kp-deleted", { hasText: `Deleted ${created}.` }).waitFor();
    await row(created).waitFor({ state: "detached" });
    assert.equal((await keyPairs({ name: created })).length, 0, "gone from the API");
    assert.equal((await keyPairs({ name: registered })).length, 1, "the other one stays");
  });

  await t.test("in Chinese", async () => {
    await page.selectOption(".lang select", "zh");
    await page.locator("nav a", { hasText: "SSH 密钥对" }).waitFor();
    await page.locator("section.keypairs h1", { hasText: "SSH 密钥对" }).waitFor();
    assert.equal(await page.locator("#kp-create h2").innerText(), "创建密钥对");
    assert.equal(await page.locator("#kp-register h2").innerText(), "注册公钥");
    assert.deepEqual(await page.locator("#keypairs thead th").allInnerTexts(), ["名称", "指纹", "账户", "操作"]);
    assert.equal(await row(registered).locator(".act-delete-keypair").innerText(), "删除");
    await shot("keys-07-zh");

    await page.click("nav >> text=实例");
    await vmRow().locator(".act-reset_key", { hasText: "重置 SSH 密钥" }).waitFor();
    await vmRow().locator(".act-reset_password", { hasText: "重置密码" }).waitFor();

    await page.click("nav >> text=创建实例");
    await page.locator(".steps li", { hasText: "名称和访问" }).waitFor();
    await page.selectOption(".lang select", "en");
    await page.locator("nav a", { hasText: "Key pairs" }).waitFor();
  });

  assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
});
