//! What lets an owner into a guest: SSH key pairs (createSSHKeyPair, registerSSHKeyPair,
//! listSSHKeyPairs, deleteSSHKeyPair, resetSSHKeyForVirtualMachine), userdata (inline on
//! deploy and updateVirtualMachine, stored with registerUserData and linked to templates)
//! and one-time passwords (resetPasswordForVirtualMachine, and on deploy of a
//! password-enabled template).
//!
//! An instance keeps copies: its keys in `instance_ssh_keys`, its userdata as base64 text,
//! a new password in `password_pending` until the password service hands it out. The
//! guest gets them from the metadata and password services or its config drive.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};

use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::{GroupChoice, GuestAccessRequest, Listing, OwnerRef, UserDataInput};
use crate::auth::Caller;
use crate::cloud::guest_access::{
    self as access, GuestAccessError, InstanceUserData, KeyPairFilter, KeyPairRow, NewKeyPair, NewUserData,
    UserDataFilter, UserDataRow,
};
use crate::cloud::instances::{InstanceRow, VmState};
use crate::cloud::templates;
use crate::db::DbError;
use crate::jobs::JobSpec;

use super::{Orchestrator, list, no_such, not_yours, object, views};

/// The key types CloudStack accepts in registerSSHKeyPair.
const KEY_TYPES: &[&str] =
    &["ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-ed25519"];

/// The size of generated RSA keys (CloudStack's `ssh.key.length` default).
const RSA_BITS: usize = 2048;

/// Userdata limits, on the base64 text: by GET, by POST, and the configurable maximum
/// (`vm.userdata.max.length`, CloudStack's default).
const USER_DATA_GET_MAX: usize = 4096;
const USER_DATA_POST_MAX: usize = 1_048_576;
const USER_DATA_MAX: usize = 32_768;

/// The file names of the metadata service: stored userdata may not name its variables so.
const METADATA_NAMES: &[&str] = &[
    "service-offering",
    "availability-zone",
    "local-hostname",
    "local-ipv4",
    "public-hostname",
    "public-ipv4",
    "instance-id",
    "vm-id",
    "public-keys",
    "cloud-identifier",
    "cloud-name",
    "hypervisor-host-name",
];

/// The userdata override policies of a template's linked userdata.
const POLICIES: &[&str] = &["ALLOWOVERRIDE", "APPEND", "DENYOVERRIDE"];

fn invalid(text: impl Into<String>) -> ApiError {
    ApiError::invalid_param(text)
}

/// MD5 of a key blob as CloudStack shows it: lowercase hex pairs joined by colons.
pub(crate) fn fingerprint(blob: &[u8]) -> String {
    Md5::digest(blob).iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// An OpenSSH public key line (or its base64) as CloudStack keeps it: `type base64`, the
/// comment dropped; with its fingerprint. Anything else is "Public key is invalid".
pub(crate) fn parse_public_key(material: &str) -> Result<(String, String), ApiError> {
    let bad = || invalid("Public key is invalid");
    let material = material.trim();
    let decoded;
    let line = if material.contains(' ') {
        material
    } else {
        decoded = String::from_utf8(STANDARD.decode(material).map_err(|_| bad())?).map_err(|_| bad())?;
        decoded.trim()
    };
    let mut fields = line.split_whitespace();
    let (Some(kind), Some(data)) = (fields.next(), fields.next()) else {
        return Err(bad());
    };
    if !KEY_TYPES.contains(&kind) {
        return Err(bad());
    }
    let blob = STANDARD.decode(data).map_err(|_| bad())?;
    // The blob names its own type first (an SSH string: length, then the name).
    let named =
        blob.get(..4).map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize).and_then(|n| blob.get(4..4 + n));
    if named != Some(kind.as_bytes()) {
        return Err(bad());
    }
    Ok((format!("{kind} {data}"), fingerprint(&blob)))
}

/// An SSH wire string or mpint: length, then the bytes.
fn ssh_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// An unsigned integer as an SSH mpint (a leading zero keeps it positive).
fn ssh_mpint(out: &mut Vec<u8>, be: &[u8]) {
    let trimmed: &[u8] = &be[be.iter().take_while(|b| **b == 0).count()..];
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v = vec![0];
        v.extend_from_slice(trimmed);
        ssh_bytes(out, &v);
    } else {
        ssh_bytes(out, trimmed);
    }
}

