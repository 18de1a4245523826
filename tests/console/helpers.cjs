// What the console's browser tests share: where the binaries are, starting and stopping
// `wasmstack serve`, launching Debian's chromium, and calling the API from the test itself.

"use strict";

const { spawn, spawnSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), ".cache", "wasmstack", "target");
const BIN = process.env.WASMSTACK_BIN || path.join(targetDir, "release", "wasmstack");
const WEB_DIR = process.env.WASMSTACK_WEB_DIR || path.join(path.dirname(BIN), "web");
const PLUGINS = path.join(targetDir, "wasm32-wasip2", "release");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

// The KVM driver granted libvirt's test driver, as tests/clients does, for runs without --demo.
const GRANTS = `[plugin.kvm]\nlibvirt = ["test:///default"]\ntimeout-ms = 20000\n`;

/** A fresh folder for one test file's run (logs, screenshots), printed so it can be found. */
function makeRun(prefix) {
  const run = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const shots = path.join(run, "screenshots");
  fs.mkdirSync(shots);
  console.log(`# console test folder: ${run}`);
  return { run, shots };
}

function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/** Stops a server this test started, then drops its data folder (the logs and screenshots stay). */
async function stopServer(server, dataDir) {
  await stopProcess(server);
  fs.rmSync(dataDir, { recursive: true, force: true });
}

/** Stops the server and keeps its data folder, to start it again. */
async function stopProcess(server) {
  if (server.proc.exitCode === null) {
    const exited = new Promise((resolve) => server.proc.once("exit", resolve));
    server.proc.kill("SIGTERM");
    await exited;
  }
}

function supportsDemo() {
  const help = spawnSync(BIN, ["serve", "--help"], { encoding: "utf8" });
  return /--demo/.test(help.stdout || "");
}

/** Starts `wasmstack serve` on a free port; resolves with { proc, base, demoReady }.
 *  Without `password` the server generates the admin's first one (in <data>/admin-password);
 *  `grants` replaces the drivers' configuration written for runs without --demo. */
function startServer(run, dataDir, { demo = false, password, grants = GRANTS } = {}) {
  const plugins = path.join(dataDir, "plugins");
  fs.mkdirSync(plugins, { recursive: true });
  for (const name of ["kvm.wasm", "local.wasm", "vlan.wasm"]) {
    if (fs.existsSync(path.join(PLUGINS, name))) fs.copyFileSync(path.join(PLUGINS, name), path.join(plugins, name));
  }
  if (!demo) fs.writeFileSync(path.join(dataDir, "wasmstack.toml"), grants);
  const args = ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--web-dir", WEB_DIR];
  if (demo) args.push("--demo");
  const out = fs.openSync(path.join(run, `${path.basename(dataDir)}.stderr.log`), "a");
  const env = { ...process.env };
  delete env.WASMSTACK_ADMIN_PASSWORD;
  if (password) env.WASMSTACK_ADMIN_PASSWORD = password;
  const proc = spawn(BIN, args, { env, stdio: ["ignore", "pipe", out] });
  let stdout = "";
  let onDemo = null;
  const demoReady = new Promise((resolve, reject) => {
    onDemo = { resolve, reject };
  });
  demoReady.catch(() => {});
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not listen within 30 s:\n${stdout}`)), 30000);
    proc.stdout.on("data", (chunk) => {
      stdout += chunk;
      fs.appendFileSync(path.join(run, `${path.basename(dataDir)}.stdout.log`), chunk);
      const m = stdout.match(/wasmstack API listening on (http:\/\/\S+)\/client\/api/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, base: m[1], demoReady });
      }
      if (/Demo cloud ready/.test(stdout)) onDemo.resolve();
    });
    proc.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (signal === "SIGTERM") return;
      reject(new Error(`the server exited with ${code}:\n${stdout}`));
      onDemo.reject(new Error(`the server exited with ${code}`));
    });
  });
}

/** java.net.URLEncoder's encoding with spaces as %20, as the server re-encodes values to check. */
function encode(v) {
  return encodeURIComponent(v).replace(/[!'()~]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

/** One API call signed with an API key and secret key (no session), as API clients make it. */
async function signedCall(base, apiKey, secretKey, command, params = {}) {
  const all = { ...params, command, apikey: apiKey, response: "json" };
  const names = Object.keys(all).sort();
  const query = names.map((n) => `${n}=${encode(String(all[n]))}`).join("&");
  const signature = crypto.createHmac("sha1", secretKey).update(query.toLowerCase()).digest("base64");
  const res = await fetch(`${base}/client/api?${query}&signature=${encodeURIComponent(signature)}`);
  return { status: res.status, body: await res.json() };
}

/** A new page of `browser`; `shot(name)` saves a full-page screenshot into `shots`, and
 *  `pageErrors` collects the page's uncaught errors (tests assert it stays empty). */
async function openPage(browser, shots, width = 1280, height = 900) {
  const page = await browser.newPage({ viewport: { width, height } });
  const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  return { page, shot, pageErrors };
}

/** Fills the console's login form and submits it; the caller waits for what should follow. */
async function logIn(page, username, password) {
  await page.fill("#username", username);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
}

/** Logs in over HTTP; returns `call(command, params)` resolving with the reply's payload, to
 *  check from outside the page what exists. */
async function apiSession(base, username, password) {
  const post = async (form, cookie) => {
    const res = await fetch(`${base}/client/api`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", ...(cookie ? { Cookie: cookie } : {}) },
      body: new URLSearchParams({ ...form, response: "json" }),
    });
    return { res, payload: Object.values(await res.json())[0] };
  };
  const { res, payload } = await post({ command: "login", username, password, domain: "/" });
  if (!payload.sessionkey) throw new Error(`login failed: ${JSON.stringify(payload)}`);
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .join("; ");
  return async (command, params = {}) => {
    const r = await post({ command, sessionkey: payload.sessionkey, ...params }, cookie);
    if (r.payload.errortext) throw new Error(`${command}: ${r.payload.errortext}`);
    return r.payload;
  };
}

module.exports = { BIN, WEB_DIR, makeRun, launchBrowser, stopServer, stopProcess, supportsDemo, startServer, signedCall, apiSession, logIn, openPage };
