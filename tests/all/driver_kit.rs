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
pub(crate) fn target_dir() -> PathBuf {
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
/// through the host's images capability. Its settings (a quota, where volumes go) come in
/// the pool URL's query string, as its schema declares them.
const HELPERS: &str = r##"
use wasmstack::driver::images;
use wasmstack::driver::types::FileDisk;

const VOLUMES: &str = "vols";

const SCHEMA: &str = r#"{
  "type": "object",
  "title": "Folder pool",
  "properties": {
    "quota-mib": {"type": "integer", "minimum": 1, "title": "Quota (MiB)", "description": "The space the pool offers"},
    "layout": {"type": "string", "enum": ["nested", "flat"], "default": "nested", "title": "Layout", "description": "nested: volumes in vols/; flat: in the pool folder"}
  },
  "required": ["quota-mib"]
}"#;

/// The pool folder's URL, its quota in bytes, and whether volumes sit in the folder itself.
fn settings(url: &str) -> (&str, Option<u64>, bool) {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut quota, mut flat) = (None, false);
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("quota-mib", v)) => quota = v.parse::<u64>().ok().map(|m| m << 20),
            Some(("layout", v)) => flat = v == "flat",
            _ => {}
        }
    }
    (base, quota, flat)
}

fn at(pool: &str, path: &str) -> String {
    format!("{}/{path}", settings(pool).0.trim_end_matches('/'))
}

/// The folder the pool's volumes are in.
fn volumes_dir(pool: &str) -> String {
    let (base, _, flat) = settings(pool);
    if flat { base.to_owned() } else { at(pool, VOLUMES) }
}

/// The sizes of the pool's volumes, which a quota limits.
fn provisioned(pool: &str) -> u64 {
    let dir = volumes_dir(pool);
    let names = images::list_dir(&dir).unwrap_or_default();
    let infos = names.iter().filter(|n| n.ends_with(".qcow2")).filter_map(|n| images::info(&format!("{dir}/{n}")).ok());
    infos.map(|i| i.virtual_size).sum()
}

fn usage(url: &str) -> Result<Usage, DriverError> {
    let (base, quota, _) = settings(url);
    let space = images::capacity(base)?;
    Ok(match quota {
        Some(q) => Usage { total_bytes: q, used_bytes: provisioned(url).min(q) },
        None => Usage { total_bytes: space.total_bytes, used_bytes: space.total_bytes - space.free_bytes },
    })
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
"##;

/// (function, new definition) pairs replacing skeleton functions.
const FUNCTIONS: &[(&str, &str)] = &[
    (
        "attach",
        "fn attach(url: String) -> Result<Usage, DriverError> {\n        \
         images::make_dir(&volumes_dir(&url))?;\n        usage(&url)\n    }",
    ),
    ("capacity", "fn capacity(url: String) -> Result<Usage, DriverError> {\n        usage(&url)\n    }"),
    (
        "create-volume",
        "fn create_volume(pool: String, name: String, size_bytes: u64, template: Option<String>) -> Result<Volume, DriverError> {\n        \
         if template.is_some() {\n            return unsupported(\"templates\");\n        }\n        \
         let (_, quota, flat) = settings(&pool);\n        \
         if quota.is_some_and(|q| provisioned(&pool) + size_bytes > q) {\n            \
         return Err(DriverError::InvalidSpec(format!(\"{size_bytes} bytes exceed the pool's quota\")));\n        }\n        \
         let path = if flat { format!(\"{name}.qcow2\") } else { format!(\"{VOLUMES}/{name}.qcow2\") };\n        \
         if images::info(&at(&pool, &path)).is_ok() {\n            return volume(&pool, path);\n        }\n        \
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
    /// Asks for a narrow folder, as an operator would grant it: the check grants its
    /// scratch folder in its place.
    Narrow,
    /// Asks for no images prefix at all, and uses the images capability.
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
            Variant::Narrow => "dirpool-narrow",
            Variant::NoGrant => "dirpool-nogrant",
            Variant::BadPath => "dirpool-badpath",
            Variant::Panic => "dirpool-panic",
        }
    }
}

/// Replaces the skeleton function answering `unsupported("<wit>")` with `new`.
pub(crate) fn replace_function(src: &str, wit: &str, new: &str) -> String {
    let marker = format!("unsupported(\"{wit}\")");
    let at = src.find(&marker).unwrap_or_else(|| panic!("no skeleton for {wit}"));
    let start = src[..at].rfind("    fn ").expect("fn start") + 4;
    let end = at + src[at..].find("\n    }").expect("fn end") + "\n    }".len();
    format!("{}{new}{}", &src[..start], &src[end..])
}