/// A new RSA key pair: the OpenSSH public line and the private key as PKCS#1 PEM, the
/// form CloudStack hands out.
fn generate_key_pair() -> Result<(String, String), ApiError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
        .map_err(|e| ApiError::internal(format!("generating an RSA key failed: {e}")))?;
    let mut blob = Vec::new();
    ssh_bytes(&mut blob, b"ssh-rsa");
    ssh_mpint(&mut blob, &key.e().to_bytes_be());
    ssh_mpint(&mut blob, &key.n().to_bytes_be());
    let private = key
        .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
        .map_err(|e| ApiError::internal(format!("encoding an RSA key failed: {e}")))?;
    Ok((format!("ssh-rsa {}", STANDARD.encode(&blob)), private.to_string()))
}

/// A new random password: letters and digits, none of the easily confused ones, with at
/// least one lower-case letter, one upper-case letter and one digit.
pub(crate) fn new_password() -> String {
    use rand::Rng;
    const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"23456789";
    let mut rng = rand::rng();
    let all: Vec<u8> = [LOWER, UPPER, DIGITS].concat();
    let mut chars: Vec<u8> = (0..9).map(|_| all[rng.random_range(0..all.len())]).collect();
    for set in [LOWER, UPPER, DIGITS] {
        let at = rng.random_range(0..=chars.len());
        chars.insert(at, set[rng.random_range(0..set.len())]);
    }
    String::from_utf8(chars).unwrap_or_default()
}

/// One `%xx`-decoding pass (`+` is a space), as CloudStack applies to userdata that
/// still holds a `%`.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Userdata checked as CloudStack checks it: base64 (either alphabet, padding optional,
/// whitespace ignored), not empty once decoded, within the limit of the request's
/// method and the configured maximum. Returns it re-encoded with padding.
pub(crate) fn check_user_data(value: &str, posted: bool) -> Result<String, ApiError> {
    let value = if value.contains('%') { percent_decode(value) } else { value.to_owned() };
    let not_base64 = || invalid("User data is not base64 encoded.");
    let is_alphabet = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_' | '=');
    if !value.chars().all(|c| is_alphabet(c) || c.is_ascii_whitespace()) {
        return Err(not_base64());
    }
    let compact: String = value
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let unpadded = compact.trim_end_matches('=');
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    let decoded = engine.decode(unpadded).map_err(|_| not_base64())?;
    if decoded.is_empty() {
        return Err(invalid("User data is too short."));
    }
    let (limit, method) = if posted { (USER_DATA_POST_MAX, "POST") } else { (USER_DATA_GET_MAX, "GET") };
    if value.len() > limit {
        return Err(invalid(format!("User data is too long for http {method} request")));
    }
    if value.len() > USER_DATA_MAX {
        return Err(invalid(format!("User data has exceeded configurable max length: {USER_DATA_MAX}")));
    }
    Ok(STANDARD.encode(decoded))
}

/// Two userdata joined (APPEND): the template's bytes, then the given ones.
fn concatenate(first: &str, second: &str) -> Result<String, ApiError> {
    let a = STANDARD.decode(first).map_err(|_| invalid("User data is not base64 encoded."))?;
    let b = STANDARD.decode(second).map_err(|_| invalid("User data is not base64 encoded."))?;
    Ok(STANDARD.encode([a, b].concat()))
}

/// How CloudStack's messages name a VM.
fn vm_text(vm: &InstanceRow) -> String {
    format!("VM[User|{}]", vm.instance_name)
}

fn keypair_view(k: &KeyPairRow) -> Map<String, Value> {
    views::object(json!({
        "id": k.uuid,
        "name": k.name,
        "fingerprint": k.fingerprint,
        "account": k.account_name,
        "accountid": k.account_uuid,
        "domainid": k.domain_uuid,
        "domain": k.domain_name,
    }))
}

fn user_data_view(u: &UserDataRow) -> Map<String, Value> {
    views::object(json!({
        "id": u.uuid,
        "name": u.name,
        "account": u.account_name,
        "accountid": u.account_uuid,
        "domainid": u.domain_uuid,
        "domain": u.domain_name,
        "userdata": u.data,
        "params": u.params,
    }))
}

