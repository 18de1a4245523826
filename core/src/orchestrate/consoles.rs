//! Console access: createConsoleEndpoint hands out a ticket for one running VM's VNC
//! display; the console proxy (`http::console`) redeems it once to relay a WebSocket to
//! that display. Tickets live in memory only: a restart invalidates them, which is what
//! a one-minute, single-use credential should do.

use crate::cloud::instances::VmState;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::auth::Caller;
use crate::cloud::instances;

use super::instances::blocking;
use super::{Orchestrator, views};

/// Where the console proxy's WebSocket is served.
pub const SOCKET_PATH: &str = "/client/console/websocket";
/// Where the console page asks, without spending its ticket, whether it would be let in.
pub const CHECK_PATH: &str = "/client/console/ticket";

/// How long an unused ticket lasts: a minute, or `WASMSTACK_CONSOLE_TICKET_SECS`.
fn ticket_ttl() -> Duration {
    std::env::var("WASMSTACK_CONSOLE_TICKET_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(60))
}

/// A VNC display a redeemed ticket leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Display {
    pub host: String,
    pub port: u16,
}

#[derive(Debug)]
struct Ticket {
    vm_uuid: String,
    /// The login session that asked for it; none when asked with API keys.
    session: Option<String>,
    display: Display,
    issued: Instant,
}

enum Slot {
    Fresh(Ticket),
    /// Kept a while after use, to tell a replay from a typo.
    Used(Instant),
}

/// The tickets handed out and not yet forgotten.
#[derive(Default)]
pub struct ConsoleTickets {
    slots: Mutex<HashMap<String, Slot>>,
}

/// Why a console connection was refused, before any connection to the display.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("no console token given")]
    NoToken,
    #[error("unknown console token")]
    Unknown,
    #[error("this console token was already used; open the console again")]
    Used,
    #[error("this console token expired; open the console again")]
    Expired,
    #[error("this console token belongs to another login session")]
    OtherSession,
    #[error("VM {0} is {1}; start it to see its console")]
    NotRunning(String, VmState),
    #[error("VM {0} no longer exists")]
    Gone(String),
    #[error("cannot check the VM's state")]
    Internal,
}

impl ConsoleTickets {
    /// A ticket to `display` for one VM; createConsoleEndpoint asks the VM's driver where
    /// its display is, and benchmarks point it at a stand-in.
    pub fn issue_to(&self, vm_uuid: &str, session: Option<String>, display: Display) -> String {
        self.issue(Ticket { vm_uuid: vm_uuid.to_owned(), session, display, issued: Instant::now() })
    }

    fn issue(&self, ticket: Ticket) -> String {
        let token = crate::auth::secrets::new_session_key();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        // Forget what can no longer matter, so the map stays as small as the live tickets.
        let keep = ticket_ttl() * 2;
        slots.retain(|_, s| match s {
            Slot::Fresh(t) => t.issued.elapsed() < keep,
            Slot::Used(at) => at.elapsed() < keep,
        });
        slots.insert(token.clone(), Slot::Fresh(ticket));
        token
    }

    /// What `take` would refuse, without spending the ticket: lets the console page
    /// explain a refusal that a browser's WebSocket cannot see.
    fn check(&self, token: &str, session: Option<&str>) -> Result<String, Refusal> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots.get(token) {
            None => Err(Refusal::Unknown),
            Some(Slot::Used(_)) => Err(Refusal::Used),
            Some(Slot::Fresh(t)) if t.issued.elapsed() > ticket_ttl() => Err(Refusal::Expired),
            Some(Slot::Fresh(t)) if t.session.is_some() && t.session.as_deref() != session => {
                Err(Refusal::OtherSession)
            }
            Some(Slot::Fresh(t)) => Ok(t.vm_uuid.clone()),
        }
    }

    /// Spends a ticket: whatever the outcome, it cannot be used again.
    fn take(&self, token: &str, session: Option<&str>) -> Result<Ticket, Refusal> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = slots.insert(token.to_owned(), Slot::Used(Instant::now()));
        match slot {
            None => {
                slots.remove(token);
                Err(Refusal::Unknown)
            }
            Some(Slot::Used(at)) => {
                slots.insert(token.to_owned(), Slot::Used(at));
                Err(Refusal::Used)
            }
            Some(Slot::Fresh(t)) if t.issued.elapsed() > ticket_ttl() => Err(Refusal::Expired),
            Some(Slot::Fresh(t)) if t.session.is_some() && t.session.as_deref() != session => {
                Err(Refusal::OtherSession)
            }
            Some(Slot::Fresh(t)) => Ok(t),
        }
    }
}

