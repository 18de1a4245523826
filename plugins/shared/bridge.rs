//! What the `vlan` and `flat` network drivers share: one bridge per physical network
//! label, kept for as long as the host runs guests; the driver only decides its kind and
//! whether ports carry a VLAN tag.

/// The prefix both drivers ask for: every device they touch is named with it.
pub const PREFIX: &str = "ws-";

/// DHCP service name for a network on a host: unique per network, within the
/// granted prefix and the kernel's 15-character device names.
pub fn dhcp_name(net_id: &str) -> String {
    let hex: String = net_id.chars().filter(|c| c.is_ascii_hexdigit()).take(11).collect();
    format!("{PREFIX}d{hex}")
}

/// Checks that the physical label can name the bridge, so that the operator learns
/// the rule instead of reading a grant denial.
pub fn bridge_name(physical: &str) -> Result<String, String> {
    if !physical.starts_with(PREFIX) || physical.len() > 15 {
        return Err(format!(
            "the physical network label \"{physical}\" names the bridge: it must start with \"{PREFIX}\" \
             and be at most 15 characters"
        ));
    }
    Ok(physical.to_owned())
}
