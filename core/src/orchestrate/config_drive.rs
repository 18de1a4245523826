//! Config drives: on a network whose offering has its UserData service provided by
//! ConfigDrive, a VM gets a second CD-ROM, an ISO labelled `config-2` holding its
//! userdata, SSH keys, password and metadata, in CloudStack's layout (`cloudstack/`) and
//! OpenStack's (`openstack/latest/`), which cloud-init's ConfigDrive datasource reads.
//!
//! The ISO lies beside the VM's root disk in its pool, written through the pool driver's
//! `images` grants and located by the driver as the volumes are. It is built at deploy,
//! again at every start (so a changed password, key or userdata reaches the guest at its
//! next boot) and whenever the domain is defined again, and removed at expunge.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::api::error::ApiError;
use crate::cloud::instances::{self, GuestAccess, InstanceRow};
use crate::cloud::networks::{self as nets, NicFilter};
use crate::cloud::volumes;
use crate::plugins::{Disk, DiskBus, DiskDevice};

use super::Orchestrator;

/// The drive's volume label, by which cloud-init finds it.
pub const LABEL: &str = "config-2";
/// The guest device of the config drive: the second SCSI CD-ROM (an attached ISO is sda).
pub const TARGET: &str = "sdb";
/// OpenStack's limit for a config drive, which CloudStack keeps too.
const MAX_BYTES: usize = 64 << 20;
/// How long writing or removing the ISO on its pool may take.
const STORAGE_DEADLINE: Duration = Duration::from_secs(60);

/// What goes on a VM's config drive.
#[derive(Debug, Clone, Default)]
pub struct DriveData {
    /// The VM's uuid (`vm-id`, OpenStack's `uuid`, which cloud-init takes as instance id).
    pub uuid: String,
    /// Its name on the host (`instance-id`), e.g. "i-2-14-VM".
    pub instance_name: String,
    /// Its host name (`local-hostname`).
    pub hostname: String,
    pub zone_name: String,
    /// This cloud's `cloud-identifier`, as the metadata service gives it.
    pub cloud_identifier: String,
    pub service_offering: String,
    /// The address of its default NIC, where it has one.
    pub ip: Option<String>,
    /// Its NICs, default first.
    pub nics: Vec<DriveNic>,
    pub access: GuestAccess,
}

/// A NIC as `network_data.json` describes it.
#[derive(Debug, Clone, Default)]
pub struct DriveNic {
    pub mac: String,
    /// Whether the network's DHCP service gives it its address.
    pub dhcp: bool,
    pub ip: Option<String>,
    pub netmask: Option<String>,
    pub gateway: Option<String>,
    pub dns: Vec<String>,
}

/// OpenStack's `network_data.json`: a link per NIC by MAC, and how it takes its address
/// (DHCP where the network has the service, else the address the NIC was given). Without
/// it cloud-init would leave the NICs unconfigured: an empty network_data.json is an empty
/// network configuration, not a request for its DHCP fallback.
fn network_data(nics: &[DriveNic]) -> Value {
    let mut links = Vec::new();
    let mut networks = Vec::new();
    let mut services = Vec::new();
    for (n, nic) in nics.iter().enumerate() {
        let link = format!("eth{n}");
        links.push(json!({ "id": link, "type": "phy", "ethernet_mac_address": nic.mac }));
        let mut network = if nic.dhcp {
            json!({ "id": format!("network{n}"), "link": link, "type": "ipv4_dhcp" })
        } else if let (Some(ip), Some(mask)) = (&nic.ip, &nic.netmask) {
            let mut net =
                json!({ "id": format!("network{n}"), "link": link, "type": "ipv4", "ip_address": ip, "netmask": mask });
            if let Some(gw) = nic.gateway.as_ref().filter(|_| n == 0) {
                net["routes"] = json!([{ "network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": gw }]);
            }
            net
        } else {
            continue;
        };
        network["network_id"] = json!(format!("network{n}"));
        networks.push(network);
        for dns in &nic.dns {
            let service = json!({ "type": "dns", "address": dns });
            if !services.contains(&service) {
                services.push(service);
            }
        }
    }
    json!({ "links": links, "networks": networks, "services": services })
}

