//! Public IPs, source NAT, static NAT and routers through the orchestrator in-process, on
//! demo clouds (Simulator, SQLite in memory) given public traffic and a public range.
//! Each refusal is checked for CloudStack's code and text, and for leaving the database
//! as it was.

use serde_json::{Map, Value};
use wasmstack::operator::{Operator, OperatorError, id};

use crate::support::DemoCloud;

/// The demo's public range (see `demo::set_up`).
const RANGE: (&str, &str) = ("198.51.100.10", "198.51.100.250");

/// The process's demo cloud (see `support::demo_cloud`): public traffic and a public
/// range come with it.
fn cloud() -> &'static DemoCloud {
    crate::support::demo_cloud()
}

/// Replaces the demo's public range of a fresh cloud by `start`-`end`.
async fn narrow_public_range(cloud: &DemoCloud, start: &str, end: &str) {
    let admin = cloud.admin().await;
    let zone = id(&first(admin.list("listZones", &[]).await.expect("listZones")));
    let ranges = admin.list("listVlanIpRanges", &[("forvirtualnetwork", "true")]).await.expect("list");
    for r in ranges {
        admin.call("deleteVlanIpRange", &[("id", &id(&r))]).await.expect("deleteVlanIpRange");
    }
    admin
        .call(
            "createVlanIpRange",
            &[
                ("zoneid", &zone),
                ("gateway", "198.51.100.1"),
                ("netmask", "255.255.255.0"),
                ("startip", start),
                ("endip", end),
            ],
        )
        .await
        .expect("createVlanIpRange");
}

fn first(items: Vec<Map<String, Value>>) -> Map<String, Value> {
    items.into_iter().next().expect("at least one item")
}

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> &'a str {
    object.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn flag(object: &Map<String, Value>, key: &str) -> bool {
    object.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The error's code and text, for one assertion.
fn refusal(e: OperatorError) -> (u32, String) {
    match e {
        OperatorError::Command { code, text, .. } => (code, text),
        other => panic!("not an API refusal: {other}"),
    }
}

/// A user account with its own Isolated network (SourceNat offering).
struct Tenant<'a> {
    user: Operator<'a>,
    account: String,
    zone: String,
    template: String,
    offering: String,
    network: String,
}

async fn tenant(cloud: &DemoCloud) -> Tenant<'_> {
    let a = cloud.new_account("p").await;
    let t = Tenant {
        user: a.user,
        account: a.account,
        zone: a.zone,
        template: a.template,
        offering: a.offering,
        network: String::new(),
    };
    let network = t.network("own").await;
    Tenant { network, ..t }
}

impl Tenant<'_> {
    async fn network(&self, name: &str) -> String {
        let isolated = first(
            self.user
                .list("listNetworkOfferings", &[("name", "DefaultIsolatedNetworkOfferingWithSourceNatService")])
                .await
                .expect("network offerings"),
        );
        id(&self
            .user
            .call(
                "createNetwork",
                &[("name", name), ("displaytext", name), ("networkofferingid", &id(&isolated)), ("zoneid", &self.zone)],
            )
            .await
            .expect("createNetwork"))
    }

    async fn deploy(&self, name: &str, network: &str) -> Result<Map<String, Value>, OperatorError> {
        self.user
            .call(
                "deployVirtualMachine",
                &[
                    ("name", name),
                    ("zoneid", &self.zone),
                    ("templateid", &self.template),
                    ("serviceofferingid", &self.offering),
                    ("networkids", network),
                ],
            )
            .await
    }

    async fn associate(&self, network: &str) -> Result<Map<String, Value>, OperatorError> {
        self.user.call("associateIpAddress", &[("networkid", network)]).await
    }

    async fn enable(
        &self,
        ip: &Map<String, Value>,
        vm: &Map<String, Value>,
    ) -> Result<Map<String, Value>, OperatorError> {
        self.user.call("enableStaticNat", &[("ipaddressid", &id(ip)), ("virtualmachineid", &id(vm))]).await
    }

    /// The account's addresses, as it lists them.
    async fn ips(&self) -> Vec<Map<String, Value>> {
        self.user.list("listPublicIpAddresses", &[]).await.expect("listPublicIpAddresses")
    }

    async fn ip(&self, ip_id: &str) -> Map<String, Value> {
        first(self.user.list("listPublicIpAddresses", &[("id", ip_id)]).await.expect("listPublicIpAddresses"))
    }
}

