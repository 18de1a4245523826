//! The driver authors' kit, as an outside author uses it: `plugins new`, a few
//! functions filled in, a build outside the workspace, `plugins check`, and a drop into
//! a running server that then serves a pool and a volume through the API.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::install_file;

/// The cargo target dir this test binary was built in; driver builds share it so the
/// wit-bindgen build is reused.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.ancestors().nth(3).expect("cargo target dir").to_owned()
}

pub(crate) fn wasmstack(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmstack")).args(args).output().expect("running wasmstack");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What the author writes into the skeleton: a pool of qcow2 files in a folder,
/// through the host's images capability.
const HELPERS: &str = r#"
use wasmstack::driver::images;
use wasmstack::driver::types::FileDisk;

const VOLUMES: &str = "vols";

fn at(pool: &str, path: &str) -> String {
    format!("{}/{path}", pool.trim_end_matches('/'))
}

fn usage(url: &str) -> Result<Usage, DriverError> {
    let space = images::capacity(url)?;
    Ok(Usage { total_bytes: space.total_bytes, used_bytes: space.total_bytes - space.free_bytes })
}

fn volume(pool: &str, path: String) -> Result<Volume, DriverError> {
    let url = at(pool, &path);
    let info = images::info(&url)?;
    let file = url.strip_prefix("file://").ok_or_else(|| DriverError::InvalidSpec(format!("{pool} is not a file:// URL")))?;
    Ok(Volume {
        path: VOLUME_PATH,
        locator: Locator::File(FileDisk { path: file.to_owned(), format: DiskFormat::Qcow2 }),
        virtual_size: info.virtual_size,
        physical_size: info.actual_size,
    })
}
"#;

/// (function, new definition) pairs replacing skeleton functions.
const FUNCTIONS: &[(&str, &str)] = &[
    (
        "attach",
        "fn attach(url: String) -> Result<Usage, DriverError> {\n        images::make_dir(&at(&url, VOLUMES))?;\n        usage(&url)\n    }",
    ),
    ("capacity", "fn capacity(url: String) -> Result<Usage, DriverError> {\n        usage(&url)\n    }"),
    (
        "create-volume",
        "fn create_volume(pool: String, name: String, size_bytes: u64, template: Option<String>) -> Result<Volume, DriverError> {\n        \
         if template.is_some() {\n            return unsupported(\"templates\");\n        }\n        \
         let path = format!(\"{VOLUMES}/{name}.qcow2\");\n        \
         images::create(&at(&pool, &path), DiskFormat::Qcow2, size_bytes, None)?;\n        volume(&pool, path)\n    }",
    ),
    (
        "delete-volume",
        "fn delete_volume(pool: String, path: String) -> Result<(), DriverError> {\n        images::remove(&at(&pool, &path))\n    }",
    ),
    (
        "resize-volume",
        "fn resize_volume(pool: String, path: String, size_bytes: u64) -> Result<Volume, DriverError> {\n        \
         images::resize(&at(&pool, &path), size_bytes)?;\n        volume(&pool, path)\n    }",
    ),
    (
        "create-snapshot",
        "fn create_snapshot(pool: String, path: String, name: String) -> Result<(), DriverError> {\n        \
         images::snapshot_create(&at(&pool, &path), &name)\n    }",
    ),
    (
        "revert-snapshot",
        "fn revert_snapshot(pool: String, path: String, name: String) -> Result<(), DriverError> {\n        \
         images::snapshot_revert(&at(&pool, &path), &name)\n    }",
    ),
    (
        "delete-snapshot",
        "fn delete_snapshot(pool: String, path: String, name: String) -> Result<(), DriverError> {\n        \
         images::snapshot_delete(&at(&pool, &path), &name)\n    }",
    ),
];

/// How a test driver differs from the good one: each breaks one rule.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Variant {
    Good,
    /// Asks for a folder it does not use, and uses one it did not ask for.
    NoGrant,
    /// Returns an absolute path for a new volume.
    BadPath,
    /// Panics in resize-volume.
    Panic,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Good => "dirpool",
            Variant::NoGrant => "dirpool-nogrant",
            Variant::BadPath => "dirpool-badpath",
            Variant::Panic => "dirpool-panic",
        }
    }
}

