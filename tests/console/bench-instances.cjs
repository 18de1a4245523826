// Benchmark: from navigation to an interactive instances list with 10,000 instances, and
// the bytes shipped, in headless Chromium. Not part of the test run (its name is not a
// test file's); run it by hand after scripts/build.sh:
//
//   NODE_PATH=~/.cache/wasmstack/node/node_modules node tests/console/bench-instances.cjs
//
// It starts `wasmstack serve --demo`, deploys one instance through the API, stops the
// server, copies that instance's rows to INSTANCES (default 10000) Stopped ones in the
// SQLite file, starts the server again and loads /client/instances RUNS times (default 7),
// each in a fresh browser context that has only the session.

"use strict";

const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), ".cache", "wasmstack", "target");
const BIN = process.env.WASMSTACK_BIN || path.join(targetDir, "release", "wasmstack");
const WEB_DIR = process.env.WASMSTACK_WEB_DIR || path.join(path.dirname(BIN), "web");
const PLUGINS = path.join(targetDir, "wasm32-wasip2", "release");
const INSTANCES = Number(process.env.INSTANCES || 10000);
const RUNS = Number(process.env.RUNS || 7);
const PASSWORD = "bench-" + Math.random().toString(36).slice(2);

const run = fs.mkdtempSync(path.join(os.tmpdir(), "wasmstack-console-bench-"));
const dataDir = path.join(run, "data");

function serve(demo) {
  const args = ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--web-dir", WEB_DIR];
  if (demo) args.push("--demo");
  const err = fs.openSync(path.join(run, "server.stderr.log"), "a");
  const proc = spawn(BIN, args, {
    env: { ...process.env, WASMSTACK_ADMIN_PASSWORD: PASSWORD },
    stdio: ["ignore", "pipe", err],
  });
  let out = "";
  return new Promise((resolve, reject) => {
    proc.stdout.on("data", (c) => {
      out += c;
      const m = out.match(/wasmstack API listening on (http:\/\/\S+)\/client\/api/);
      if (m && (!demo || /Demo cloud ready/.test(out))) resolve({ proc, base: m[1] });
    });
    proc.on("exit", (code) => reject(new Error(`the server exited with ${code}:\n${out}`)));
  });
}

async function stop(server) {
  const exited = new Promise((r) => server.proc.once("exit", r));
  server.proc.kill("SIGTERM");
  await exited;
}

/** A session for plain API calls: the cookies and the key. */
async function login(base) {
  const r = await fetch(`${base}/client/api`, {
    method: "POST",
    body: new URLSearchParams({ command: "login", username: "admin", password: PASSWORD, response: "json" }),
  });
  const pairs = r.headers.getSetCookie().map((c) => c.split(";")[0].split("="));
  const cookie = pairs.map(([k, v]) => `${k}=${v}`).join("; ");
  const key = (await r.json()).loginresponse.sessionkey;
  const api = async (command, params = {}) => {
    const body = new URLSearchParams({ command, response: "json", sessionkey: key, ...params });
    const res = await fetch(`${base}/client/api`, { method: "POST", body, headers: { cookie } });
    return Object.values(await res.json())[0];
  };
  return { api, key, cookies: pairs.map(([name, value]) => ({ name, value, url: `${base}/client/` })) };
}