fn file(path: &str, bytes: impl Into<Vec<u8>>) -> (String, Vec<u8>) {
    (path.to_owned(), bytes.into())
}

/// The files of the drive, by path inside the ISO. Empty values are left out, as
/// CloudStack does. Fails on stored userdata that is not base64.
pub fn drive_files(d: &DriveData) -> Result<Vec<(String, Vec<u8>)>, String> {
    let user_data = match d.access.user_data.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        Some(text) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| format!("the userdata of VM {} is not base64", d.hostname))?,
        ),
        None => None,
    };
    let public_keys: Vec<&str> = d.access.keys.iter().map(|(_, k)| k.trim()).collect();
    let cloud_identifier = d.cloud_identifier.clone();
    let ip = d.ip.clone().unwrap_or_default();
    let keys = public_keys.join("\n");
    let metadata: [(&str, &str); 10] = [
        ("service-offering", &d.service_offering),
        ("availability-zone", &d.zone_name),
        ("local-hostname", &d.hostname),
        ("local-ipv4", &ip),
        ("public-hostname", &d.hostname),
        ("public-ipv4", &ip),
        ("instance-id", &d.instance_name),
        ("vm-id", &d.uuid),
        ("public-keys", &keys),
        ("cloud-identifier", &cloud_identifier),
    ];
    let mut files = Vec::new();
    for (name, value) in metadata {
        if !value.is_empty() {
            files.push(file(&format!("cloudstack/metadata/{name}.txt"), value.as_bytes()));
        }
    }
    if let Some(data) = &user_data {
        files.push(file("cloudstack/userdata/user_data.txt", data.clone()));
        files.push(file("openstack/latest/user_data", data.clone()));
    }
    if let Some(password) = d.access.password.as_deref().filter(|p| !p.is_empty()) {
        files.push(file("cloudstack/password/vm_password.txt", password));
    }

    // OpenStack's names for the same data (CloudStack's mapping of its metadata files).
    let mut meta = Map::new();
    meta.insert("uuid".into(), json!(d.uuid));
    meta.insert("name".into(), json!(d.hostname));
    meta.insert("hostname".into(), json!(d.hostname));
    if !d.zone_name.is_empty() {
        meta.insert("availability_zone".into(), json!(d.zone_name));
    }
    if !d.access.keys.is_empty() {
        let by_name: Map<String, Value> = d.access.keys.iter().map(|(n, k)| (n.clone(), json!(k.trim()))).collect();
        let keys: Vec<Value> =
            d.access.keys.iter().map(|(n, k)| json!({ "type": "ssh", "name": n, "data": k.trim() })).collect();
        meta.insert("public_keys".into(), Value::Object(by_name));
        meta.insert("keys".into(), Value::Array(keys));
    }
    files.push(file("openstack/latest/meta_data.json", Value::Object(meta).to_string()));
    // No vendor data, as CloudStack writes it.
    files.push(file("openstack/latest/vendor_data.json", "{}"));
    files.push(file("openstack/latest/network_data.json", network_data(&d.nics).to_string()));
    Ok(files)
}

/// The ISO 9660 image (Rock Ridge and Joliet names) of `files`, labelled `config-2`,
/// made by genisoimage with the options CloudStack uses.
pub fn build_iso(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let dir = tempfile::Builder::new()
        .prefix("wasmstack-configdrive")
        .tempdir()
        .map_err(|e| format!("making a scratch folder: {e}"))?;
    let tree = dir.path().join("drive");
    for (path, bytes) in files {
        let at = tree.join(path);
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("making {}: {e}", parent.display()))?;
        }
        std::fs::write(&at, bytes).map_err(|e| format!("writing {}: {e}", at.display()))?;
    }
    let iso = dir.path().join("configdrive.iso");
    let program = ["genisoimage", "mkisofs"]
        .into_iter()
        .find(|p| which(p))
        .ok_or("neither genisoimage nor mkisofs is installed; the config drive needs one")?;
    let out = Command::new(program)
        .args(["-o"])
        .arg(&iso)
        .args(["-ldots", "-allow-lowercase", "-allow-multidot", "-cache-inodes", "-l", "-quiet", "-J", "-r", "-V"])
        .arg(LABEL)
        .arg(&tree)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {program}: {e}"))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{program} failed ({}): {}", out.status, text.trim()));
    }
    let bytes = std::fs::read(&iso).map_err(|e| format!("reading the ISO {program} made: {e}"))?;
    if bytes.len() > MAX_BYTES {
        return Err(format!("the config drive would take {} bytes, more than its limit of 64 MiB", bytes.len()));
    }
    Ok(bytes)
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The drive's path in its pool: beside the volumes, so that the pool's driver locates
/// it as it locates them (".iso": the driver calls it an ISO, raw to QEMU).
pub fn drive_path(vm_uuid: &str) -> String {
    format!("volumes/{vm_uuid}.config-2.iso")
}

