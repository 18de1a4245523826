//! `wasmstack serve --demo`: on a data folder without zones, builds a ready cloud on the
//! Simulator (libvirt's test driver) so that a new user can deploy an instance at once.
//!
//! The cloud is made by running, as the admin, the same API commands an operator would
//! (createZone, addHost, registerTemplate, …): the demo exercises the real paths and
//! leaves nothing the API could not have made.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::operator::{Operator, OperatorError, id};
use crate::orchestrate::Orchestrator;

/// Where the demo template is served from, by this server, while demo mode runs.
pub const TEMPLATE_PATH: &str = "/demo/template.qcow2";

/// What went wrong while preparing the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo mode needs the {0} driver in {1} (scripts/run.sh puts it there)")]
    MissingDriver(&'static str, PathBuf),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("making the demo template: {0}")]
    Image(String),
    #[error("no admin user to run the demo set-up as")]
    NoAdmin,
    #[error(transparent)]
    Command(#[from] OperatorError),
    #[error("the demo template did not download: {0}")]
    Template(String),
}

/// The demo's files in the data folder.
pub struct DemoDir {
    root: PathBuf,
}

impl DemoDir {
    /// Prepares `<data>/demo` before the server starts: folders for the primary pool and
    /// the image store, the small template, and (only when the folder has none yet) a
    /// driver configuration granting the Simulator and those folders.
    pub fn prepare(data_dir: &Path) -> Result<DemoDir, DemoError> {
        let io = |what: &Path| {
            let what = what.display().to_string();
            move |e| DemoError::Io(what, e)
        };
        std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
        let data = data_dir.canonicalize().map_err(io(data_dir))?;
        let plugins = data.join("plugins");
        // The hypervisor driver (it serves the Simulator), local storage, and the network
        // driver serving the demo network's isolation method (VLAN).
        for driver in ["kvm", "local", "vlan"] {
            if !plugins.join(format!("{driver}.wasm")).is_file() {
                return Err(DemoError::MissingDriver(driver, plugins));
            }
        }
        let root = data.join("demo");
        for dir in [root.join("primary"), root.join("images")] {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        }
        let config = data.join("wasmstack.toml");
        if !config.exists() {
            std::fs::write(&config, grants(&root)).map_err(io(&config))?;
        }
        let template = root.join("template.qcow2");
        if !template.exists() {
            // A blank disk: the Simulator boots nothing, yet the template goes through
            // the same download, check and copy as a real one.
            let out = std::process::Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2"])
                .arg(&template)
                .arg("256M")
                .output()
                .map_err(|e| DemoError::Image(format!("running qemu-img: {e}")))?;
            if !out.status.success() {
                return Err(DemoError::Image(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
            }
        }
        Ok(DemoDir { root })
    }

    pub fn template(&self) -> PathBuf {
        self.root.join("template.qcow2")
    }

    fn url(&self, sub: &str) -> String {
        format!("file://{}", self.root.join(sub).display())
    }
}

fn grants(root: &Path) -> String {
    let root = root.display();
    format!(
        "# Written by `wasmstack serve --demo`. Each driver reaches only what is granted here;\n\
         # edits take effect within a second or two, without a restart.\n\
         [plugin.kvm]\n\
         libvirt = [\"test:///default\", \"qemu:///system\"]\n\
         timeout-ms = 120000\n\n\
         # `local` serves both the primary pool and the image store, so it writes to both. A\n\
         # driver serving only pools needs just to read the store: images-read = [\"file://{root}/images\"].\n\
         [plugin.local]\n\
         images = [\"file://{root}/primary\", \"file://{root}/images\"]\n"
    )
}

/// What the demo set up, for the start-up message.
#[derive(Debug, Clone)]
pub struct Summary {
    pub zone: String,
    pub template: String,
    pub offering: String,
    pub network: String,
}

/// Runs the set-up commands as the admin, unless the cloud already has a zone. `base`
/// is this server's own URL (it serves the template during the set-up).
pub async fn set_up(orch: &Orchestrator, dir: &DemoDir, base: &str) -> Result<Option<Summary>, DemoError> {
    let op = Operator::as_user(orch, "admin", "/").await.map_err(|_| DemoError::NoAdmin)?;
    if !op.list("listZones", &[]).await?.is_empty() {
        return Ok(None);
    }
    let zone = op
        .call(
            "createZone",
            &[
                ("name", "Demo"),
                ("networktype", "Advanced"),
                ("dns1", "8.8.8.8"),
                ("internaldns1", "10.0.0.2"),
                ("guestcidraddress", "10.1.1.0/24"),
            ],
        )
        .await?;
    let zone_id = id(&zone);
    let pod = op.call("createPod", &[("name", "demo-pod"), ("zoneid", &zone_id)]).await?;
    let cluster = op
        .call(
            "addCluster",
            &[
                ("clustername", "demo-cluster"),
                ("clustertype", "CloudManaged"),
                ("hypervisor", "Simulator"),
                ("podid", &id(&pod)),
                ("zoneid", &zone_id),
            ],
        )
        .await?;
    let cluster_id = id(&cluster);
    op.call(
        "addHost",
        &[
            ("hypervisor", "Simulator"),
            ("podid", &id(&pod)),
            ("zoneid", &zone_id),
            ("clusterid", &cluster_id),
            ("url", "test:///default"),
            ("username", "root"),
            ("password", "password"),
        ],
    )
    .await?;
    op.call(
        "createStoragePool",
        &[
            ("name", "demo-primary"),
            ("url", &dir.url("primary")),
            ("zoneid", &zone_id),
            ("clusterid", &cluster_id),
            ("scope", "cluster"),
        ],
    )
    .await?;
    op.call(
        "addImageStore",
        &[("provider", "Local"), ("name", "demo-images"), ("url", &dir.url("images")), ("zoneid", &zone_id)],
    )
    .await?;
    // The template comes from this server's own loopback address, which downloads may not
    // reach unless allowed: this one URL is, and nothing else on loopback.
    let template_url = format!("{base}{TEMPLATE_PATH}");
    orch.plugins.downloads().allow_own_url(&template_url);
    let template = op
        .call(
            "registerTemplate",
            &[
                ("name", "Demo Linux"),
                ("displaytext", "A small blank disk for trying things out"),
                ("url", &template_url),
                ("format", "QCOW2"),
                ("hypervisor", "Simulator"),
                ("zoneid", &zone_id),
                ("ispublic", "true"),
                ("isfeatured", "true"),
            ],
        )
        .await?;
    let template_id = id(&template);
    let physical = op
        .call(
            "createPhysicalNetwork",
            &[("name", "demo-physical"), ("zoneid", &zone_id), ("vlan", "100-199"), ("isolationmethods", "VLAN")],
        )
        .await?;
    let physical_id = id(&physical);
    op.call(
        "addTrafficType",
        &[("physicalnetworkid", &physical_id), ("traffictype", "Guest"), ("kvmnetworklabel", "ws-demo")],
    )
    .await?;
    // Public traffic and a range of documentation addresses (TEST-NET-2): networks get
    // their source NAT address on first deploy, and accounts may acquire more.
    op.call(
        "addTrafficType",
        &[("physicalnetworkid", &physical_id), ("traffictype", "Public"), ("kvmnetworklabel", "ws-demo-pub")],
    )
    .await?;
    op.call(
        "createVlanIpRange",
        &[
            ("zoneid", &zone_id),
            ("forvirtualnetwork", "true"),
            ("gateway", "198.51.100.1"),
            ("netmask", "255.255.255.0"),
            ("startip", "198.51.100.10"),
            ("endip", "198.51.100.250"),
        ],
    )
    .await?;
    op.call("updatePhysicalNetwork", &[("id", &physical_id), ("state", "Enabled")]).await?;
    let isolated =
        op.list("listNetworkOfferings", &[("name", "DefaultIsolatedNetworkOfferingWithSourceNatService")]).await?;
    let offering_id = isolated.first().map(id).unwrap_or_default();
    let network = op
        .call(
            "createNetwork",
            &[
                ("name", "demo-network"),
                ("displaytext", "Demo guest network"),
                ("networkofferingid", &offering_id),
                ("zoneid", &zone_id),
            ],
        )
        .await?;
    let offering = op
        .call(
            "createServiceOffering",
            &[
                ("name", "Small"),
                ("displaytext", "1 CPU, 512 MB"),
                ("cpunumber", "1"),
                ("cpuspeed", "1000"),
                ("memory", "512"),
            ],
        )
        .await?;
    op.call("updateZone", &[("id", &zone_id), ("allocationstate", "Enabled")]).await?;
    op.wait_template(&template_id, Duration::from_secs(120)).await.map_err(DemoError::Template)?;
    Ok(Some(Summary { zone: id(&zone), template: template_id, offering: id(&offering), network: id(&network) }))
}