/// Replaces the skeleton function answering `unsupported("<wit>")` with `new`.
fn replace_function(src: &str, wit: &str, new: &str) -> String {
    let marker = format!("unsupported(\"{wit}\")");
    let at = src.find(&marker).unwrap_or_else(|| panic!("no skeleton for {wit}"));
    let start = src[..at].rfind("    fn ").expect("fn start") + 4;
    let end = at + src[at..].find("\n    }").expect("fn end") + "\n    }".len();
    format!("{}{new}{}", &src[..start], &src[end..])
}

/// Generates, edits and builds one driver; built once per test run.
fn driver(variant: Variant) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<Variant, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get_or_insert_with(HashMap::new).get(&variant) {
        return p.clone();
    }
    let name = variant.name();
    let root = target_dir().join("driver-kit");
    std::fs::create_dir_all(&root).unwrap();
    let dir = root.join(name);
    // A fresh crate each run: `plugins new` refuses a folder that is not empty.
    let _ = std::fs::remove_dir_all(&dir);
    let (ok, out, err) = wasmstack(&["plugins", "new", "--kind", "storage", name, dir.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("cargo build --release --target wasm32-wasip2"), "{out}");

    let lib = dir.join("src/lib.rs");
    let mut src = std::fs::read_to_string(&lib).unwrap();
    for (wit, new) in FUNCTIONS {
        src = replace_function(&src, wit, new);
    }
    if variant == Variant::Panic {
        src = src.replace("images::resize(&at(&pool, &path), size_bytes)?;", "panic!(\"dirpool lost its way\");");
    }
    let path = if variant == Variant::BadPath { "file.to_owned()" } else { "path" };
    src.push_str(&HELPERS.replace("VOLUME_PATH", path));
    if variant == Variant::NoGrant {
        src = src
            .replace("Capability::Images(\"file:///\".into())", "Capability::Images(\"file:///srv/elsewhere\".into())");
    }
    std::fs::write(&lib, src).unwrap();

    // The workspace's lock file pins the same dependency versions, so the build reuses
    // what the workspace built and needs no network.
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let out = Command::new(option_env!("CARGO").unwrap_or("cargo"))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--offline", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("running cargo");
    assert!(out.status.success(), "building {name}: {}", String::from_utf8_lossy(&out.stderr));
    let wasm = target_dir().join("wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")));
    assert!(wasm.is_file(), "{} is missing", wasm.display());
    built.get_or_insert_with(HashMap::new).insert(variant, wasm.clone());
    wasm
}

/// `plugins check --json`: whether it passed, and each step's status and message.
fn check(file: &Path) -> (bool, HashMap<String, (String, String)>, String) {
    let (ok, out, err) = wasmstack(&["plugins", "check", "--json", file.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(v["passed"], ok, "the exit code follows the verdict");
    let steps = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap().to_owned();
            (text("step"), (text("status"), text("message")))
        })
        .collect();
    (ok, steps, out)
}