#[test]
fn public_ranges_are_the_zones_and_overlaps_are_refused() {
    let cloud = cloud();
    cloud.block_on(async {
        let admin = cloud.admin().await;
        let zone = id(&first(admin.list("listZones", &[]).await.expect("listZones")));
        let public = admin.list("listVlanIpRanges", &[("forvirtualnetwork", "true")]).await.expect("list");
        let range = public.iter().find(|r| text(r, "startip") == RANGE.0).expect("the public range is listed");
        assert!(flag(range, "forvirtualnetwork"));
        assert_eq!(text(range, "vlan"), "untagged");
        assert_eq!(text(range, "endip"), RANGE.1);
        assert_eq!(text(range, "gateway"), "198.51.100.1");
        assert_eq!(text(range, "cidr"), "198.51.100.0/24");
        assert_eq!(text(range, "zoneid"), zone);
        assert!(range.get("networkid").is_none(), "{range:?}");
        let before = admin.list("listVlanIpRanges", &[]).await.expect("list").len();

        let base = [("zoneid", zone.as_str()), ("forvirtualnetwork", "true")];
        type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
        let cases: [Case; 3] = [
            (
                "addresses overlap",
                vec![("gateway", "198.51.100.1"), ("netmask", "255.255.255.0"), ("startip", "198.51.100.50"), ("endip", "198.51.100.70")],
                "The IP range already has IPs that overlap with the new range. Please specify a different start IP/end IP.",
            ),
            (
                "another gateway on the same segment",
                vec![("gateway", "198.51.100.254"), ("netmask", "255.255.255.0"), ("startip", "198.51.100.100"), ("endip", "198.51.100.110")],
                "The IP range has already been added with gateway 198.51.100.1 ,and netmask 255.255.255.0, Please specify \
                 the gateway/netmask if you want to extend ip range",
            ),
            (
                "another VLAN over the same subnet",
                vec![("vlan", "301"), ("gateway", "198.51.100.1"), ("netmask", "255.255.255.0"), ("startip", "198.51.100.100"), ("endip", "198.51.100.110")],
                "has overlapped with the subnet. Please specify a different gateway/netmask.",
            ),
        ];
        for (what, params, wanted) in cases {
            let mut all: Vec<(&str, &str)> = base.to_vec();
            all.extend(params);
            let (code, text) = refusal(admin.call("createVlanIpRange", &all).await.expect_err(what));
            assert_eq!(code, 431, "{what}: {text}");
            assert!(text.ends_with(wanted), "{what}: {text}");
            assert_eq!(admin.list("listVlanIpRanges", &[]).await.expect("list").len(), before, "{what} left a range");
        }

        // A tagged range elsewhere: its own addresses, then deleted whole.
        let tagged = admin
            .call(
                "createVlanIpRange",
                &[
                    ("zoneid", &zone),
                    ("vlan", "302"),
                    ("gateway", "203.0.113.1"),
                    ("netmask", "255.255.255.0"),
                    ("startip", "203.0.113.10"),
                    ("endip", "203.0.113.12"),
                ],
            )
            .await
            .expect("a tagged range");
        assert_eq!(text(&tagged, "vlan"), "vlan://302");
        let free = admin
            .list("listPublicIpAddresses", &[("vlanid", &id(&tagged)), ("allocatedonly", "false")])
            .await
            .expect("list");
        assert_eq!(free.len(), 3);
        assert!(free.iter().all(|ip| text(ip, "state") == "Free" && text(ip, "vlanname") == "vlan://302"));
        admin.call("deleteVlanIpRange", &[("id", &id(&tagged))]).await.expect("delete an unused range");
        let gone = admin.list("listPublicIpAddresses", &[("ipaddress", "203.0.113.10"), ("allocatedonly", "false")]).await;
        assert!(gone.expect("list").is_empty());

        // A range with an allocated address stays.
        let t = tenant(cloud).await;
        t.associate(&t.network).await.expect("associateIpAddress");
        let (code, text) = refusal(admin.call("deleteVlanIpRange", &[("id", &id(range))]).await.expect_err("in use"));
        assert_eq!(code, 431, "{text}");
        assert!(text.ends_with("  Ips are in use. Cannot delete this vlan"), "{text}");
        assert_eq!(admin.list("listVlanIpRanges", &[]).await.expect("list").len(), before);
    });
}

