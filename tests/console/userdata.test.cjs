// Stored userdata in a real browser, on the demo cloud (the Simulator: the same API and
// database, no data plane): userdata typed as plain text on the User data page is registered
// base64-encoded with its declared parameters (the API decodes it to the same UTF-8 text), a
// repeated name and a reserved parameter name are refused with the server's words beside
// their fields, nothing added; userdata is linked to the demo template with the APPEND policy
// (the template shows it through listTemplates and on the Templates page), the deploy wizard
// deploys with another stored userdata and a value for its variable (the VM gets the linked
// text followed by the chosen one); a delete while linked or used shows the server's refusal,
// nothing removed; unlinking clears the template, and the userdata then deletes; the labels
// in Chinese.
//
//   NODE_PATH=~/.cache/wasmstack/node/node_modules node --test tests/console/userdata.test.cjs

"use strict";

const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const h = require("./helpers.cjs");

const PASSWORD = "userdata-" + Math.random().toString(36).slice(2);
const { run, shots } = h.makeRun("wasmstack-console-userdata-");

const b64 = (text) => Buffer.from(text, "utf8").toString("base64");
const unb64 = (data) => Buffer.from(data, "base64").toString("utf8");

test("stored userdata in the console", { timeout: 600000 }, async (t) => {
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
  // What the page posted to deployVirtualMachine, to see the variables' values it sent.
  const deployForms = [];
  page.on("request", (req) => {
    const body = req.postData() || "";
    if (req.url().endsWith("/client/api") && /command=deployVirtualMachine/.test(body)) {
      deployForms.push(new URLSearchParams(body));
    }
  });
  const api = await h.apiSession(server.base, "admin", PASSWORD);
  const userData = async (params = {}) => (await api("listUserData", params)).userdata || [];
  const [template] = (await api("listTemplates", { templatefilter: "all", name: "Demo Linux" })).template;
  const templateNow = async () => (await api("listTemplates", { templatefilter: "all", id: template.id })).template[0];
  const LINK_FIELDS = ["userdataid", "userdataname", "userdatapolicy", "userdataparams"];
  const linkOf = (tpl) => LINK_FIELDS.map((f) => tpl[f]);

  const stamp = Date.now().toString(36);
  const setup = `setup-${stamp}`;
  const base = `base-${stamp}`;
  const setupScript = "#!/bin/sh\necho 'héllo, 世界 {{ ds.meta_data.role }}' > /tmp/marker\n";
  const baseScript = "#!/bin/sh\necho base\n";
  const row = (name) => page.locator(`#userdata tbody tr[data-name="${name}"]`);
  const ids = {};

  await page.goto(`${server.base}/client/`);
  await h.logIn(page, "admin", PASSWORD);
  await page.locator("#logout").waitFor();

  await t.test("register userdata typed as text, with its parameters", async () => {
    await page.click("nav >> text=User data");
    await page.locator("section.userdata h1", { hasText: "User data" }).waitFor();
    for (const [name, script, params] of [
      [setup, setupScript, "role"],
      [base, baseScript, ""],
    ]) {
      await page.fill("#ud-register-name", name);
      await page.fill("#ud-register-userdata", script);
      await page.fill("#ud-register-params", params);
      await page.click("#ud-register button[type=submit]");
      await row(name).waitFor();
      const [listed] = await userData({ name });
      assert.ok(listed, `listUserData has ${name}`);
      assert.equal(listed.userdata, b64(script), "sent as the text's UTF-8 bytes in base64");
      assert.equal(unb64(listed.userdata), script);
      assert.equal(listed.params || "", params);
      ids[name] = listed.id;
      assert.equal(await row(name).locator("td.ud-id").innerText(), listed.id);
      assert.equal(await row(name).locator("td.ud-params").innerText(), params);
      assert.equal(await row(name).locator("td.ud-account").innerText(), "admin");
      await page.locator("#ud-register .ok", { hasText: `Created ${name}.` }).waitFor();
    }
    assert.equal(await page.inputValue("#ud-register-userdata"), "", "the form empties once registered");
    assert.equal(await page.inputValue("#ud-register-params"), "");
    await shot("userdata-01-registered");
  });

  await t.test("a taken name and a reserved parameter are refused beside their fields", async () => {
    const before = (await userData()).length;
    await page.fill("#ud-register-name", setup);
    await page.fill("#ud-register-userdata", "#!/bin/sh\ntrue\n");
    await page.click("#ud-register button[type=submit]");
    await page
      .locator("label:has(#ud-register-name) .field-error", {
        hasText: `A userdata with name ${setup} already exists for this account.`,
      })
      .waitFor();

    await page.fill("#ud-register-name", `meta-${stamp}`);
    await page.fill("#ud-register-params", "role,public-keys");
    await page.click("#ud-register button[type=submit]");
    await page
      .locator("label:has(#ud-register-params) .field-error", {
        hasText: "Params passed here have a few virtual router metadata file names [public-keys]",
      })
      .waitFor();
    await shot("userdata-02-refused");
    assert.equal((await userData()).length, before, "nothing added");
    assert.equal((await userData({ name: `meta-${stamp}` })).length, 0);
    assert.equal(await row(`meta-${stamp}`).count(), 0);
    await page.fill("#ud-register-name", "");
    await page.fill("#ud-register-userdata", "");
    await page.fill("#ud-register-params", "");
  });

  await t.test("link userdata to a template, APPEND; shown by listTemplates and the Templates page", async () => {
    assert.deepEqual(linkOf(await templateNow()), [undefined, undefined, undefined, undefined], "nothing linked");
    await page.locator(`#ud-link-template option[value="${template.id}"]`).waitFor({ state: "attached" });
    await page.locator(`#ud-link-userdata option[value="${ids[base]}"]`).waitFor({ state: "attached" });
    await page.selectOption("#ud-link-template", template.id);
    assert.ok(await page.locator("#ud-link-policy").isDisabled(), "no policy without userdata");
    await page.selectOption("#ud-link-userdata", ids[base]);
    await page.selectOption("#ud-link-policy", "APPEND");
    await page.click("#ud-link button[type=submit]");
    await page.locator("#ud-link-done", { hasText: `${base} is linked to Demo Linux (Append).` }).waitFor();
    assert.deepEqual(linkOf(await templateNow()), [ids[base], base, "APPEND", undefined], "no params declared");
    await shot("userdata-03-linked");

    await page.click("nav >> text=Templates");
    const tplRow = page.locator(`#templates tbody tr[data-id="${template.id}"]`);
    await tplRow.locator("td.tpl-userdata", { hasText: `${base} (Append)` }).waitFor();
  });

  const vmName = `ud-${stamp}`;

  await t.test("deploy with stored userdata and its variable; the linked text comes first", async () => {
    await page.click("nav >> text=Deploy");
    for (let i = 0; i < 3; i++) {
      await page.locator(".choice.selected").first().waitFor();
      await page.click("#next");
    }
    await page.locator(".choice", { hasText: "demo-network" }).click();
    await page.click("#next");
    await page.fill("#vm-name", vmName);
    await page.locator(`#vm-userdataid option[value="${ids[setup]}"]`).waitFor({ state: "attached" });
    await page.selectOption("#vm-userdataid", ids[setup]);
    await page.fill("#vm-ud-param-role", "web");
    assert.ok(await page.locator("#vm-userdata").isDisabled(), "no typed userdata beside stored userdata");
    await shot("userdata-04-deploy-access");
    await page.click("#next");
    assert.equal(await page.locator("#review-userdata").innerText(), `Stored: ${setup}`);
    await page.click("#launch");
    await page.locator("#deploy-status.ok").waitFor({ timeout: 180000 });

    const [vm] = (await api("listVirtualMachines", { name: vmName })).virtualmachine;
    assert.equal(vm.userdataid, ids[setup], "the VM has the chosen userdata");
    assert.equal(vm.userdataname, setup);
    const ud = await api("getVirtualMachineUserData", { virtualmachineid: vm.id });
    assert.equal(unb64(ud.virtualmachineuserdata.userdata), baseScript + setupScript, "APPEND: the template's first");
    assert.equal(deployForms.length, 1);
    const form = deployForms[0];
    assert.equal(form.get("userdataid"), ids[setup]);
    assert.equal(form.get("userdata"), null, "no inline userdata sent");
    assert.deepEqual(
      [form.get("userdatadetails[0].key"), form.get("userdatadetails[0].value")],
      ["role", "web"],
      "the variable's value",
    );
  });

  await t.test("deletes refused while linked or used; unlink, then delete", async () => {
    await page.click("nav >> text=User data");
    await row(base).waitFor();
    await row(base).locator(".act-delete").click();
    await row(base)
      .locator(".job", { hasText: `Userdata ${base} cannot be removed as it is linked to active template/templates` })
      .waitFor();
    await row(setup).locator(".act-delete").click();
    await row(setup)
      .locator(".job", { hasText: `Userdata ${setup} cannot be removed as it is being used by some instances` })
      .waitFor();
    await shot("userdata-05-delete-refused");
    assert.equal((await userData()).length, 2, "both kept");

    await page.selectOption("#ud-link-template", template.id);
    await page.selectOption("#ud-link-userdata", "");
    await page.click("#ud-link button[type=submit]");
    await page.locator("#ud-link-done", { hasText: "Demo Linux has no user data now." }).waitFor();
    assert.deepEqual(linkOf(await templateNow()), [undefined, undefined, undefined, undefined], "unlinked");

    await row(base).locator(".act-delete").click();
    await row(base).waitFor({ state: "detached" });
    assert.equal((await userData({ name: base })).length, 0, "gone from the API");
    assert.equal((await userData({ name: setup })).length, 1, "the used one stays");

    await page.click("nav >> text=Templates");
    const tplRow = page.locator(`#templates tbody tr[data-id="${template.id}"]`);
    await tplRow.waitFor();
    assert.equal(await tplRow.locator("td.tpl-userdata").innerText(), "", "the Templates page shows no link");
  });

  await t.test("linked with variables: listTemplates shows the params too", async () => {
    await api("linkUserDataToTemplate", { templateid: template.id, userdataid: ids[setup] });
    assert.deepEqual(linkOf(await templateNow()), [ids[setup], setup, "ALLOWOVERRIDE", "role"]);
    await page.click("nav >> text=Dashboard");
    await page.click("nav >> text=Templates");
    const tplRow = page.locator(`#templates tbody tr[data-id="${template.id}"]`);
    await tplRow.locator("td.tpl-userdata", { hasText: `${setup} (Allow override)` }).waitFor();
  });

  await t.test("in Chinese", async () => {
    await page.selectOption(".lang select", "zh");
    await page.locator("nav a", { hasText: "用户数据" }).waitFor();
    await page.click("nav >> text=用户数据");
    await page.locator("section.userdata h1", { hasText: "用户数据" }).waitFor();
    assert.equal(await page.locator("#ud-register h2").innerText(), "注册用户数据");
    assert.equal(await page.locator("#ud-link h2").innerText(), "关联到模板");
    assert.deepEqual(await page.locator("#userdata thead th").allInnerTexts(), ["名称", "ID", "参数", "账户", "操作"]);
    assert.deepEqual(await page.locator("#ud-link-policy option").allInnerTexts(), ["允许覆盖", "追加", "禁止覆盖"]);
    await row(setup).locator(".act-delete", { hasText: "删除" }).waitFor();
    await shot("userdata-06-zh");
    await page.click("nav >> text=模板");
    await page
      .locator(`#templates tbody tr[data-id="${template.id}"] td.tpl-userdata`, { hasText: `${setup} (允许覆盖)` })
      .waitFor();
    await page.selectOption(".lang select", "en");
    await page.locator("nav a", { hasText: "User data" }).waitFor();
  });

  assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
});