#[test]
fn plugins_new_writes_a_crate_with_the_servers_wit() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) =
        wasmstack(&["plugins", "new", "--kind", "hypervisor", "BadName", dir.path().join("x").to_str().unwrap()]);
    assert!(!ok && err.contains("bad driver name \"BadName\""), "{err}");
    let (ok, _, err) = wasmstack(&["plugins", "new", "--kind", "network", "n1", env!("CARGO_MANIFEST_DIR")]);
    assert!(!ok && err.contains("exists and is not empty"), "{err}");

    let crate_dir = dir.path().join("hv");
    let (ok, _, err) = wasmstack(&["plugins", "new", "--kind", "hypervisor", "hv", crate_dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    for f in ["Cargo.toml", "src/lib.rs", "grants.toml", "README.md", "wit/hypervisor.wit", "wit/worlds.wit"] {
        assert!(crate_dir.join(f).is_file(), "{f} is missing");
    }
    let wit = std::fs::read_to_string(crate_dir.join("wit/plugin.wit")).unwrap();
    let ours = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/plugin.wit")).unwrap();
    assert_eq!(wit, ours, "the crate gets the server's own WIT");
    let grants = std::fs::read_to_string(crate_dir.join("grants.toml")).unwrap();
    assert!(grants.contains("[plugin.hv]\nlibvirt = [\"test:///default\"]"), "{grants}");
    assert!(
        wasmstack::plugins::HostConfig::parse(&grants, Path::new("/")).is_ok(),
        "the snippet is valid configuration"
    );
}

#[test]
fn an_authors_storage_driver_passes_check_and_serves_a_running_server() {
    let wasm = driver(Variant::Good);
    let (ok, steps, out) = check(&wasm);
    assert!(ok, "{out}");
    for step in
        ["wit-version", "attach", "create-volume", "resize-volume", "revert-snapshot", "delete-volume (missing)"]
    {
        assert_eq!(steps[step].0, "passed", "{step}: {out}");
    }

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let data = tempfile::tempdir().unwrap();
        let pools = data.path().join("pools");
        std::fs::create_dir_all(&pools).unwrap();
        std::fs::write(
            data.path().join("wasmstack.toml"),
            format!("[plugin.dirpool]\nimages = [\"file://{}\"]\n", pools.display()),
        )
        .unwrap();
        let api = Api::start(data.path()).await;
        let zone = api
            .call(&[
                ("command", "createZone"),
                ("name", "kit"),
                ("networktype", "Basic"),
                ("dns1", "10.0.0.53"),
                ("internaldns1", "10.0.0.53"),
            ])
            .await;
        let zone_id = zone["zone"]["id"].as_str().unwrap().to_owned();
        let pool_url = format!("file://{}/p1", pools.display());
        let create_pool = [
            ("command", "createStoragePool"),
            ("name", "kit-pool"),
            ("url", pool_url.as_str()),
            ("zoneid", zone_id.as_str()),
            ("scope", "zone"),
            ("hypervisor", "KVM"),
            ("provider", "dirpool"),
        ];
        let refused = api.try_call(&create_pool).await.unwrap_err();
        assert!(refused.contains("Storage provider dirpool is not a loaded storage driver"), "{refused}");

        // Dropped in while the server runs; its watcher loads it.
        install_file(&wasm, &data.path().join("plugins/dirpool.wasm"));
        let start = Instant::now();
        let pool = loop {
            match api.try_call(&create_pool).await {
                Ok(v) => break v,
                Err(e) if e.contains("not a loaded storage driver") && start.elapsed() < Duration::from_secs(20) => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(pool["storagepool"]["state"], "Up", "{pool}");
        assert!(pools.join("p1/vols").is_dir(), "the driver's attach made its layout");

        let vol = api
            .call(&[("command", "createVolume"), ("name", "kit-vol"), ("zoneid", zone_id.as_str()), ("size", "1")])
            .await;
        let id = vol["volume"]["id"].as_str().unwrap_or_else(|| panic!("{vol}"));
        assert_eq!(vol["volume"]["storage"], "kit-pool", "{vol}");
        let file = pools.join(format!("p1/vols/{id}.qcow2"));
        assert!(file.is_file(), "{} is missing", file.display());
        let listed = api.call(&[("command", "listVolumes"), ("id", id)]).await;
        assert_eq!(listed["volume"][0]["size"], 1u64 << 30, "{listed}");
    });
}

#[test]
fn check_names_each_broken_rule() {
    let (ok, steps, out) = check(&crate::support::wasm("future.wasm"));
    assert!(!ok);
    assert_eq!(steps["wit-version"].0, "failed", "{out}");
    assert!(steps["wit-version"].1.starts_with("built for wasmstack:driver@9.0.0"), "{out}");

    let (ok, steps, out) = check(&driver(Variant::NoGrant));
    assert!(!ok);
    assert!(steps["grants"].1.starts_with("asks for no images grant covering \"file:///"), "{out}");
    let attach = &steps["attach"];
    assert_eq!(attach.0, "failed", "{out}");
    assert!(
        attach.1.contains("permission denied: images access to \"file:///") && attach.1.contains("is not granted"),
        "{out}"
    );

    let (ok, steps, out) = check(&driver(Variant::BadPath));
    assert!(!ok);
    let create = &steps["create-volume"];
    assert_eq!(create.0, "failed", "{out}");
    assert!(
        create.1.starts_with("volume path \"/")
            && create.1.ends_with("must be relative to the pool URL (no leading /, scheme or ..)"),
        "{out}"
    );
    assert_eq!(steps["attach"].0, "passed", "{out}");

    let (ok, steps, out) = check(&driver(Variant::Panic));
    assert!(!ok);
    let resize = &steps["resize-volume"];
    assert_eq!(
        resize,
        &("failed".to_owned(), "dirpool-panic panicked in resize-volume: dirpool lost its way".to_owned()),
        "{out}"
    );
    assert_eq!(steps["create-snapshot"].0, "passed", "the check goes on after a panic: {out}");
    assert_eq!(steps["delete-volume"].0, "passed", "{out}");
}

/// A server in this process, on a fresh data folder, and its admin's API keys.
struct Api {
    addr: std::net::SocketAddr,
    key: String,
    secret: String,
}

impl Api {
    async fn start(data: &Path) -> Api {
        use wasmstack::server::{ServeOptions, Server};
        let opts = ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.to_owned(),
            database: None,
            admin_password: Some("kit-password".into()),
            web_dir: None,
        };
        let server = Server::start(&opts).await.expect("the server starts");
        let addr = server.listener.local_addr().unwrap();
        let o = server.orchestrator.clone();
        let admin = wasmstack::auth::store::user_by_login(&o.db, "admin", "/").await.unwrap().unwrap();
        let (key, secret) = wasmstack::auth::store::register_keys(&o.db, &o.sealer, admin.id).await.unwrap();
        tokio::spawn(server.run());
        Api { addr, key, secret }
    }

    /// One signed call; an async command's job is waited for. The reply object, or the
    /// error text.
    async fn try_call(&self, params: &[(&str, &str)]) -> Result<Value, String> {
        let reply = self.get(params).await;
        let command = params.iter().find(|(k, _)| *k == "command").unwrap().1.to_ascii_lowercase();
        let inner = reply[format!("{command}response")].clone();
        if let Some(text) = inner["errortext"].as_str() {
            return Err(text.to_owned());
        }
        let Some(job) = inner["jobid"].as_str() else {
            return Ok(inner);
        };
        loop {
            let r = self.get(&[("command", "queryAsyncJobResult"), ("jobid", job)]).await;
            let r = &r["queryasyncjobresultresponse"];
            match r["jobstatus"].as_i64() {
                Some(0) => tokio::time::sleep(Duration::from_millis(50)).await,
                Some(1) => return Ok(r["jobresult"].clone()),
                _ => return Err(r["jobresult"]["errortext"].as_str().unwrap_or("job failed").to_owned()),
            }
        }
    }

    async fn call(&self, params: &[(&str, &str)]) -> Value {
        self.try_call(params).await.unwrap_or_else(|e| panic!("{params:?}: {e}"))
    }

    async fn get(&self, params: &[(&str, &str)]) -> Value {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use wasmstack::api::signing;
        let mut pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        pairs.extend([("apiKey".to_owned(), self.key.clone()), ("response".into(), "json".into())]);
        let signature = signing::sign(&self.secret, &signing::canonical(&pairs));
        pairs.push(("signature".into(), signature));
        let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        let mut conn = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let req = format!("GET /client/api?{} HTTP/1.0\r\nHost: kit\r\n\r\n", query.join("&"));
        conn.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw);
        let (_, body) = text.split_once("\r\n\r\n").expect("an HTTP reply");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
    }
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