impl Orchestrator {
    /// createConsoleEndpoint: a ticket for the VM's display, bound to the caller's session.
    pub(super) async fn create_console_endpoint(&self, caller: &Caller, vm_id: &str) -> Result<Reply, ApiError> {
        let vm = self.vm_for(caller, vm_id).await?;
        if vm.state != VmState::Running {
            return Err(ApiError::invalid_param(format!(
                "VM {} is {}; start it to open its console",
                vm.name, vm.state
            )));
        }
        let (Some(driver), Some(uri)) = (vm.host_driver.clone(), vm.host_uri.clone()) else {
            return Err(ApiError::invalid_param(format!("VM {} has no host", vm.name)));
        };
        Self::require(self.features_of_vm(&vm)?.vnc_console, &vm.hypervisor, "show a VM's console")?;
        let hv = self.hypervisor_for(&driver)?;
        let uuid = vm.uuid.clone();
        let endpoint =
            blocking(format!("Finding the console of VM {}", vm.name), move || hv.console(&uri, &uuid)).await?;
        let display = Display { host: endpoint.host, port: endpoint.port };
        let token = self.consoles.issue(Ticket {
            vm_uuid: vm.uuid.clone(),
            session: caller.session.clone(),
            display,
            issued: Instant::now(),
        });
        let secs = ticket_ttl().as_secs();
        Ok(Reply::Object {
            object: "consoleendpoint".into(),
            value: views::object(json!({
                "success": true,
                "details": format!("Valid for one connection within {secs} s"),
                "url": format!("/client/console.html?token={token}"),
                "websocket": {
                    "token": token,
                    "path": SOCKET_PATH,
                    "extra": format!("token={token}"),
                },
            })),
        })
    }

    /// Redeems a ticket for the display it names, if its VM still runs.
    pub async fn redeem_console(&self, token: Option<&str>, session: Option<&str>) -> Result<Display, Refusal> {
        let token = token.filter(|t| !t.is_empty()).ok_or(Refusal::NoToken)?;
        let ticket = self.consoles.take(token, session)?;
        self.running_vm(&ticket.vm_uuid).await?;
        Ok(ticket.display)
    }

    /// The name of the VM a ticket would open, or why it would be refused; the ticket
    /// stays unspent.
    pub async fn check_console(&self, token: Option<&str>, session: Option<&str>) -> Result<String, Refusal> {
        let token = token.filter(|t| !t.is_empty()).ok_or(Refusal::NoToken)?;
        let vm_uuid = self.consoles.check(token, session)?;
        self.running_vm(&vm_uuid).await
    }

    async fn running_vm(&self, uuid: &str) -> Result<String, Refusal> {
        let vm = instances::instance(&self.db, uuid)
            .await
            .map_err(|e| {
                tracing::error!("console ticket for {uuid}: {e}");
                Refusal::Internal
            })?
            .ok_or_else(|| Refusal::Gone(uuid.to_owned()))?;
        if vm.state != VmState::Running {
            return Err(Refusal::NotRunning(vm.name, vm.state));
        }
        Ok(vm.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(session: Option<&str>) -> Ticket {
        Ticket {
            vm_uuid: "vm".into(),
            session: session.map(str::to_owned),
            display: Display { host: "127.0.0.1".into(), port: 5900 },
            issued: Instant::now(),
        }
    }

    #[test]
    fn a_ticket_works_once() {
        let t = ConsoleTickets::default();
        let token = t.issue(ticket(None));
        assert_eq!(t.check(&token, None).unwrap(), "vm");
        assert_eq!(t.take(&token, None).unwrap().display.port, 5900);
        assert_eq!(t.check(&token, None).unwrap_err(), Refusal::Used);
        assert_eq!(t.take(&token, None).unwrap_err(), Refusal::Used);
        assert_eq!(t.take("nope", None).unwrap_err(), Refusal::Unknown);
    }

    #[test]
    fn a_session_ticket_needs_its_session_and_is_spent_by_a_wrong_one() {
        let t = ConsoleTickets::default();
        let token = t.issue(ticket(Some("s1")));
        assert_eq!(t.take(&token, Some("s2")).unwrap_err(), Refusal::OtherSession);
        assert_eq!(t.take(&token, Some("s1")).unwrap_err(), Refusal::Used);
        let token = t.issue(ticket(Some("s1")));
        assert!(t.take(&token, None).is_err());
        let token = t.issue(ticket(Some("s1")));
        assert!(t.take(&token, Some("s1")).is_ok());
    }

    #[test]
    fn an_old_ticket_has_expired() {
        let t = ConsoleTickets::default();
        let mut old = ticket(None);
        old.issued = Instant::now() - ticket_ttl() - Duration::from_secs(1);
        let token = t.issue(old);
        assert_eq!(t.take(&token, None).unwrap_err(), Refusal::Expired);
    }
}