/// Builds a crate `plugins new` wrote (as its README says) and returns its component.
pub(crate) fn build_crate(dir: &Path, name: &str) -> PathBuf {
    // The workspace's lock file pins the same dependency versions, so the build reuses
    // what the workspace built and needs no network.
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let out = Command::new(option_env!("CARGO").unwrap_or("cargo"))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--offline", "--quiet"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("running cargo");
    assert!(out.status.success(), "building {name}: {}", String::from_utf8_lossy(&out.stderr));
    let wasm = target_dir().join("wasm32-wasip2/release").join(wasmstack::plugins::scaffold::artifact(name));
    assert!(wasm.is_file(), "{} is missing", wasm.display());
    wasm
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
    src = src.replace("config_schema: \"{}\".into()", "config_schema: SCHEMA.into()");
    assert!(src.contains("SCHEMA.into()"), "the skeleton's config_schema line moved");
    let ask = match variant {
        Variant::Narrow => "Capability::Images(\"file:///srv/mystore\".into())",
        Variant::NoGrant => "Capability::Libvirt(\"test:///default\".into())",
        _ => "Capability::Images(\"file:///\".into())",
    };
    src = src.replace("Capability::Images(\"file:///\".into())", ask);
    assert!(src.contains(ask), "the skeleton's capabilities line moved");
    std::fs::write(&lib, src).unwrap();

    let wasm = build_crate(&dir, name);
    built.get_or_insert_with(HashMap::new).insert(variant, wasm.clone());
    wasm
}

/// `plugins check --json` with dirpool's one required setting: whether it passed, and each
/// step's status and message.
fn check(file: &Path) -> (bool, HashMap<String, (String, String)>, String) {
    check_with(file, &["--detail", "quota-mib=1024"])
}

fn check_with(file: &Path, extra: &[&str]) -> (bool, HashMap<String, (String, String)>, String) {
    let mut args = vec!["plugins", "check", "--json"];
    args.extend_from_slice(extra);
    args.push(file.to_str().unwrap());
    let (ok, out, err) = wasmstack(&args);
    check_report(ok, out, &err)
}

/// Reads what `plugins check --json` printed: whether it passed (the exit code must agree),
/// each step's (status, message), and the report itself.
pub(crate) fn check_report(ok: bool, out: String, err: &str) -> (bool, HashMap<String, (String, String)>, String) {
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
    // describe() declares what it serves, for the author to edit: a hypervisor type named
    // like the driver, with no features until the author sets those it implements.
    let lib = std::fs::read_to_string(crate_dir.join("src/lib.rs")).unwrap();
    assert!(
        lib.contains(
            "serves: Serves::Hypervisor(vec![HypervisorType {\n                name: \"Hv\".into(),\n                \
             features: HypervisorFeatures::empty(),"
        ),
        "{lib}"
    );
    let readme = std::fs::read_to_string(crate_dir.join("README.md")).unwrap();
    assert!(readme.contains("## What it serves") && readme.contains("Capability::Endpoint("), "{readme}");
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
    // The setting reached the driver: its pool is as large as the quota says.
    assert_eq!(steps["capacity"].1.split(',').next(), Some("1024 MiB total"), "{out}");
    for step in [
        "wit-version",
        "attach",
        "create-volume",
        "create-volume (again)",
        "resize-volume",
        "revert-snapshot",
        "delete-volume (missing)",
    ] {
        assert_eq!(steps[step].0, "passed", "{step}: {out}");
    }
    assert_eq!(steps["manifest config-schema"].1, "a JSON object, 2 setting(s)", "{out}");
    let (ok, steps, out) = check_with(&wasm, &[]);
    assert!(!ok && steps["settings"].1.contains("Missing detail quota-mib"), "{out}");
    let (ok, steps, out) = check_with(&wasm, &["--detail", "quota-mib=0"]);
    assert!(!ok && steps["settings"].1.contains("must be at least 1"), "{out}");

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
        let pool_args = |details: &[(&'static str, &'static str)]| {
            let mut a = vec![
                ("command", "createStoragePool"),
                ("name", "kit-pool"),
                ("url", pool_url.as_str()),
                ("zoneid", zone_id.as_str()),
                ("scope", "zone"),
                ("hypervisor", "KVM"),
                ("provider", "dirpool"),
            ];
            a.extend_from_slice(details);
            a
        };
        let refused = api.try_call(&pool_args(&[])).await.unwrap_err();
        assert!(refused.contains("Storage provider dirpool is not a loaded storage driver"), "{refused}");

        // Dropped in while the server runs; its watcher loads it. Its schema asks for a quota.
        install_file(&wasm, &data.path().join("plugins/dirpool.wasm"));
        let start = Instant::now();
        let missing = loop {
            match api.try_call(&pool_args(&[])).await {
                Err(e) if e.contains("not a loaded storage driver") && start.elapsed() < Duration::from_secs(20) => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                other => break other.unwrap_err(),
            }
        };
        assert_eq!(missing, "Missing detail quota-mib: dirpool requires it");
        let plugin = api.call(&[("command", "listPlugins"), ("name", "dirpool")]).await;
        assert_eq!(plugin["plugin"][0]["configschema"]["required"][0], "quota-mib", "{plugin}");
        for (details, why) in [
            (&[("details[0].quota-mib", "0")][..], "Invalid detail quota-mib=0: must be at least 1"),
            (
                &[("details[0].key", "layout"), ("details[0].value", "deep"), ("details[1].quota-mib", "9")][..],
                "Invalid detail layout=deep: must be one of nested, flat",
            ),
            (
                &[("details[0].quota-mib", "9"), ("details[1].colour", "red")][..],
                "Unknown detail colour: dirpool takes quota-mib, layout",
            ),
        ] {
            assert_eq!(api.try_call(&pool_args(details)).await.unwrap_err(), why);
        }
        assert!(!pools.join("p1").exists(), "a refused pool was not attached");
        let none = api.call(&[("command", "listStoragePools")]).await;
        assert!(none.get("storagepool").is_none(), "{none}");

        // Given in both of CloudStack's map forms; the driver reads them from the pool URL.
        let pool = api
            .call(&pool_args(&[
                ("details[0].key", "quota-mib"),
                ("details[0].value", "2048"),
                ("details[1].layout", "nested"),
            ]))
            .await;
        assert_eq!(pool["storagepool"]["state"], "Up", "{pool}");
        assert_eq!(pool["storagepool"]["disksizetotal"], 2048u64 << 20, "the driver reports its quota: {pool}");
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

        // A flat pool keeps volumes in its own folder; a size past the quota is the driver's refusal.
        let flat_url = format!("file://{}/p2", pools.display());
        let flat = [
            ("command", "createStoragePool"),
            ("name", "kit-flat"),
            ("url", flat_url.as_str()),
            ("zoneid", zone_id.as_str()),
            ("scope", "zone"),
            ("hypervisor", "KVM"),
            ("provider", "dirpool"),
            ("details[0].quota-mib", "1024"),
            ("details[0].layout", "flat"),
        ];
        let flat = api.call(&flat).await;
        assert_eq!(flat["storagepool"]["disksizetotal"], 1u64 << 30, "{flat}");
        assert!(pools.join("p2").is_dir() && !pools.join("p2/vols").exists(), "the flat layout has no vols folder");
    });
}