#[test]
fn addresses_are_associated_listed_and_released() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        // The first address of a network with SourceNat is its source NAT address.
        let nat = t.associate(&t.network).await.expect("associateIpAddress");
        assert!(flag(&nat, "issourcenat"), "{nat:?}");
        assert_eq!(text(&nat, "state"), "Allocated");
        assert_eq!(text(&nat, "associatednetworkid"), t.network);
        assert_eq!(text(&nat, "account"), t.account);
        assert!(flag(&nat, "forvirtualnetwork"));
        assert!(nat.get("vlanid").is_none(), "a user sees no vlanid: {nat:?}");
        let extra = t.associate(&t.network).await.expect("a second address");
        assert!(!flag(&extra, "issourcenat"));
        // By zone alone: the account's one Isolated network.
        let by_zone = t.user.call("associateIpAddress", &[("zoneid", &t.zone)]).await.expect("by zone");
        assert_eq!(text(&by_zone, "associatednetworkid"), t.network);
        assert_eq!(t.ips().await.len(), 3);

        let free = t.user.list("listPublicIpAddresses", &[("allocatedonly", "false")]).await.expect("list");
        assert!(free.len() > 3 && free.iter().any(|ip| text(ip, "state") == "Free"));
        let admin = cloud.admin().await;
        let seen = first(admin.list("listPublicIpAddresses", &[("id", &id(&extra))]).await.expect("admin lists"));
        assert_eq!(text(&seen, "vlanname"), "untagged");
        assert!(!text(&seen, "vlanid").is_empty());
        let nat_only = t.user.list("listPublicIpAddresses", &[("issourcenat", "true")]).await.expect("list");
        assert_eq!(nat_only.iter().map(id).collect::<Vec<_>>(), vec![id(&nat)]);

        // The source NAT address stays while the network lives.
        let (code, text_) =
            refusal(t.user.call("disassociateIpAddress", &[("id", &id(&nat))]).await.expect_err("source NAT released"));
        assert_eq!(
            (code, text_.as_str()),
            (530, "ip address is used for source nat purposes and can not be disassociated.")
        );
        assert_eq!(t.ips().await.len(), 3);

        t.user.call("updateIpAddress", &[("id", &id(&extra)), ("fordisplay", "false")]).await.expect("updateIpAddress");
        assert!(!flag(&t.ip(&id(&extra)).await, "fordisplay"));

        t.user.call("disassociateIpAddress", &[("id", &id(&extra))]).await.expect("disassociateIpAddress");
        let address = text(&by_zone, "ipaddress").to_owned();
        t.user.call("disassociateIpAddress", &[("ipaddress", &address)]).await.expect("by address");
        assert_eq!(t.ips().await.iter().map(id).collect::<Vec<_>>(), vec![id(&nat)]);
        let released = first(
            admin
                .list("listPublicIpAddresses", &[("id", &id(&extra)), ("allocatedonly", "false")])
                .await
                .expect("list"),
        );
        // Free again: another test may have taken it at once, but not for this network.
        assert_ne!(text(&released, "associatednetworkid"), t.network, "{released:?}");
        assert_ne!(text(&released, "account"), t.account, "{released:?}");
    });
}