impl Orchestrator {
    pub(super) async fn execute_guest_access(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        request: GuestAccessRequest,
    ) -> Result<Reply, ApiError> {
        use GuestAccessRequest::*;
        match request {
            CreateKeyPair { name, owner } => Box::pin(self.create_key_pair(caller, &name, &owner)).await,
            RegisterKeyPair { name, public_key, owner } => {
                Box::pin(self.register_key_pair(caller, &name, &public_key, &owner)).await
            }
            ListKeyPairs { id, name, fingerprint, listing } => {
                Box::pin(self.list_key_pairs(
                    caller,
                    KeyPairFilter { uuid: id, name, fingerprint, keyword: None },
                    listing,
                ))
                .await
            }
            DeleteKeyPair { name, owner } => Box::pin(self.delete_key_pair(caller, &name, &owner)).await,
            ResetKeys { vm_id, names, owner } => Box::pin(self.reset_keys(caller, cmd, &vm_id, names, &owner)).await,
            ResetPassword { vm_id } => Box::pin(self.reset_password(caller, cmd, &vm_id)).await,
            UpdateVm { id, display_name, user_data, security_groups } => {
                Box::pin(self.update_vm(caller, &id, display_name, user_data, security_groups)).await
            }
            GetUserData { vm_id } => Box::pin(self.get_user_data(caller, &vm_id)).await,
            RegisterUserData { name, data, params, owner, posted } => {
                Box::pin(self.register_user_data(caller, &name, &data, params, &owner, posted)).await
            }
            ListUserData { id, name, listing } => {
                let f = UserDataFilter { uuid: id, name, keyword: listing.keyword.clone() };
                let scope = self.scope(caller, &listing).await?;
                let (rows, total) = access::list_user_data(&self.db, &scope, &f, listing.page).await?;
                Ok(list("userdata", total, rows.iter().map(user_data_view).collect()))
            }
            DeleteUserData { id, owner } => Box::pin(self.delete_user_data(caller, &id, &owner)).await,
            LinkUserData { template_id, iso_id, user_data_id, policy } => {
                Box::pin(self.link_user_data(caller, template_id, iso_id, user_data_id, policy)).await
            }
        }
    }

    /// The account a command acts for, with its name: the named one, else the caller's.
    async fn owner_named(&self, caller: &Caller, owner: &OwnerRef) -> Result<(i64, i64, String), ApiError> {
        let (account_id, domain_id) = self.owner(caller, owner.account.as_deref(), owner.domain_id.as_deref()).await?;
        let a = crate::auth::store::account_by_id(&self.db, account_id)
            .await?
            .ok_or_else(|| ApiError::internal("the owner's account is gone"))?;
        Ok((account_id, domain_id, a.name))
    }

    // ---------------------------------------------------------------- key pairs

    async fn key_pair_reply(&self, uuid: &str, private_key: Option<String>) -> Result<Reply, ApiError> {
        let f = KeyPairFilter { uuid: Some(uuid.to_owned()), ..Default::default() };
        let (rows, _) = access::list_keypairs(&self.db, &Default::default(), &f, None).await?;
        let k = rows.first().ok_or_else(|| no_such("ssh keypair", uuid))?;
        let mut view = keypair_view(k);
        if let Some(p) = private_key {
            view.insert("privatekey".into(), Value::String(p));
        }
        Ok(object("keypair", view))
    }

    async fn create_key_pair(&self, caller: &Caller, name: &str, owner: &OwnerRef) -> Result<Reply, ApiError> {
        let (account_id, domain_id, _) = self.owner_named(caller, owner).await?;
        if !access::keypairs_named(&self.db, account_id, &[name.to_owned()]).await?.is_empty() {
            return Err(invalid(format!("A key pair with name '{name}' already exists.")));
        }
        // Key generation takes a CPU for a moment: off the async runtime.
        let (public, private) = tokio::task::spawn_blocking(generate_key_pair)
            .await
            .map_err(|e| ApiError::internal(format!("key generation crashed: {e}")))??;
        let (public, print) = parse_public_key(&public)?;
        let new = NewKeyPair { account_id, domain_id, name, fingerprint: &print, public_key: &public };
        let uuid = access::insert_keypair(&self.db, &new).await.map_err(|e| match e {
            GuestAccessError::NameTaken(_) => invalid(format!("A key pair with name '{name}' already exists.")),
            other => key_error(other),
        })?;
        self.audit(caller, "REGISTER.SSH.KEYPAIR", ("SSHKeyPair", &uuid, name), format!("SSH key pair {name} created"))
            .await?;
        self.key_pair_reply(&uuid, Some(private)).await
    }