// Copies the one instance (and its NIC) as Stopped instances on no host; unique names,
// UUIDs and MACs. Python's sqlite3 because Node 20 has no SQLite of its own.
const POPULATE = `
import sqlite3, sys, uuid, time
db = sqlite3.connect(sys.argv[1]); n = int(sys.argv[2])
cols = [r[1] for r in db.execute("PRAGMA table_info(instances)") if r[1] != "id"]
vm = dict(zip(cols, db.execute("SELECT %s FROM instances WHERE removed IS NULL LIMIT 1" % ",".join(cols)).fetchone()))
ncols = [r[1] for r in db.execute("PRAGMA table_info(nics)") if r[1] != "id"]
nic = dict(zip(ncols, db.execute("SELECT %s FROM nics WHERE instance_uuid = ?" % ",".join(ncols), (vm["uuid"],)).fetchone()))
t0 = time.time()
for i in range(n):
    u = str(uuid.uuid4())
    row = dict(vm, uuid=u, name="bench-%05d" % i, display_name="bench-%05d" % i, state="Stopped", host_id=None, root_volume_id=None)
    db.execute("INSERT INTO instances (%s) VALUES (%s)" % (",".join(cols), ",".join("?" * len(cols))), [row[c] for c in cols])
    m = "02:be:%02x:%02x:%02x:%02x" % ((i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255)
    nrow = dict(nic, uuid=str(uuid.uuid4()), instance_uuid=u, mac=m, ip_address=None)
    db.execute("INSERT INTO nics (%s) VALUES (%s)" % (",".join(ncols), ",".join("?" * len(ncols))), [nrow[c] for c in ncols])
db.commit()
print("inserted %d instances in %.1f s" % (n, time.time() - t0))
`;

(async () => {
  for (const name of ["kvm.wasm", "local.wasm"]) {
    fs.mkdirSync(path.join(dataDir, "plugins"), { recursive: true });
    fs.copyFileSync(path.join(PLUGINS, name), path.join(dataDir, "plugins", name));
  }
  let server = await serve(true);
  const { api } = await login(server.base);
  const zone = (await api("listZones")).zone[0];
  const offering = (await api("listServiceOfferings")).serviceoffering[0];
  const template = (await api("listTemplates", { templatefilter: "executable", zoneid: zone.id })).template[0];
  const network = (await api("listNetworks", { zoneid: zone.id })).network[0];
  const job = (await api("deployVirtualMachine", {
    zoneid: zone.id, serviceofferingid: offering.id, templateid: template.id, networkids: network.id, name: "seed",
  })).jobid;
  while ((await api("queryAsyncJobResult", { jobid: job })).jobstatus === 0) await new Promise((r) => setTimeout(r, 200));
  await stop(server);

  const populated = spawnSync("python3", ["-c", POPULATE, path.join(dataDir, "wasmstack.db"), String(INSTANCES)], { encoding: "utf8" });
  if (populated.status !== 0) throw new Error(populated.stderr);
  console.log(populated.stdout.trim());

  server = await serve(false);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    // Each load in a new browser context: nothing cached, as on a first visit, with the
    // session of an earlier login already in place (cookies and sessionStorage).
    const session = await login(server.base);
    const times = [];
    let bytes = 0;
    let count = "";
    for (let i = 0; i < RUNS; i++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.addCookies(session.cookies);
      await context.addInitScript((key) => {
        sessionStorage.setItem("wasmstack.sessionkey", key);
        sessionStorage.setItem("wasmstack.username", "admin");
      }, session.key);
      const page = await context.newPage();
      const finished = [];
      page.on("requestfinished", (r) => finished.push(r));
      const t0 = Date.now();
      await page.goto(`${server.base}/client/instances`);
      await page.locator("table.vm-table:not(.loading) tbody tr").first().waitFor();
      await page.locator(".pager .next:not([disabled])").waitFor();
      times.push(Date.now() - t0);
      bytes = 0;
      for (const r of finished) {
        const s = await r.sizes();
        bytes += s.responseBodySize + s.responseHeadersSize;
      }
      count = await page.locator(".toolbar .muted").innerText();
      await page.screenshot({ path: path.join(run, "instances.png") });
      await context.close();
    }
    times.sort((a, b) => a - b);
    console.log(`${count}; navigation to an interactive list: median ${times[times.length >> 1]} ms, ` +
      `best ${times[0]} ms, worst ${times[times.length - 1]} ms over ${RUNS} loads; ` +
      `${bytes} bytes over the wire per load`);
    console.log(`folder: ${run}`);
  } finally {
    await browser.close();
    await stop(server);
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