#[test]
fn bad_associations_are_refused_and_change_nothing() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        let lonely = tenant(cloud).await;
        let admin = cloud.admin().await;
        // Two networks: the zone alone does not say which.
        let second = t.network("second").await;
        let before = t.ips().await.len() + lonely.ips().await.len();
        let zone_only = [("zoneid", t.zone.as_str())];
        let (code, text_) = refusal(t.user.call("associateIpAddress", &zone_only).await.expect_err("two networks"));
        assert_eq!((code, text_.as_str()), (431, "Account has more than one isolated network in the zone"));
        let (code, text_) = refusal(t.user.call("associateIpAddress", &[]).await.expect_err("nothing given"));
        assert_eq!(code, 431);
        assert_eq!(
            text_,
            "Unable to figure out zone to assign IP to. Please specify either zoneId, or networkId, or vpcId in the call"
        );
        admin.call("deleteNetwork", &[("id", &lonely.network)]).await.expect("deleteNetwork");
        let (code, text_) =
            refusal(lonely.user.call("associateIpAddress", &zone_only).await.expect_err("no network"));
        assert_eq!(code, 431, "{text_}");
        assert!(
            text_.starts_with(&format!("Account name={} domain=", lonely.account))
                && text_.ends_with("doesn't have virtual networks in zone=Demo"),
            "{text_}"
        );
        // Another account's network, and another account's address: 531.
        let (code, _) = refusal(lonely.associate(&second).await.expect_err("another's network"));
        assert_eq!(code, 531);
        let ip = t.associate(&second).await.expect("associateIpAddress");
        for (command, params) in [
            ("disassociateIpAddress", vec![("id", id(&ip))]),
            ("updateIpAddress", vec![("id", id(&ip)), ("fordisplay", "false".into())]),
            ("disableStaticNat", vec![("ipaddressid", id(&ip))]),
        ] {
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (code, text_) = refusal(lonely.user.call(command, &params).await.expect_err(command));
            assert_eq!(code, 531, "{command}: {text_}");
        }
        let listed = lonely.user.list("listPublicIpAddresses", &[("associatednetworkid", &second)]).await;
        assert!(listed.expect("list").is_empty(), "another account's addresses are not listed");
        assert_eq!(t.ips().await.len() + lonely.ips().await.len(), before + 1, "only the one association happened");
        let ip = first(admin.list("listPublicIpAddresses", &[("id", &id(&ip))]).await.expect("list"));
        assert!(flag(&ip, "fordisplay") && text(&ip, "state") == "Allocated");
        // Both of id and ipaddress, or neither.
        let both = [("id", id(&ip)), ("ipaddress", text(&ip, "ipaddress").to_owned())];
        let both: Vec<(&str, &str)> = both.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (code, text_) = refusal(t.user.call("disassociateIpAddress", &both).await.expect_err("both"));
        assert_eq!((code, text_.as_str()), (431, "id parameter is mutually exclusive with ipaddress parameter"));
        let (code, text_) = refusal(t.user.call("disassociateIpAddress", &[]).await.expect_err("neither"));
        assert_eq!((code, text_.as_str()), (431, "Please specify either IP address or IP address ID"));
    });
}