    async fn register_key_pair(
        &self,
        caller: &Caller,
        name: &str,
        material: &str,
        owner: &OwnerRef,
    ) -> Result<Reply, ApiError> {
        let (account_id, domain_id, _) = self.owner_named(caller, owner).await?;
        let (public, print) = parse_public_key(material)?;
        let new = NewKeyPair { account_id, domain_id, name, fingerprint: &print, public_key: &public };
        let uuid = access::insert_keypair(&self.db, &new).await.map_err(|e| match e {
            GuestAccessError::NameTaken(_) => {
                invalid(format!("A key pair with name '{name}' already exists for this account."))
            }
            GuestAccessError::KeyTaken(_) => {
                invalid(format!("A key pair with key '{public}' already exists for this account."))
            }
            other => key_error(other),
        })?;
        self.audit(
            caller,
            "REGISTER.SSH.KEYPAIR",
            ("SSHKeyPair", &uuid, name),
            format!("SSH key pair {name} registered"),
        )
        .await?;
        self.key_pair_reply(&uuid, None).await
    }

    async fn list_key_pairs(&self, caller: &Caller, mut f: KeyPairFilter, listing: Listing) -> Result<Reply, ApiError> {
        f.keyword = listing.keyword.clone();
        let scope = self.scope(caller, &listing).await?;
        let (rows, total) = access::list_keypairs(&self.db, &scope, &f, listing.page).await?;
        Ok(list("sshkeypair", total, rows.iter().map(keypair_view).collect()))
    }

    async fn delete_key_pair(&self, caller: &Caller, name: &str, owner: &OwnerRef) -> Result<Reply, ApiError> {
        let (account_id, _, account) = self.owner_named(caller, owner).await?;
        let found = access::keypairs_named(&self.db, account_id, &[name.to_owned()]).await?;
        let k = found.first().ok_or_else(|| {
            invalid(format!(
                "A key pair with name '{name}' does not exist for account {account} in specified domain id"
            ))
        })?;
        access::remove_keypair(&self.db, k.id).await?;
        self.audit(caller, "DELETE.SSH.KEYPAIR", ("SSHKeyPair", &k.uuid, name), format!("SSH key pair {name} deleted"))
            .await?;
        Ok(Reply::Success { display_text: None })
    }

    /// The key pairs `names` of an account, as (name, public key); 431 unless all exist.
    pub(super) async fn instance_key_pairs(
        &self,
        account_id: i64,
        names: &[String],
    ) -> Result<Vec<(String, String)>, ApiError> {
        let found = access::keypairs_named(&self.db, account_id, names).await?;
        if found.len() != names.len() {
            return Err(invalid("Not all specified keypairs exist"));
        }
        Ok(found.into_iter().map(|k| (k.name, k.public_key)).collect())
    }

    async fn vm_access_job(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        class: &str,
        uuid: &str,
        work: impl Future<Output = Result<Map<String, Value>, ApiError>> + Send + 'static,
    ) -> Result<Reply, ApiError> {
        let class = format!("org.apache.cloudstack.api.command.user.vm.{class}");
        let spec = JobSpec { cmd: &class, command: cmd.name, instance: Some(("VirtualMachine", uuid.to_owned())) };
        let job = self.jobs.submit(caller, spec, work).await?;
        Ok(Reply::AsyncJob { job_id: job, id: Some(uuid.to_owned()) })
    }

    /// The job result of a VM change: the VM, with the new password when one was set.
    pub(super) async fn vm_result(
        &self,
        caller: &Caller,
        uuid: &str,
        password: Option<String>,
    ) -> Result<Map<String, Value>, ApiError> {
        let mut reply = self.vm_reply(caller, uuid).await?;
        if let (Some(p), Some(Value::Object(vm))) = (password, reply.get_mut("virtualmachine")) {
            vm.insert("password".into(), Value::String(p));
        }
        Ok(reply)
    }

    /// Refuses a reset whose VM was started after the request was accepted.
    async fn still_stopped(&self, vm: &InstanceRow, what: &str) -> Result<(), ApiError> {
        let now = crate::cloud::instances::instance(&self.db, &vm.uuid).await?;
        match now {
            Some(i) if i.state == VmState::Stopped => Ok(()),
            _ => Err(invalid(format!("Vm {} should be stopped to do {what}", vm_text(vm)))),
        }
    }