/// A driver asking only for its own folder (file:///srv/mystore) is checked against the
/// scratch folder, granted in its place; the report says where that folder is.
#[test]
fn check_grants_a_narrow_asker_its_scratch_folder() {
    let wasm = driver(Variant::Narrow);
    let (ok, steps, out) = check(&wasm);
    assert!(ok, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let scratch = v["scratch"].as_str().unwrap_or_else(|| panic!("no scratch folder: {out}"));
    assert_eq!(
        steps["grants"],
        (
            "passed".to_owned(),
            format!(
                "granted images = [\"file://{scratch}\"] for the check, in place of the asked \
                 \"file:///srv/mystore\": the calls run against the scratch folder {scratch}"
            )
        ),
        "{out}"
    );
    for (step, (status, _)) in &steps {
        assert_eq!(status, "passed", "{step}: {out}");
    }
    assert!(steps.contains_key("delete-volume") && steps.contains_key("revert-snapshot"), "{out}");
    assert!(
        steps["settings"].1.contains(&format!("file://{scratch}/pool")),
        "the pool is in the scratch folder: {out}"
    );
    assert!(!Path::new(scratch).exists(), "the scratch folder is removed when the check ends");

    let (ok, text, err) = wasmstack(&["plugins", "check", "--detail", "quota-mib=1024", wasm.to_str().unwrap()]);
    assert!(ok, "{text}{err}");
    let line = text.lines().nth(1).unwrap_or_default();
    assert!(
        line.starts_with("  scratch folder /") && line.ends_with(" (removed when the check ends)"),
        "the text names the scratch folder first: {text}"
    );
}

#[test]
fn check_names_each_broken_rule() {
    let (ok, steps, out) = check(&crate::support::wasm("future.wasm"));
    assert!(!ok);
    assert_eq!(steps["wit-version"].0, "failed", "{out}");
    assert!(steps["wit-version"].1.starts_with("built for wasmstack:driver@9.0.0"), "{out}");

    let (ok, steps, out) = check(&driver(Variant::NoGrant));
    assert!(!ok);
    assert_eq!(
        steps["grants"].1,
        "asks for no valid images prefix, so it is granted none; the calls below run without a grant",
        "{out}"
    );
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