#[test]
fn a_network_gets_its_source_nat_address_and_router_on_first_deploy() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        let admin = cloud.admin().await;
        assert!(admin.list("listRouters", &[("networkid", &t.network)]).await.expect("listRouters").is_empty());
        let vm = t.deploy("nat1", &t.network).await.expect("deploy");
        let ips = t.ips().await;
        assert_eq!(ips.len(), 1, "{ips:?}");
        let nat = &ips[0];
        assert!(flag(nat, "issourcenat") && text(nat, "associatednetworkid") == t.network);
        let router = first(admin.list("listRouters", &[("networkid", &t.network)]).await.expect("listRouters"));
        let name = text(&router, "name").to_owned();
        assert!(name.starts_with("r-") && name.ends_with("-VM"), "{name}");
        assert_eq!(text(&router, "state"), "Running");
        assert_eq!(text(&router, "role"), "VIRTUAL_ROUTER");
        assert_eq!(text(&router, "publicip"), text(nat, "ipaddress"));
        assert_eq!(text(&router, "guestnetworkid"), t.network);
        assert_eq!(text(&router, "account"), t.account);
        assert!(!flag(&router, "requiresupgrade"));
        assert!(!text(&router, "hostid").is_empty() && !text(&router, "guestipaddress").is_empty());
        let nics = router.get("nic").and_then(Value::as_array).expect("nics");
        assert!(nics.iter().any(|n| n["traffictype"] == "Public" && n["ipaddress"] == nat["ipaddress"]));
        assert!(nics.iter().any(|n| n["traffictype"] == "Guest"));

        // Another deploy keeps the same one.
        let vm2 = t.deploy("nat2", &t.network).await.expect("deploy");
        assert_eq!(t.ips().await.len(), 1);
        assert_eq!(admin.list("listRouters", &[("networkid", &t.network)]).await.expect("list").len(), 1);

        // The router's life: stop, start, reboot, destroy, and restartNetwork builds it anew.
        let r = id(&router);
        let stopped = admin.call("stopRouter", &[("id", &r)]).await.expect("stopRouter");
        assert_eq!(text(&stopped, "state"), "Stopped");
        assert!(stopped.get("hostid").is_none());
        let (code, text_) = refusal(admin.call("rebootRouter", &[("id", &r)]).await.expect_err("reboot stopped"));
        assert_eq!((code, text_.as_str()), (530, "Unable to reboot domR, it is not in right state Stopped"));
        assert_eq!(text(&admin.call("startRouter", &[("id", &r)]).await.expect("startRouter"), "state"), "Running");
        assert_eq!(text(&admin.call("rebootRouter", &[("id", &r)]).await.expect("rebootRouter"), "state"), "Running");
        admin.call("restartNetwork", &[("id", &t.network)]).await.expect("restartNetwork");
        let same = first(admin.list("listRouters", &[("networkid", &t.network)]).await.expect("list"));
        assert_eq!(id(&same), r, "a restart without cleanup keeps the router");
        admin.call("restartNetwork", &[("id", &t.network), ("cleanup", "true")]).await.expect("restartNetwork");
        let rebuilt = first(admin.list("listRouters", &[("networkid", &t.network)]).await.expect("list"));
        assert_ne!(id(&rebuilt), r, "cleanup builds a new router");
        assert_eq!(text(&rebuilt, "publicip"), text(nat, "ipaddress"), "the source NAT address stays");
        let (code, text_) = refusal(admin.call("stopRouter", &[("id", &r)]).await.expect_err("the old router is gone"));
        assert_eq!((code, text_.as_str()), (431, "Can't find router by id"));
        let destroyed = admin.call("destroyRouter", &[("id", &id(&rebuilt))]).await.expect("destroyRouter");
        assert_eq!(text(&destroyed, "state"), "Destroyed");
        assert!(admin.list("listRouters", &[("networkid", &t.network)]).await.expect("list").is_empty());

        // Deleting the network returns its addresses, source NAT too.
        for v in [&vm, &vm2] {
            t.user.call("destroyVirtualMachine", &[("id", &id(v)), ("expunge", "true")]).await.expect("destroy");
        }
        t.user.call("deleteNetwork", &[("id", &t.network)]).await.expect("deleteNetwork");
        assert!(t.ips().await.is_empty());
        let freed = first(
            admin.list("listPublicIpAddresses", &[("id", &id(nat)), ("allocatedonly", "false")]).await.expect("list"),
        );
        // Free again (another test may have taken it at once, but not for this network).
        assert_ne!(text(&freed, "associatednetworkid"), t.network, "{freed:?}");
        assert_ne!(text(&freed, "account"), t.account, "{freed:?}");
    });
}