    async fn reset_keys(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        vm_id: &str,
        names: Vec<String>,
        owner: &OwnerRef,
    ) -> Result<Reply, ApiError> {
        let vm = self.vm_for(caller, vm_id).await?;
        if matches!(vm.state, VmState::Error | VmState::Expunging | VmState::Expunged) {
            return Err(invalid("Vm with specified id is not in the right state"));
        }
        if vm.state != VmState::Stopped {
            return Err(invalid(format!("Vm {} should be stopped to do SSH Key reset", vm_text(&vm))));
        }
        if names.is_empty() {
            return Err(invalid("'keypair' or 'keypairs' must be specified"));
        }
        // The keys are the VM owner's unless another account is named.
        let account_id = match &owner.account {
            Some(_) => self.owner_named(caller, owner).await?.0,
            None => vm.account_id,
        };
        let keys = self.instance_key_pairs(account_id, &names).await?;
        let (me, who, uuid) = (self.clone(), caller.clone(), vm.uuid.clone());
        let work = async move {
            me.still_stopped(&vm, "SSH Key reset").await?;
            let password = (vm.template_password_enabled != 0).then(new_password);
            let mut tx = me.db.begin().await.map_err(DbError::from)?;
            access::set_instance_keys(&mut tx, vm.id, &keys).await?;
            if let Some(p) = &password {
                access::set_password_pending(&mut tx, vm.id, Some(p)).await?;
            }
            let names: Vec<&str> = keys.iter().map(|(n, _)| n.as_str()).collect();
            Orchestrator::audit_in(
                &mut tx,
                &who,
                "VM.RESETSSHKEY",
                ("VirtualMachine", &vm.uuid, &vm.name),
                format!("SSH keys of VM {} reset to {}", vm.name, names.join(",")),
            )
            .await?;
            tx.commit().await.map_err(DbError::from)?;
            me.vm_result(&who, &vm.uuid, password).await
        };
        self.vm_access_job(caller, cmd, "ResetVMSSHKeyCmd", &uuid, work).await
    }

    async fn reset_password(&self, caller: &Caller, cmd: &'static Command, vm_id: &str) -> Result<Reply, ApiError> {
        let vm = self.vm_for(caller, vm_id).await?;
        if matches!(vm.state, VmState::Error | VmState::Expunging | VmState::Expunged) {
            return Err(invalid(format!("Vm with id {vm_id} is not in the right state")));
        }
        if vm.template_password_enabled == 0 {
            return Err(invalid("Fail to reset password for the Instance, the Template is not password enabled"));
        }
        if vm.state != VmState::Stopped {
            return Err(invalid(format!("Vm {} should be stopped to do password reset", vm_text(&vm))));
        }
        let (me, who, uuid) = (self.clone(), caller.clone(), vm.uuid.clone());
        let work = async move {
            me.still_stopped(&vm, "password reset").await?;
            let password = new_password();
            let mut tx = me.db.begin().await.map_err(DbError::from)?;
            access::set_password_pending(&mut tx, vm.id, Some(&password)).await?;
            Orchestrator::audit_in(
                &mut tx,
                &who,
                "VM.RESETPASSWORD",
                ("VirtualMachine", &vm.uuid, &vm.name),
                format!("Password of VM {} reset", vm.name),
            )
            .await?;
            tx.commit().await.map_err(DbError::from)?;
            me.vm_result(&who, &vm.uuid, Some(password)).await
        };
        self.vm_access_job(caller, cmd, "ResetVMPasswordCmd", &uuid, work).await
    }

    // ---------------------------------------------------------------- userdata