/// A pool a config drive lies in: its driver, URL and name.
pub(super) struct DrivePool {
    pub driver: String,
    pub url: String,
    pub name: String,
}

/// `path` in the pool at `url` (a pool's settings ride in its query string).
fn pool_file_url(url: &str, path: &str) -> String {
    let base = url.split_once(['?', '#']).map_or(url, |(b, _)| b).trim_end_matches('/');
    format!("{base}/{path}")
}

impl Orchestrator {
    /// Whether any of a VM's networks hands out userdata on a config drive.
    async fn uses_config_drive(&self, i: &InstanceRow) -> Result<bool, ApiError> {
        let f = NicFilter { instance_uuid: Some(i.uuid.clone()), ..Default::default() };
        let (nics, _) = nets::list_nics(&self.db, &f, None).await?;
        for nic in nics {
            if let Some(n) = nets::network_by_id(&self.db, nic.network_id).await?
                && n.config_drive()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn drive_data(&self, i: &InstanceRow) -> Result<DriveData, ApiError> {
        let f = NicFilter { instance_uuid: Some(i.uuid.clone()), ..Default::default() };
        let (mut nics, _) = nets::list_nics(&self.db, &f, None).await?;
        nics.sort_by_key(|n| (n.is_default == 0, n.device_id));
        let mut drive_nics = Vec::new();
        for nic in &nics {
            let Some(n) = nets::network_by_id(&self.db, nic.network_id).await? else { continue };
            drive_nics.push(DriveNic {
                mac: nic.mac.clone(),
                dhcp: n.has_service("Dhcp") && nic.ip_address.is_some(),
                ip: nic.ip().map(|a| a.to_string()),
                netmask: n.netmask(),
                gateway: n.gateway.clone(),
                dns: n.dns(),
            });
        }
        Ok(DriveData {
            uuid: i.uuid.clone(),
            instance_name: i.instance_name.clone(),
            hostname: i.name.clone(),
            zone_name: i.zone_name.clone(),
            cloud_identifier: crate::cloud::guest_data::cloud_identifier(&self.db).await?,
            service_offering: i.offering_name.clone(),
            ip: nics.first().and_then(|n| n.ip()).map(|a| a.to_string()),
            nics: drive_nics,
            access: instances::guest_access(&self.db, i.id).await?,
        })
    }

    /// Builds VM `i`'s config drive and writes it into `pool`, replacing the one there.
    async fn write_config_drive(&self, i: &InstanceRow, pool: &DrivePool) -> Result<(), ApiError> {
        let data = self.drive_data(i).await?;
        let storage = self.storage_of(&pool.driver)?;
        let url = pool_file_url(&pool.url, &drive_path(&i.uuid));
        let (driver, name) = (pool.driver.clone(), i.name.clone());
        tokio::task::spawn_blocking(move || {
            let iso = drive_files(&data).and_then(|files| build_iso(&files))?;
            let deadline = Instant::now() + STORAGE_DEADLINE;
            crate::plugins::put_file(&driver, &storage.plugin().grants, &url, &iso, deadline)
        })
        .await
        .map_err(|e| ApiError::internal(format!("building a config drive crashed: {e}")))?
        .map_err(|e| ApiError::internal(format!("Building the config drive of VM {name}: {e}")))
    }

    /// VM `i`'s config drive, built afresh in `pool` (its root disk's), when one of its
    /// networks hands out userdata on a config drive; none otherwise.
    pub(super) async fn config_drive_disk(&self, i: &InstanceRow, pool: &DrivePool) -> Result<Option<Disk>, ApiError> {
        if !self.uses_config_drive(i).await? {
            return Ok(None);
        }
        self.write_config_drive(i, pool).await?;
        let (url, path) = (pool.url.clone(), drive_path(&i.uuid));
        let what = format!("Locating the config drive of VM {}", i.name);
        let locator = self.on_driver(&pool.driver, what, move |d| d.locate(&url, &path)).await?;
        self.check_locator(&pool.driver, &pool.name, &pool.url, &locator)?;
        Ok(Some(Disk {
            locator: Some(locator),
            device: DiskDevice::Cdrom,
            bus: DiskBus::Scsi,
            target: TARGET.into(),
            read_only: true,
            boot_order: None,
        }))
    }

    /// The pool of VM `i`'s root disk, where its config drive lies.
    async fn root_pool_of(&self, i: &InstanceRow) -> Result<Option<DrivePool>, ApiError> {
        let Some(uuid) = instances::root_volume_uuid(&self.db, i).await? else { return Ok(None) };
        Ok(volumes::volume(&self.db, &uuid).await?.map(|v| DrivePool {
            driver: v.pool_driver,
            url: v.pool_url,
            name: v.pool_name,
        }))
    }

    /// Writes VM `i`'s config drive again from what the database holds now (its domain
    /// already names the file): before a start, and after its password, keys or userdata
    /// changed. Nothing for a VM without a config drive.
    pub(crate) async fn refresh_config_drive(&self, i: &InstanceRow) -> Result<(), ApiError> {
        if !self.uses_config_drive(i).await? {
            return Ok(());
        }
        match self.root_pool_of(i).await? {
            Some(pool) => self.write_config_drive(i, &pool).await,
            None => Ok(()),
        }
    }

    /// Removes VM `i`'s config drive from its pool (before its root disk's record goes).
    pub(super) async fn drop_config_drive(&self, i: &InstanceRow) -> Result<(), ApiError> {
        let Some(pool) = self.root_pool_of(i).await? else { return Ok(()) };
        let storage = self.storage_of(&pool.driver)?;
        let url = pool_file_url(&pool.url, &drive_path(&i.uuid));
        let driver = pool.driver.clone();
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + STORAGE_DEADLINE;
            crate::plugins::remove_file(&driver, &storage.plugin().grants, &url, deadline)
        })
        .await
        .map_err(|e| ApiError::internal(format!("removing a config drive crashed: {e}")))?
        .map_err(|e| ApiError::internal(format!("Removing the config drive of VM {}: {e}", i.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> DriveData {
        DriveData {
            uuid: "3f1c2a8e-5b7d-4e21-9c0a-1d2e3f4a5b6c".into(),
            instance_name: "i-2-3-VM".into(),
            hostname: "web1".into(),
            zone_name: "zone1".into(),
            cloud_identifier: "CloudStack-{a0b1c2d3-0000-4000-8000-000000000001}".into(),
            service_offering: "Small".into(),
            ip: Some("10.1.1.5".into()),
            nics: vec![
                DriveNic {
                    mac: "02:00:11:22:33:44".into(),
                    dhcp: true,
                    ip: Some("10.1.1.5".into()),
                    netmask: Some("255.255.255.0".into()),
                    gateway: Some("10.1.1.1".into()),
                    dns: vec!["10.1.1.1".into()],
                },
                DriveNic {
                    mac: "02:00:11:22:33:55".into(),
                    dhcp: false,
                    ip: Some("10.2.2.9".into()),
                    netmask: Some("255.255.255.0".into()),
                    gateway: Some("10.2.2.1".into()),
                    dns: vec!["10.1.1.1".into()],
                },
                DriveNic { mac: "02:00:11:22:33:66".into(), ..Default::default() },
            ],
            access: GuestAccess {
                user_data: Some("IyEvYmluL3NoCmVjaG8gaGkK".into()),
                password: Some("s3cret".into()),
                keys: vec![("mykey".into(), "ssh-ed25519 AAAAC3Nza user@host\n".into())],
            },
        }
    }

    fn get<'a>(files: &'a [(String, Vec<u8>)], path: &str) -> Option<&'a str> {
        files.iter().find(|(p, _)| p == path).map(|(_, b)| std::str::from_utf8(b).unwrap())
    }

    #[test]
    fn both_layouts_carry_the_same_data() {
        let files = drive_files(&data()).unwrap();
        assert_eq!(get(&files, "openstack/latest/user_data"), Some("#!/bin/sh\necho hi\n"));
        assert_eq!(get(&files, "cloudstack/userdata/user_data.txt"), Some("#!/bin/sh\necho hi\n"));
        assert_eq!(get(&files, "cloudstack/password/vm_password.txt"), Some("s3cret"));
        assert_eq!(get(&files, "cloudstack/metadata/instance-id.txt"), Some("i-2-3-VM"));
        assert_eq!(get(&files, "cloudstack/metadata/vm-id.txt"), Some("3f1c2a8e-5b7d-4e21-9c0a-1d2e3f4a5b6c"));
        assert_eq!(get(&files, "cloudstack/metadata/local-ipv4.txt"), Some("10.1.1.5"));
        assert_eq!(get(&files, "cloudstack/metadata/public-keys.txt"), Some("ssh-ed25519 AAAAC3Nza user@host"));
        assert_eq!(get(&files, "openstack/latest/vendor_data.json"), Some("{}"));
        let net: Value = serde_json::from_str(get(&files, "openstack/latest/network_data.json").unwrap()).unwrap();
        assert_eq!(net["links"].as_array().unwrap().len(), 3, "{net}");
        assert_eq!(net["links"][1]["ethernet_mac_address"], "02:00:11:22:33:55");
        let networks = net["networks"].as_array().unwrap();
        assert_eq!(networks.len(), 2, "a NIC without an address gets only its link: {net}");
        assert_eq!(networks[0]["type"], "ipv4_dhcp");
        assert_eq!((&networks[1]["type"], &networks[1]["ip_address"]), (&json!("ipv4"), &json!("10.2.2.9")));
        assert!(networks[1].get("routes").is_none(), "only the default NIC routes: {net}");
        assert_eq!(net["services"], json!([{ "type": "dns", "address": "10.1.1.1" }]));
        let meta: Value = serde_json::from_str(get(&files, "openstack/latest/meta_data.json").unwrap()).unwrap();
        assert_eq!(meta["uuid"], "3f1c2a8e-5b7d-4e21-9c0a-1d2e3f4a5b6c");
        assert_eq!(meta["hostname"], "web1");
        assert_eq!(meta["availability_zone"], "zone1");
        assert_eq!(meta["public_keys"]["mykey"], "ssh-ed25519 AAAAC3Nza user@host");
        assert_eq!(meta["keys"][0]["type"], "ssh");
    }

    #[test]
    fn nothing_given_leaves_files_out() {
        let mut d = data();
        d.access = GuestAccess::default();
        d.ip = None;
        let files = drive_files(&d).unwrap();
        for absent in [
            "openstack/latest/user_data",
            "cloudstack/userdata/user_data.txt",
            "cloudstack/password/vm_password.txt",
            "cloudstack/metadata/public-keys.txt",
            "cloudstack/metadata/local-ipv4.txt",
        ] {
            assert!(get(&files, absent).is_none(), "{absent} is there");
        }
        let meta: Value = serde_json::from_str(get(&files, "openstack/latest/meta_data.json").unwrap()).unwrap();
        assert!(meta.get("public_keys").is_none());
    }

    #[test]
    fn userdata_that_is_not_base64_is_refused() {
        let mut d = data();
        d.access.user_data = Some("not base64!".into());
        assert!(drive_files(&d).unwrap_err().contains("not base64"));
    }

    #[test]
    fn pool_settings_stay_out_of_the_file_url() {
        assert_eq!(
            pool_file_url("file:///srv/pool?quota-mib=5", "volumes/x.config-2.iso"),
            "file:///srv/pool/volumes/x.config-2.iso"
        );
        assert_eq!(pool_file_url("nfs://h/export/", "volumes/y.iso"), "nfs://h/export/volumes/y.iso");
    }
}
