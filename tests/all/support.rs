//! Helpers shared by the tests: where the built components are, and a scratch plugin
//! folder with a configuration.

use std::path::{Path, PathBuf};

use wasmstack::plugins::{HostConfig, PluginHost};

/// Folder holding the built `.wasm` components: `WASMSTACK_WASM_DIR`, or the
/// `wasm32-wasip2/release` folder of the cargo target dir this test was built in.
pub fn wasm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WASMSTACK_WASM_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // <target>/release/deps/all-<hash>
    let target = exe.ancestors().nth(3).expect("cargo target dir");
    target.join("wasm32-wasip2/release")
}

/// A built component, by file name.
pub fn wasm(name: &str) -> PathBuf {
    let path = wasm_dir().join(name);
    assert!(path.is_file(), "{} is missing; build the components first with scripts/build.sh", path.display());
    path
}

/// A scratch folder with a `plugins/` folder and a server configuration.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("scratch folder");
        std::fs::create_dir(dir.path().join("plugins")).expect("plugin folder");
        Sandbox { dir }
    }

    pub fn plugins(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("wasmstack.toml")
    }

    /// Copies a built component into the plugin folder under `as_name`, atomically
    /// (write aside, then rename) as an operator's deploy tool would.
    pub fn install(&self, artifact: &str, as_name: &str) -> PathBuf {
        let dest = self.plugins().join(as_name);
        install_file(&wasm(artifact), &dest);
        dest
    }

    /// Writes the configuration and builds a host on it (nothing loaded yet).
    pub fn host(&self, config: &str) -> PluginHost {
        std::fs::write(self.config_path(), config).expect("writing the configuration");
        let cfg = HostConfig::load(&self.config_path()).expect("a valid configuration");
        PluginHost::new(cfg).expect("a plugin host")
    }
}

pub fn install_file(src: &Path, dest: &Path) {
    let tmp = dest.with_extension("partial");
    std::fs::copy(src, &tmp).expect("copying a component");
    std::fs::rename(&tmp, dest).expect("renaming into place");
}

/// A random lowercase UUID, from the kernel.
pub fn new_uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid").expect("kernel uuid").trim().to_owned()
}

/// The one demo cloud of this test process, shared by the tests that need one. Its
/// Simulator is libvirt's test driver, whose state every connection in a process shares:
/// two demo clouds would each define VMs named i-2-1-VM and the like, and clash.
pub fn demo_cloud() -> &'static DemoCloud {
    static CLOUD: std::sync::OnceLock<DemoCloud> = std::sync::OnceLock::new();
    CLOUD.get_or_init(DemoCloud::start)
}

/// A whole server in this process: `serve --demo` on a scratch data folder, with the
/// database in memory. The demo set-up builds a Simulator cloud through the API (zone,
/// host, pool, image store, template, network, offering), so a test starts from a cloud
/// ready to deploy on, without root, libvirtd or NFS.
pub struct DemoCloud {
    pub runtime: tokio::runtime::Runtime,
    pub orch: wasmstack::orchestrate::Orchestrator,
    serving: tokio::task::JoinHandle<anyhow::Result<()>>,
    _data: tempfile::TempDir,
}

impl DemoCloud {
    pub fn start() -> Self {
        use wasmstack::server::{ServeOptions, Server};
        let data = tempfile::tempdir().expect("scratch data folder");
        let plugins = data.path().join("plugins");
        std::fs::create_dir(&plugins).expect("plugin folder");
        for driver in ["kvm.wasm", "local.wasm", "vlan.wasm"] {
            install_file(&wasm(driver), &plugins.join(driver));
        }
        let dir = wasmstack::demo::DemoDir::prepare(data.path()).expect("the demo's folders and grants");
        let opts = ServeOptions {
            listen: "127.0.0.1:0".parse().expect("an address"),
            data_dir: data.path().to_owned(),
            database: Some("sqlite::memory:".into()),
            admin_password: Some("password".into()),
            web_dir: None,
        };
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
        let server = runtime.block_on(Server::start(&opts)).expect("the server starts");
        let orch = server.orchestrator.clone();
        let serving = runtime.spawn(server.run_demo(dir));
        let cloud = DemoCloud { runtime, orch, serving, _data: data };
        cloud.wait_for_demo();
        cloud
    }

    /// Waits until the demo's template is ready, the last step of its set-up.
    fn wait_for_demo(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        self.block_on(async {
            let admin = self.admin().await;
            loop {
                assert!(!self.serving.is_finished(), "the demo set-up failed (see the output above)");
                let ready = admin
                    .list("listTemplates", &[("templatefilter", "featured")])
                    .await
                    .expect("listTemplates")
                    .iter()
                    .any(|t| t.get("isready").and_then(serde_json::Value::as_bool) == Some(true));
                let enabled = admin
                    .list("listZones", &[])
                    .await
                    .expect("listZones")
                    .iter()
                    .any(|z| z.get("allocationstate").and_then(serde_json::Value::as_str) == Some("Enabled"));
                if ready && enabled {
                    return;
                }
                assert!(std::time::Instant::now() < deadline, "the demo cloud was not ready within 2 minutes");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// The root admin, as an API caller.
    pub async fn admin(&self) -> wasmstack::operator::Operator<'_> {
        wasmstack::operator::Operator::as_user(&self.orch, "admin", "/").await.expect("the admin user")
    }

    /// A new user account (named `prefix` and 8 random characters), with the demo's zone,
    /// a featured template and the Small offering to deploy with.
    pub async fn new_account(&self, prefix: &str) -> NewAccount<'_> {
        use wasmstack::operator::{Operator, id};
        let first =
            |items: Vec<serde_json::Map<String, serde_json::Value>>| id(&items.into_iter().next().expect("one"));
        let admin = self.admin().await;
        let account = format!("{prefix}{}", &new_uuid()[..8]);
        let email = format!("{prefix}@example.org");
        let details = [
            ("accounttype", "0"),
            ("username", account.as_str()),
            ("password", "secret-password"),
            ("email", email.as_str()),
            ("firstname", "T"),
            ("lastname", "Tenant"),
        ];
        admin.call("createAccount", &details).await.expect("createAccount");
        let user = Operator::as_user(&self.orch, &account, "/").await.expect("the new user");
        let zone = first(admin.list("listZones", &[]).await.expect("listZones"));
        let template = first(user.list("listTemplates", &[("templatefilter", "featured")]).await.expect("templates"));
        let offering = first(user.list("listServiceOfferings", &[("name", "Small")]).await.expect("offerings"));
        NewAccount { user, account, zone, template, offering }
    }
}

/// A user account of its own, made by [`DemoCloud::new_account`]: ids of what it deploys with.
pub struct NewAccount<'a> {
    pub user: wasmstack::operator::Operator<'a>,
    pub account: String,
    pub zone: String,
    pub template: String,
    pub offering: String,
}

impl NewAccount<'_> {
    /// Makes an Isolated network (SourceNat offering) of the account's; returns its id.
    pub async fn isolated_network(&self, name: &str) -> String {
        use wasmstack::operator::id;
        let offering = self
            .user
            .list("listNetworkOfferings", &[("name", "DefaultIsolatedNetworkOfferingWithSourceNatService")])
            .await
            .expect("network offerings");
        let offering = id(offering.first().expect("the Isolated offering"));
        let params = [("name", name), ("displaytext", name), ("networkofferingid", &offering), ("zoneid", &self.zone)];
        id(&self.user.call("createNetwork", &params).await.expect("createNetwork"))
    }
}

impl Drop for DemoCloud {
    fn drop(&mut self) {
        self.serving.abort();
    }
}