    /// The userdata an instance gets, from what the request gave and the template's linked
    /// userdata under its policy (`template`: id and name). `None` when there is none.
    pub(super) async fn finalize_user_data(
        &self,
        caller: &Caller,
        input: &UserDataInput,
        template: Option<(i64, &str)>,
    ) -> Result<Option<InstanceUserData>, ApiError> {
        let inline = match &input.data {
            Some(d) if !d.is_empty() => Some(check_user_data(d, input.posted)?),
            _ => None,
        };
        let stored = match &input.id {
            Some(id) => {
                let u = access::user_data(&self.db, id).await?.ok_or_else(|| no_such("userdata", id))?;
                if !caller.can_reach(&u) {
                    return Err(not_yours("userdata", id));
                }
                Some(u)
            }
            None => None,
        };
        if inline.is_some() && stored.is_some() {
            return Err(invalid("Both userdata and userdata ID inputs are not allowed, please provide only one"));
        }
        let link = match template {
            Some((id, _)) => access::template_link(&self.db, id).await?,
            None => None,
        };
        let details = |u: &UserDataRow| -> Option<String> {
            let wanted = u.param_names();
            let values: BTreeMap<&String, &String> = input.details.iter().filter(|(k, _)| wanted.contains(k)).collect();
            (!values.is_empty()).then(|| serde_json::to_string(&values).unwrap_or_default())
        };
        let from_stored = |u: &UserDataRow| InstanceUserData {
            user_data: Some(u.data.clone()),
            user_data_id: Some(u.id),
            user_data_details: details(u),
        };
        let Some((linked_id, policy)) = link else {
            return Ok(match (stored, inline) {
                (Some(u), _) => Some(from_stored(&u)),
                (None, Some(d)) => Some(InstanceUserData { user_data: Some(d), ..Default::default() }),
                (None, None) => None,
            });
        };
        let template_name = template.map(|(_, n)| n).unwrap_or_default();
        let linked = access::user_data_by_id(&self.db, linked_id).await?.ok_or_else(|| {
            ApiError::internal(format!("UserData linked to the template {template_name} is not found"))
        })?;
        let given = stored.is_some() || inline.is_some();
        Ok(Some(match policy.as_str() {
            "DENYOVERRIDE" if given => {
                return Err(ApiError::internal(format!(
                    "UserData input is not allowed here since template {template_name} is configured to deny any \
                     userdata"
                )));
            }
            "APPEND" => match (stored, inline) {
                (Some(u), _) => InstanceUserData {
                    user_data: Some(concatenate(&linked.data, &u.data)?),
                    user_data_id: Some(u.id),
                    user_data_details: details(&u),
                },
                (None, Some(d)) => InstanceUserData {
                    user_data: Some(concatenate(&linked.data, &d)?),
                    user_data_id: Some(linked.id),
                    user_data_details: details(&linked),
                },
                (None, None) => from_stored(&linked),
            },
            _ => match (stored, inline) {
                (Some(u), _) => from_stored(&u),
                (None, Some(d)) => InstanceUserData { user_data: Some(d), ..Default::default() },
                (None, None) => from_stored(&linked),
            },
        }))
    }

    async fn update_vm(
        &self,
        caller: &Caller,
        id: &str,
        display_name: Option<String>,
        input: UserDataInput,
        security_groups: GroupChoice,
    ) -> Result<Reply, ApiError> {
        let vm = self.vm_for(caller, id).await?;
        if matches!(vm.state, VmState::Error | VmState::Expunging | VmState::Expunged | VmState::Destroyed) {
            return Err(invalid(format!("Vm with id {id} is not in the right state")));
        }
        let groups = if security_groups.given() {
            let networks = self.instance_networks(&vm).await?;
            let ids = self.instance_group_ids(caller, vm.account_id, vm.domain_id, &security_groups, &networks).await?;
            if vm.state != VmState::Stopped {
                return Err(invalid(format!("VM {} must be stopped prior to update security groups", vm.uuid)));
            }
            Some(ids)
        } else {
            None
        };
        let given = input.data.as_deref().is_some_and(|d| !d.is_empty()) || input.id.is_some();
        let user_data = if given {
            self.finalize_user_data(caller, &input, Some((vm.template_id, &vm.template_name))).await?
        } else {
            None
        };
        let mut tx = self.db.begin().await.map_err(DbError::from)?;
        if let Some(name) = &display_name {
            access::set_display_name(&mut tx, vm.id, name).await?;
        }
        if let Some(u) = &user_data {
            access::set_instance_user_data(&mut tx, vm.id, u).await?;
        }
        if let Some(ids) = &groups {
            crate::cloud::security_groups::set_instance_groups(&mut tx, vm.id, ids).await?;
        }
        Orchestrator::audit_in(
            &mut tx,
            caller,
            "VM.UPDATE",
            ("VirtualMachine", &vm.uuid, &vm.name),
            format!("VM {} updated", vm.name),
        )
        .await?;
        tx.commit().await.map_err(DbError::from)?;
        if groups.is_some() {
            // The VM is stopped, but other groups' rules may name the groups it left or joined.
            self.instance_security_changed(&vm.uuid).await;
        }
        if user_data.is_some() {
            // A running VM's config drive holds the new userdata at once, as CloudStack's does.
            self.refresh_config_drive(&vm).await?;
        }
        let reply = self.vm_reply(caller, &vm.uuid).await?;
        match reply.get("virtualmachine") {
            Some(Value::Object(v)) => Ok(object("virtualmachine", v.clone())),
            _ => Err(no_such("virtual machine", id)),
        }
    }

