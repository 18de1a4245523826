//! How the orchestrator chooses drivers: by what each loaded driver declares it serves
//! (`describe().serves`: hypervisor types with their features, isolation methods, storage
//! providers and URL schemes), never by a driver's name. Hosts, pools and networks record
//! the driver chosen for them (name and version); later operations go to that driver and
//! ask its declared features before they act.

use std::sync::Arc;

use crate::api::error::ApiError;
use crate::cloud::infra::HostRow;
use crate::cloud::instances::InstanceRow;
use crate::cloud::networks::NetworkRow;
use crate::plugins::{DriverKind, HypervisorFeatures, HypervisorType, LoadedPlugin, NetworkDriver, Serves};

use super::Orchestrator;

/// The isolation method of a physical network created without one (CloudStack's flat
/// networks, which show no `isolationmethods`): the driver serving this method serves
/// their networks. The one named default of network driver choice.
pub(crate) const DEFAULT_ISOLATION: &str = "Flat";

/// The isolation method that serves a physical network whose stored method is `method`
/// (empty when none was given).
pub(crate) fn isolation_of(method: &str) -> &str {
    if method.is_empty() { DEFAULT_ISOLATION } else { method }
}

/// "A, B, C", or "none" for an empty list.
fn names(list: &[String]) -> String {
    if list.is_empty() { "none".to_owned() } else { list.join(", ") }
}

impl Orchestrator {
    /// The hypervisor types the loaded drivers serve, as they spell them.
    pub(crate) fn served_hypervisors(&self) -> Vec<String> {
        self.plugins.hypervisor_types().into_iter().map(|(_, t)| t.name).collect()
    }

    /// The driver serving `hypervisor_type` and the type as it declared it; 431 naming
    /// the types that are served when no loaded driver serves it.
    pub(crate) fn hypervisor_serving(
        &self,
        param: &str,
        hypervisor_type: &str,
    ) -> Result<(Arc<LoadedPlugin>, HypervisorType), ApiError> {
        self.plugins.hypervisor_serving(hypervisor_type).ok_or_else(|| {
            ApiError::invalid_param(format!(
                "Invalid value of parameter {param}: {hypervisor_type}; the loaded hypervisor drivers serve {}",
                names(&self.served_hypervisors())
            ))
        })
    }

    /// What hosts of `hypervisor` can do, as the driver that serves them (`driver`, the
    /// one recorded for the host) declares it. 534 naming the driver when it is no longer
    /// loaded or no longer serves the type: nothing is asked of a driver that is not there.
    pub(crate) fn features(&self, driver: &str, hypervisor: &str) -> Result<HypervisorFeatures, ApiError> {
        self.hypervisor_problem(driver, hypervisor)
            .map_or_else(|problem| Err(ApiError::unavailable(problem)), |t| Ok(t.features))
    }

    /// The features of a host's type, from its driver.
    pub(crate) fn features_of(&self, host: &HostRow) -> Result<HypervisorFeatures, ApiError> {
        self.features(&host.driver, &host.hypervisor)
    }

    /// The features of the type of the host a VM is on; none when it has no host.
    pub(crate) fn features_of_vm(&self, i: &InstanceRow) -> Result<HypervisorFeatures, ApiError> {
        let driver =
            i.host_driver.as_deref().ok_or_else(|| ApiError::invalid_param(format!("VM {} has no host", i.name)))?;
        self.features(driver, &i.hypervisor)
    }

    /// The type as `driver` declares it, or why the driver cannot serve hosts of
    /// `hypervisor` now.
    fn hypervisor_problem(&self, driver: &str, hypervisor: &str) -> Result<HypervisorType, String> {
        let plugin = self
            .plugins
            .get(driver)
            .filter(|p| p.info.kind == DriverKind::Hypervisor)
            .ok_or_else(|| format!("Hypervisor driver {driver} of {hypervisor} hosts is not loaded"))?;
        match &plugin.info.serves {
            Serves::Hypervisor { types } => types.iter().find(|t| t.name.eq_ignore_ascii_case(hypervisor)).cloned(),
            _ => None,
        }
        .ok_or_else(|| format!("Hypervisor driver {driver} no longer serves {hypervisor} hosts"))
    }

    /// Why a host cannot be used now (its driver is gone or no longer serves its type).
    pub(crate) fn host_problem(&self, host: &HostRow) -> Option<String> {
        self.hypervisor_problem(&host.driver, &host.hypervisor).err()
    }

    /// 431 "hypervisor X cannot …" unless `has` holds.
    pub(crate) fn require(has: bool, hypervisor: &str, what: &str) -> Result<(), ApiError> {
        if has { Ok(()) } else { Err(ApiError::invalid_param(format!("hypervisor {hypervisor} cannot {what}"))) }
    }

    /// The isolation methods the loaded network drivers serve, as they spell them.
    pub(crate) fn served_isolation_methods(&self) -> Vec<String> {
        self.plugins.isolation_methods().into_iter().map(|(_, m)| m).collect()
    }

    /// The driver serving a network: the one recorded when it was created, which must
    /// still serve the physical network's isolation method; for networks from before
    /// drivers were recorded, the driver serving that method. 534 naming what is missing.
    pub(crate) fn network_driver(&self, n: &NetworkRow) -> Result<NetworkDriver, ApiError> {
        self.network_problem(n).map_err(ApiError::unavailable)
    }

    fn network_problem(&self, n: &NetworkRow) -> Result<NetworkDriver, String> {
        let method = isolation_of(&n.isolation_method);
        if n.driver.is_empty() {
            let (plugin, _) = self
                .plugins
                .network_serving(method)
                .ok_or_else(|| format!("No loaded network driver serves isolation method {method}"))?;
            return self.plugins.network(&plugin.info.name).map_err(|e| e.to_string());
        }
        let driver = self
            .plugins
            .network(&n.driver)
            .map_err(|_| format!("Network driver {} of network {} is not loaded", n.driver, n.name))?;
        let serves = match &driver.plugin().info.serves {
            Serves::Network(facts) => facts.isolation_methods.iter().any(|m| m.eq_ignore_ascii_case(method)),
            _ => false,
        };
        if !serves {
            return Err(format!("Network driver {} no longer serves isolation method {method}", n.driver));
        }
        Ok(driver)
    }

    /// Why a network cannot be built now (its driver is gone or no longer serves it).
    pub(crate) fn network_problem_text(&self, n: &NetworkRow) -> Option<String> {
        self.network_problem(n).err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_method_is_the_default_one() {
        assert_eq!(isolation_of(""), DEFAULT_ISOLATION);
        assert_eq!(isolation_of("VXLAN"), "VXLAN");
        assert_eq!(names(&[]), "none");
    }
}