#[test]
fn static_nat_maps_one_address_to_one_vm() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        let vm = t.deploy("sn1", &t.network).await.expect("deploy");
        let vm2 = t.deploy("sn2", &t.network).await.expect("deploy");
        let other_net = t.network("other").await;
        let outsider = t.deploy("sn3", &other_net).await.expect("deploy");
        let nat = first(t.user.list("listPublicIpAddresses", &[("associatednetworkid", &t.network)]).await.expect("l"));
        let ip = t.associate(&t.network).await.expect("associateIpAddress");
        let ip2 = t.associate(&t.network).await.expect("associateIpAddress");

        let (code, text_) = refusal(t.enable(&nat, &vm).await.expect_err("on the source NAT address"));
        assert_eq!(code, 431);
        let opening = format!("Can't enable static, ip address Ip[{}-", text(&nat, "ipaddress"));
        assert!(text_.starts_with(&opening) && text_.ends_with("] is a sourceNat ip address"), "{text_}");
        let (code, text_) = refusal(t.enable(&ip, &outsider).await.expect_err("a VM of another network"));
        assert_eq!((code, text_.as_str()), (431, "Vm doesn't belong to the network with specified id"));
        assert!(!flag(&t.ip(&id(&ip)).await, "isstaticnat"), "a refusal changed the address");

        t.enable(&ip, &vm).await.expect("enableStaticNat");
        let mapped = t.ip(&id(&ip)).await;
        assert!(flag(&mapped, "isstaticnat"));
        assert_eq!(text(&mapped, "virtualmachineid"), id(&vm));
        assert_eq!(text(&mapped, "virtualmachinename"), "sn1");
        let nic = &vm["nic"][0];
        assert_eq!(text(&mapped, "vmipaddress"), nic["ipaddress"].as_str().unwrap());

        let (code, text_) = refusal(t.enable(&ip, &vm2).await.expect_err("mapped to another VM"));
        assert_eq!(code, 537);
        assert!(text_.ends_with(&format!("and vm id={} as it's already assigned to antoher vm", id(&vm2))), "{text_}");
        let (code, text_) = refusal(t.enable(&ip2, &vm).await.expect_err("the VM has one"));
        assert_eq!(code, 431);
        assert!(
            text_.starts_with(&format!(
                "Failed to enable static nat on the  ip {} with Id {}",
                text(&ip2, "ipaddress"),
                id(&ip2)
            )) && text_.contains(&format!("is already associated with another public ip {}", text(&ip, "ipaddress"))),
            "{text_}"
        );
        assert!(!flag(&t.ip(&id(&ip2)).await, "isstaticnat"));
        assert_eq!(text(&t.ip(&id(&ip)).await, "virtualmachineid"), id(&vm));
        let statics = t.user.list("listPublicIpAddresses", &[("isstaticnat", "true")]).await.expect("list");
        assert_eq!(statics.iter().map(id).collect::<Vec<_>>(), vec![id(&ip)]);

        t.user.call("disableStaticNat", &[("ipaddressid", &id(&ip))]).await.expect("disableStaticNat");
        let unmapped = t.ip(&id(&ip)).await;
        assert!(!flag(&unmapped, "isstaticnat") && unmapped.get("virtualmachineid").is_none());
        let (code, _) = refusal(
            t.user.call("disableStaticNat", &[("ipaddressid", &id(&ip))]).await.expect_err("nothing to disable"),
        );
        assert_eq!(code, 431);
        // Mapped again, then the VM goes: the address maps to nothing.
        t.enable(&ip2, &vm2).await.expect("enableStaticNat");
        t.user.call("destroyVirtualMachine", &[("id", &id(&vm2)), ("expunge", "true")]).await.expect("destroy");
        assert!(!flag(&t.ip(&id(&ip2)).await, "isstaticnat"));
    });
}

#[test]
fn a_used_up_zone_answers_533_naming_its_range() {
    // A cloud of its own, with a range of two addresses. It defines no VM (the refused
    // deploy stops before the host is asked), so it cannot clash with the shared cloud's
    // on the Simulator.
    let cloud = DemoCloud::start();
    cloud.block_on(async {
        narrow_public_range(&cloud, "198.51.100.200", "198.51.100.201").await;
        let t = tenant(&cloud).await;
        let other = tenant(&cloud).await;
        let nat = t.associate(&t.network).await.expect("the source NAT address");
        assert!(flag(&nat, "issourcenat"));
        t.associate(&t.network).await.expect("the second address");
        let admin = cloud.admin().await;
        let before = admin.list("listPublicIpAddresses", &[("listall", "true")]).await.expect("list");
        let wanted = "Insufficient address capacity: every address of the public IP range \
                      198.51.100.200-198.51.100.201 of zone Demo is allocated";
        let (code, text_) = refusal(t.associate(&t.network).await.expect_err("a third address"));
        assert_eq!((code, text_.as_str()), (533, wanted));
        // A first deploy into another network needs a source NAT address: none left.
        let (code, text_) = refusal(other.deploy("full2", &other.network).await.expect_err("no source NAT address"));
        assert_eq!((code, text_.as_str()), (533, wanted));
        assert!(other.user.list("listVirtualMachines", &[]).await.expect("list").is_empty());
        assert!(admin.list("listRouters", &[("networkid", &other.network)]).await.expect("list").is_empty());
        let after = admin.list("listPublicIpAddresses", &[("listall", "true")]).await.expect("list");
        assert_eq!(after.iter().map(id).collect::<Vec<_>>(), before.iter().map(id).collect::<Vec<_>>());
    });
}