    async fn get_user_data(&self, caller: &Caller, vm_id: &str) -> Result<Reply, ApiError> {
        let vm = self.vm_for(caller, vm_id).await?;
        let u = access::instance_user_data(&self.db, vm.id).await?;
        let stored = match u.user_data_id {
            Some(id) => access::user_data_by_id(&self.db, id).await?,
            None => None,
        };
        Ok(object(
            "virtualmachineuserdata",
            views::object(json!({
                "virtualmachineid": vm.uuid,
                "userdata": u.user_data,
                "userdataid": stored.as_ref().map(|s| s.uuid.clone()),
                "userdataname": stored.as_ref().map(|s| s.name.clone()),
            })),
        ))
    }

    async fn register_user_data(
        &self,
        caller: &Caller,
        name: &str,
        data: &str,
        params: Option<String>,
        owner: &OwnerRef,
        posted: bool,
    ) -> Result<Reply, ApiError> {
        let (account_id, domain_id, _) = self.owner_named(caller, owner).await?;
        let params: Vec<String> =
            params.unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect();
        let reserved: Vec<&str> = params.iter().map(String::as_str).filter(|p| METADATA_NAMES.contains(p)).collect();
        if !reserved.is_empty() {
            return Err(invalid(format!(
                "Params passed here have a few virtual router metadata file names [{}]",
                reserved.join(", ")
            )));
        }
        let data = check_user_data(data, posted)?;
        let joined = params.join(",");
        let new = NewUserData { account_id, domain_id, name, data: &data, params: &joined };
        let uuid = access::insert_user_data(&self.db, &new).await.map_err(|e| match e {
            GuestAccessError::NameTaken(_) => {
                invalid(format!("A userdata with name {name} already exists for this account."))
            }
            GuestAccessError::KeyTaken(other) => {
                invalid(format!("Userdata {other} with same content already exists for this account."))
            }
            other => key_error(other),
        })?;
        self.audit(caller, "REGISTER.USER.DATA", ("UserData", &uuid, name), format!("Userdata {name} registered"))
            .await?;
        let u = access::user_data(&self.db, &uuid).await?.ok_or_else(|| no_such("userdata", &uuid))?;
        Ok(object("userdata", user_data_view(&u)))
    }

    async fn delete_user_data(&self, caller: &Caller, id: &str, owner: &OwnerRef) -> Result<Reply, ApiError> {
        let (_, _, account) = self.owner_named(caller, owner).await?;
        let u = access::user_data(&self.db, id).await?.ok_or_else(|| {
            invalid(format!("A UserData with id '{id}' does not exist for account {account} in specified domain id"))
        })?;
        if !caller.can_reach(&u) {
            return Err(not_yours("userdata", id));
        }
        let (templates, instances) = access::user_data_uses(&self.db, u.id).await?;
        if templates > 0 {
            return Err(ApiError::internal(format!(
                "Userdata {} cannot be removed as it is linked to active template/templates",
                u.name
            )));
        }
        if instances > 0 {
            return Err(ApiError::internal(format!(
                "Userdata {} cannot be removed as it is being used by some instances",
                u.name
            )));
        }
        access::remove_user_data(&self.db, u.id).await?;
        self.audit(caller, "DELETE.USER.DATA", ("UserData", &u.uuid, &u.name), format!("Userdata {} deleted", u.name))
            .await?;
        Ok(Reply::Success { display_text: None })
    }

    async fn link_user_data(
        &self,
        caller: &Caller,
        template_id: Option<String>,
        iso_id: Option<String>,
        user_data_id: Option<String>,
        policy: Option<String>,
    ) -> Result<Reply, ApiError> {
        let (id, iso) = match (template_id, iso_id) {
            (Some(_), Some(_)) => return Err(invalid("Both template ID and ISO ID are passed, API accepts only one")),
            (None, None) => return Err(invalid("Either templateid or isoid should be specified")),
            (Some(t), None) => (t, false),
            (None, Some(i)) => (i, true),
        };
        let what = if iso { "iso" } else { "template" };
        let rows = templates::by_uuid(&self.db, &id, iso).await?;
        let t = rows.first().ok_or_else(|| no_such(what, &id))?;
        if !caller.can_reach(t) {
            return Err(not_yours(what, &id));
        }
        let policy = match policy {
            Some(p) => {
                let upper = p.to_ascii_uppercase();
                if !POLICIES.contains(&upper.as_str()) {
                    return Err(invalid(format!(
                        "Invalid value of parameter userdatapolicy: {p} is not one of {}",
                        POLICIES.join(", ")
                    )));
                }
                upper
            }
            None => "ALLOWOVERRIDE".to_owned(),
        };
        let stored = match &user_data_id {
            Some(u) => {
                let row = access::user_data(&self.db, u).await?.ok_or_else(|| no_such("userdata", u))?;
                if !caller.can_reach(&row) {
                    return Err(not_yours("userdata", u));
                }
                Some(row)
            }
            None => None,
        };
        access::link_template(&self.db, &id, stored.as_ref().map(|u| (u.id, policy.as_str()))).await?;
        let text = match &stored {
            Some(u) => format!("Userdata {} linked to {what} {} ({policy})", u.name, t.name),
            None => format!("Userdata unlinked from {what} {}", t.name),
        };
        self.audit(caller, "TEMPLATE.UPDATE", ("VirtualMachineTemplate", &t.uuid, &t.name), text).await?;
        // Read back, so the reply shows the link (or its absence) as listTemplates does.
        let rows = templates::by_uuid(&self.db, &id, iso).await?;
        let t = rows.first().ok_or_else(|| no_such(what, &id))?;
        Ok(object("template", self.template_view(caller, t)))
    }
}

fn key_error(e: GuestAccessError) -> ApiError {
    match e {
        GuestAccessError::Db(e) => e.into(),
        other => invalid(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key made by `ssh-keygen -t ed25519`, and its `ssh-keygen -E md5 -l` fingerprint.
    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ8/VkHvZc78znw2HoBWHZeW95l+yhukrgL9/VjKaql someone@example";
    const ED25519_MD5: &str = "e3:d9:9d:de:e3:61:ce:a5:e9:cb:01:65:15:1e:12:2f";

    #[test]
    fn public_keys_are_kept_as_type_and_data_with_their_md5_fingerprint() {
        let (kept, print) = parse_public_key(ED25519).expect("a valid key");
        assert_eq!(kept, ED25519.rsplit_once(' ').unwrap().0);
        assert_eq!(print, ED25519_MD5);
        // The same line as base64 is read too.
        let (again, _) = parse_public_key(&STANDARD.encode(ED25519)).expect("base64 of the line");
        assert_eq!(again, kept);
        for bad in
            ["", "ssh-rsa", "ssh-foo AAAA", "ssh-rsa !!!!", "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIGb8", "hello world"]
        {
            assert_eq!(parse_public_key(bad).expect_err(bad).text, "Public key is invalid", "{bad}");
        }
    }

    #[test]
    fn generated_keys_are_rsa_openssh_lines_and_pkcs1_pem() {
        let (public, private) = generate_key_pair().expect("a key pair");
        let (kept, print) = parse_public_key(&public).expect("the generated line parses");
        assert_eq!(kept, public);
        assert!(kept.starts_with("ssh-rsa AAAAB3NzaC1yc2E"), "{kept}");
        assert_eq!(print.split(':').count(), 16);
        assert!(private.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{private}");
    }

    #[test]
    fn userdata_is_checked_as_cloudstack_checks_it() {
        assert_eq!(check_user_data("SGk=", false).unwrap(), "SGk=");
        assert_eq!(check_user_data("SGk", false).unwrap(), "SGk=", "padding is added");
        assert_eq!(check_user_data("SGk%3D", false).unwrap(), "SGk=", "a %-encoded value is decoded once");
        assert_eq!(check_user_data("not base64!", false).unwrap_err().text, "User data is not base64 encoded.");
        assert_eq!(check_user_data("====", false).unwrap_err().text, "User data is too short.");
        let big = STANDARD.encode(vec![b'x'; 3100]);
        assert!(big.len() > USER_DATA_GET_MAX && big.len() < USER_DATA_MAX);
        assert_eq!(check_user_data(&big, false).unwrap_err().text, "User data is too long for http GET request");
        assert!(check_user_data(&big, true).is_ok());
        let huge = STANDARD.encode(vec![b'x'; 30_000]);
        assert_eq!(
            check_user_data(&huge, true).unwrap_err().text,
            "User data has exceeded configurable max length: 32768"
        );
    }

    #[test]
    fn passwords_mix_letters_and_digits() {
        for _ in 0..50 {
            let p = new_password();
            assert_eq!(p.len(), 12);
            assert!(p.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()));
        }
    }
}
