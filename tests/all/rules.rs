//! The router's rules in-process on the process's demo cloud (Simulator, SQLite in
//! memory, public traffic):
//! firewall, egress, port forwarding and load balancing through the API, with
//! CloudStack's refusals (status and text) leaving the database as it was.

use serde_json::{Map, Value};
use wasmstack::operator::{Operator, OperatorError, id};

use crate::support::{DemoCloud, new_uuid};

/// The process's demo cloud (see `support::demo_cloud`): public traffic and a public
/// range come with it.
fn cloud() -> &'static DemoCloud {
    crate::support::demo_cloud()
}

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> &'a str {
    object.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A user account with an Isolated network (source NAT offering) and a public IP on it.
struct Tenant<'a> {
    user: Operator<'a>,
    zone: String,
    template: String,
    offering: String,
    network: String,
    ip: String,
    address: String,
}

async fn tenant(cloud: &DemoCloud) -> Tenant<'_> {
    tenant_on(cloud, "DefaultIsolatedNetworkOfferingWithSourceNatService").await
}

async fn tenant_on<'a>(cloud: &'a DemoCloud, network_offering: &str) -> Tenant<'a> {
    let admin = cloud.admin().await;
    let account = format!("r{}", &new_uuid()[..8]);
    admin
        .call(
            "createAccount",
            &[
                ("accounttype", "0"),
                ("username", &account),
                ("password", "secret-password"),
                ("email", "r@example.org"),
                ("firstname", "R"),
                ("lastname", "Rules"),
            ],
        )
        .await
        .expect("createAccount");
    let user = Operator::as_user(&cloud.orch, &account, "/").await.expect("the new user");
    let zone = id(&first(admin.list("listZones", &[]).await.expect("listZones")));
    let template = id(&first(user.list("listTemplates", &[("templatefilter", "featured")]).await.expect("templates")));
    // Small VMs: the Simulator host is shared with the other in-process tests.
    let tiny = format!("tiny-{account}");
    let offering = id(&admin
        .call(
            "createServiceOffering",
            &[("name", &tiny), ("displaytext", &tiny), ("cpunumber", "1"), ("cpuspeed", "100"), ("memory", "64")],
        )
        .await
        .expect("createServiceOffering"));
    let isolated = first(user.list("listNetworkOfferings", &[("name", network_offering)]).await.expect("offerings"));
    let network = id(&user
        .call(
            "createNetwork",
            &[("name", "ruled"), ("displaytext", "ruled"), ("networkofferingid", &id(&isolated)), ("zoneid", &zone)],
        )
        .await
        .expect("createNetwork"));
    let (ip, address) = public_ip(&user, &network).await;
    Tenant { user, zone, template, offering, network, ip, address }
}

fn first(items: Vec<Map<String, Value>>) -> Map<String, Value> {
    items.into_iter().next().expect("at least one item")
}

/// A new public IP associated with the network: (id, address).
async fn public_ip(user: &Operator<'_>, network: &str) -> (String, String) {
    let ip = user.call("associateIpAddress", &[("networkid", network)]).await.expect("associateIpAddress");
    (id(&ip), text(&ip, "ipaddress").to_owned())
}

impl Tenant<'_> {
    async fn deploy(&self, name: &str) -> String {
        self.deploy_in(name, &self.network).await
    }

    async fn deploy_in(&self, name: &str, network: &str) -> String {
        let vm = self
            .user
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
            .expect("deployVirtualMachine");
        id(&vm)
    }

    async fn call(&self, command: &str, params: &[(&str, &str)]) -> Map<String, Value> {
        self.user.call(command, params).await.unwrap_or_else(|e| panic!("{command}: {e}"))
    }

    async fn list(&self, command: &str, params: &[(&str, &str)]) -> Vec<Map<String, Value>> {
        self.user.list(command, params).await.unwrap_or_else(|e| panic!("{command}: {e}"))
    }
}

/// The forwarding rule on the tenant's IP with this public port.
async fn forward_on(t: &Tenant<'_>, port: &str) -> String {
    let all = t.list("listPortForwardingRules", &[("ipaddressid", &t.ip)]).await;
    id(all.iter().find(|r| text(r, "publicport") == port).expect("the rule"))
}

/// The rule rows of one network (by uuid), to show a refusal changed nothing there.
async fn rule_rows(network: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let tables = [
        "SELECT COUNT(*) FROM firewall_rules WHERE network_id = (SELECT id FROM networks WHERE uuid = $1)",
        "SELECT COUNT(*) FROM port_forwarding_rules WHERE network_id = (SELECT id FROM networks WHERE uuid = $1)",
        "SELECT COUNT(*) FROM load_balancer_rules WHERE network_id = (SELECT id FROM networks WHERE uuid = $1)",
        "SELECT COUNT(*) FROM load_balancer_members WHERE rule_id IN (SELECT id FROM load_balancer_rules \
         WHERE network_id = (SELECT id FROM networks WHERE uuid = $1))",
    ];
    for sql in tables {
        let n: i64 =
            sqlx::query_scalar(sql).bind(network).fetch_one(cloud().orch.db.pool()).await.expect("counting rules");
        out.push(n);
    }
    out
}

/// Runs a call of the tenant's that must be refused with `code` and exactly `text`, and
/// checks that the rules of its network did not change.
async fn refused(t: &Tenant<'_>, command: &str, params: &[(&str, &str)], code: u32, text: &str) {
    let before = rule_rows(&t.network).await;
    match t.user.call(command, params).await {
        Err(OperatorError::Command { code: c, text: x, .. }) => {
            assert_eq!((c, x.as_str()), (code, text), "{command} {params:?}");
        }
        other => panic!("{command} {params:?} was not refused: {other:?}"),
    }
    assert_eq!(rule_rows(&t.network).await, before, "{command} {params:?} changed the rules");
}

#[test]
fn firewall_rules_open_ports_on_a_public_ip() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        let ip = t.ip.as_str();
        let ssh = t.call("createFirewallRule", &[("ipaddressid", ip), ("protocol", "TCP"), ("startport", "22")]).await;
        assert_eq!(text(&ssh, "protocol"), "tcp");
        assert_eq!((ssh["startport"].as_i64(), ssh["endport"].as_i64()), (Some(22), Some(22)), "{ssh:?}");
        assert_eq!(text(&ssh, "cidrlist"), "0.0.0.0/0");
        assert_eq!(text(&ssh, "state"), "Active");
        assert_eq!(text(&ssh, "traffictype"), "Ingress");
        assert_eq!((text(&ssh, "ipaddressid"), text(&ssh, "ipaddress")), (ip, t.address.as_str()));
        assert_eq!(text(&ssh, "networkid"), t.network);
        let ping = t.call("createFirewallRule", &[("ipaddressid", ip), ("protocol", "icmp")]).await;
        assert_eq!((ping["icmptype"].as_i64(), ping["icmpcode"].as_i64()), (Some(-1), Some(-1)), "{ping:?}");
        assert!(ping.get("startport").is_none(), "{ping:?}");
        // Another source may share the ports; the same source may not.
        let lan = [("ipaddressid", ip), ("protocol", "tcp"), ("startport", "20"), ("endport", "30")];
        t.call("createFirewallRule", &[lan.as_slice(), &[("cidrlist", "192.168.0.0/16")]].concat()).await;
        let listed = t.list("listFirewallRules", &[("ipaddressid", ip)]).await;
        assert_eq!(listed.len(), 3, "{listed:?}");
        assert!(t.list("listEgressFirewallRules", &[]).await.is_empty());

        let conflict = format!(
            "The range specified, 20-30, conflicts with rule Rule[{}-Firewall-Active] which has 22-22",
            id(&ssh)
        );
        refused(&t, "createFirewallRule", &lan, 537, &conflict).await;
        let same_icmp = format!("New rule conflicts with existing rule: Rule[{}-Firewall-Active]", id(&ping));
        refused(&t, "createFirewallRule", &[("ipaddressid", ip), ("protocol", "icmp")], 431, &same_icmp).await;
        let gre = format!("Protocol gre is not supported in zone {}", t.zone);
        let all = format!("Protocol all is not supported in zone {}", t.zone);
        let bad: [(&[(&str, &str)], &str); 9] = [
            (&[("protocol", "tcp"), ("startport", "0")], "publicPort is an invalid value: 0"),
            (&[("protocol", "tcp"), ("startport", "70000")], "publicPort is an invalid value: 70000"),
            (
                &[("protocol", "tcp"), ("startport", "80"), ("endport", "65536")],
                "Public port range is an invalid value: 65536",
            ),
            (
                &[("protocol", "tcp"), ("startport", "90"), ("endport", "80")],
                "Start port can't be bigger than end port",
            ),
            (&[("protocol", "gre")], &gre),
            (&[("protocol", "all")], &all),
            (&[("protocol", "icmp"), ("startport", "1")], "Can't specify start/end port when protocol is ICMP"),
            (&[("protocol", "tcp"), ("icmptype", "8")], "Can specify icmpCode and icmpType for ICMP protocol only"),
            (&[("protocol", "tcp"), ("cidrlist", "10.0.0.0/40")], "Source CIDRs formatting error 10.0.0.0/40"),
        ];
        for (params, said) in bad {
            let params = [&[("ipaddressid", ip)], params].concat();
            refused(&t, "createFirewallRule", &params, 431, said).await;
        }

        t.call("deleteFirewallRule", &[("id", &id(&ssh))]).await;
        let left: Vec<String> = t.list("listFirewallRules", &[("ipaddressid", ip)]).await.iter().map(id).collect();
        assert_eq!(left.len(), 2);
        assert!(!left.contains(&id(&ssh)), "{left:?}");
        // Its ports are free again.
        t.call("createFirewallRule", &[("ipaddressid", ip), ("protocol", "tcp"), ("startport", "22")]).await;
    });
}

#[test]
fn egress_rules_stay_within_the_guest_network() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        let net = first(t.list("listNetworks", &[("id", &t.network)]).await);
        assert_eq!(net["egressdefaultpolicy"], Value::Bool(true), "{net:?}");
        let cidr = text(&net, "cidr").to_owned();
        let offering = first(t.list("listNetworkOfferings", &[("id", text(&net, "networkofferingid"))]).await);
        assert_eq!(offering["egressdefaultpolicy"], Value::Bool(true), "{offering:?}");

        let n = t.network.as_str();
        let web =
            t.call("createEgressFirewallRule", &[("networkid", n), ("protocol", "tcp"), ("startport", "80")]).await;
        assert_eq!(text(&web, "cidrlist"), cidr, "the guest CIDR is the default source");
        assert_eq!((text(&web, "traffictype"), text(&web, "networkid")), ("Egress", n));
        assert!(web.get("ipaddressid").is_none(), "{web:?}");
        // 0.0.0.0/0 stands for the whole guest network.
        let all = t
            .call("createEgressFirewallRule", &[("networkid", n), ("protocol", "all"), ("cidrlist", "0.0.0.0/0")])
            .await;
        assert_eq!(text(&all, "cidrlist"), cidr);
        let dns = t
            .call(
                "createEgressFirewallRule",
                &[("networkid", n), ("protocol", "udp"), ("startport", "53"), ("destcidrlist", "8.8.8.8/32")],
            )
            .await;
        assert_eq!(text(&dns, "destcidrlist"), "8.8.8.8/32");
        assert_eq!(t.list("listEgressFirewallRules", &[("networkid", n)]).await.len(), 3);
        assert!(t.list("listFirewallRules", &[]).await.is_empty(), "egress rules are not ingress rules");

        refused(
            &t,
            "createEgressFirewallRule",
            &[("networkid", n), ("protocol", "all")],
            537,
            "There is already a firewall rule specified with protocol = all and no ports",
        )
        .await;
        let outside = "10.200.0.0/16";
        let bad: [(&[(&str, &str)], String); 4] = [
            (
                &[("protocol", "tcp"), ("cidrlist", outside)],
                format!("[{outside}] is not within the guest CIDR [{cidr}]. "),
            ),
            (&[("protocol", "tcp"), ("cidrlist", "bogus")], "Source CIDRs formatting error [bogus].".into()),
            (
                &[("protocol", "tcp"), ("destcidrlist", "1.2.3.4/99")],
                "Destination CIDRs formatting error [1.2.3.4/99].".into(),
            ),
            (
                &[("protocol", "all"), ("startport", "22")],
                format!(
                    "Unable to create firewall rule for the network id=[{n}] due to: ports must not be informed to \
                     protocol ALL, as it does not require them."
                ),
            ),
        ];
        for (params, said) in bad {
            let params = [&[("networkid", n)], params].concat();
            refused(&t, "createEgressFirewallRule", &params, 431, &said).await;
        }
        // Another account's network is not the caller's to rule.
        let other = tenant(cloud).await;
        let before = rule_rows(&t.network).await;
        let err = other
            .user
            .call("createEgressFirewallRule", &[("networkid", n), ("protocol", "tcp")])
            .await
            .expect_err("a foreign network");
        assert_eq!(err.code(), Some(531), "{err}");
        assert_eq!(rule_rows(&t.network).await, before);

        t.call("deleteEgressFirewallRule", &[("id", &id(&all))]).await;
        assert_eq!(t.list("listEgressFirewallRules", &[("networkid", n)]).await.len(), 2);
    });
}

#[test]
fn port_forwarding_rules_map_public_ports_to_a_vm() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        let vm = t.deploy("web").await;
        let ip = t.ip.as_str();
        let nic = first(t.list("listNics", &[("virtualmachineid", &vm)]).await);
        let guest = text(&nic, "ipaddress").to_owned();
        let pf = t
            .call(
                "createPortForwardingRule",
                &[("ipaddressid", ip), ("publicport", "2222"), ("privateport", "22"), ("protocol", "TCP"), ("virtualmachineid", &vm)],
            )
            .await;
        for (k, v) in [("publicport", "2222"), ("publicendport", "2222"), ("privateport", "22"), ("privateendport", "22")] {
            assert_eq!(pf[k], Value::String(v.into()), "{k} in {pf:?}");
        }
        assert_eq!((text(&pf, "protocol"), text(&pf, "state")), ("tcp", "Active"));
        assert_eq!((text(&pf, "virtualmachineid"), text(&pf, "virtualmachinename")), (vm.as_str(), "web"));
        assert_eq!((text(&pf, "ipaddress"), text(&pf, "vmguestip")), (t.address.as_str(), guest.as_str()));
        assert_eq!(text(&pf, "networkid"), t.network);
        // openfirewall (the default) opened the public port.
        let opened = t.list("listFirewallRules", &[("ipaddressid", ip)]).await;
        assert_eq!(opened.len(), 1, "{opened:?}");
        assert_eq!((opened[0]["startport"].as_i64(), text(&opened[0], "cidrlist")), (Some(2222), "0.0.0.0/0"));
        // A range maps onto the same range; UDP may share TCP's ports; no firewall rule when asked not to.
        let range = [("ipaddressid", ip), ("publicport", "8000"), ("publicendport", "8010"), ("privateport", "8000")];
        let range = [range.as_slice(), &[("privateendport", "8010"), ("virtualmachineid", &vm)]].concat();
        t.call("createPortForwardingRule", &[range.as_slice(), &[("protocol", "tcp")]].concat()).await;
        t.call("createPortForwardingRule", &[range.as_slice(), &[("protocol", "udp"), ("openfirewall", "false")]].concat())
            .await;
        assert_eq!(t.list("listPortForwardingRules", &[("ipaddressid", ip)]).await.len(), 3);
        assert_eq!(t.list("listPortForwardingRules", &[("virtualmachineid", &vm)]).await.len(), 3);
        assert_eq!(t.list("listFirewallRules", &[("ipaddressid", ip)]).await.len(), 2);
        // The router state holds them, typed, with nothing left in transit.
        let db = &cloud.orch.db;
        let n = wasmstack::cloud::networks::network(db, &t.network).await.expect("read").expect("the network");
        let (state, pending) = wasmstack::orchestrate::rules::router_rules(db, &n).await.expect("router rules");
        assert!(pending.is_empty(), "{pending:?}");
        let ssh = state.forwards.iter().find(|f| f.public_ports == (2222, 2222)).expect("the forward");
        assert_eq!((ssh.private_ports, ssh.guest_ip.to_string()), ((22, 22), guest.clone()));
        assert_eq!(ssh.public_ip.to_string(), t.address);
        assert_eq!(state.forwards.len(), 3);
        assert!(state.ingress.iter().any(|f| f.ports == Some((8000, 8010))), "{:?}", state.ingress);
        assert!(state.egress_default_allow);

        let base = [("ipaddressid", ip), ("protocol", "tcp"), ("virtualmachineid", vm.as_str())];
        let with = |extra: &[(&'static str, &'static str)]| [base.as_slice(), extra].concat();
        let conflict = format!(
            "The range specified, 8005-8005, conflicts with rule Rule[{}-PortForwarding-Active] which has 8000-8010",
            forward_on(&t, "8000").await
        );
        let overlap = with(&[("publicport", "8005"), ("privateport", "80"), ("openfirewall", "false")]);
        refused(&t, "createPortForwardingRule", &overlap, 537, &conflict).await;
        let cases: [(&[(&str, &str)], &str); 8] = [
            (&[("publicport", "0"), ("privateport", "22")], "publicPort is an invalid value: 0"),
            (&[("publicport", "22"), ("privateport", "65536")], "privatePort is an invalid value: 65536"),
            (&[("publicport", "90"), ("publicendport", "80"), ("privateport", "90")], "Start port can't be bigger than end port"),
            (
                &[("publicport", "9000"), ("publicendport", "9010"), ("privateport", "9000"), ("privateendport", "9005")],
                "Source port and destination port ranges should be of equal sizes.",
            ),
            (
                &[("publicport", "9000"), ("publicendport", "9010"), ("privateport", "7000"), ("privateendport", "7010")],
                "Private port start should be equal to public port start",
            ),
            (&[("publicport", "9020"), ("privateport", "22"), ("vmguestip", "10.9.9.9")], "IP Address is not in the VM nic's network "),
            (
                &[("publicport", "9021"), ("privateport", "22"), ("cidrlist", "10.0.0.0/8")],
                "Parameter cidrList is deprecated; if you need to open firewall rule for the specific cidr, please refer \
                 to createFirewallRule command",
            ),
            (&[("publicport", "9022"), ("privateport", "22"), ("protocol", "icmp")], "Protocol icmp is currently supported only for rules with purpose Firewall"),
        ];
        for (extra, said) in cases {
            let mut params = base.to_vec();
            for (k, v) in extra {
                params.retain(|(name, _)| name != k);
                params.push((k, v));
            }
            refused(&t, "createPortForwardingRule", &params, 431, said).await;
        }
        // A VM of another network of the same account.
        let elsewhere = {
            let isolated = first(t.list("listNetworkOfferings", &[("name", "DefaultIsolatedNetworkOfferingWithSourceNatService")]).await);
            let other = t
                .call(
                    "createNetwork",
                    &[("name", "other"), ("displaytext", "other"), ("networkofferingid", &id(&isolated)), ("zoneid", &t.zone)],
                )
                .await;
            t.deploy_in("elsewhere", &id(&other)).await
        };
        let params = [("ipaddressid", ip), ("protocol", "tcp"), ("publicport", "9030"), ("privateport", "22"), ("virtualmachineid", &elsewhere)];
        refused(&t, "createPortForwardingRule", &params, 431, "Vm doesn't belong to network associated with ipAddress").await;

        // The private side moves; the public side stays.
        let ssh = forward_on(&t, "2222").await;
        let moved = t.call("updatePortForwardingRule", &[("id", &ssh), ("privateport", "2022")]).await;
        assert_eq!((text(&moved, "publicport"), text(&moved, "privateport")), ("2222", "2022"));
        refused(&t, "updatePortForwardingRule",
            &[("id", &ssh), ("vmguestip", &guest)],
            431,
            "vmguestip should be set along with virtualmachineid",
        )
        .await;

        // Deleting the rule closes the port it opened.
        t.call("deletePortForwardingRule", &[("id", &ssh)]).await;
        assert_eq!(t.list("listPortForwardingRules", &[("ipaddressid", ip)]).await.len(), 2);
        let left = t.list("listFirewallRules", &[("ipaddressid", ip)]).await;
        assert!(left.iter().all(|r| r["startport"].as_i64() != Some(2222)), "{left:?}");

        // An expunged VM takes its forwarding rules, and the ports they opened, with it.
        for vm in [&vm, &elsewhere] {
            t.call("destroyVirtualMachine", &[("id", vm), ("expunge", "true")]).await;
        }
        assert!(t.list("listPortForwardingRules", &[("ipaddressid", ip)]).await.is_empty());
        let left = t.list("listFirewallRules", &[("ipaddressid", ip)]).await;
        assert!(left.iter().all(|r| r["startport"].as_i64() != Some(8000)), "{left:?}");
    });
}

#[test]
fn load_balancing_rules_spread_over_their_members() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        let (a, b) = (t.deploy("lb-a").await, t.deploy("lb-b").await);
        let ip = t.ip.as_str();
        let lb = t
            .call(
                "createLoadBalancerRule",
                &[
                    ("name", "web"),
                    ("algorithm", "roundrobin"),
                    ("publicport", "80"),
                    ("privateport", "8080"),
                    ("publicipid", ip),
                ],
            )
            .await;
        assert_eq!((text(&lb, "name"), text(&lb, "algorithm"), text(&lb, "state")), ("web", "roundrobin", "Active"));
        assert_eq!((text(&lb, "publicport"), text(&lb, "privateport")), ("80", "8080"));
        assert_eq!((text(&lb, "publicipid"), text(&lb, "publicip")), (ip, t.address.as_str()));
        assert_eq!((text(&lb, "networkid"), text(&lb, "zoneid")), (t.network.as_str(), t.zone.as_str()));
        let lb_id = id(&lb);
        let opened = t.list("listFirewallRules", &[("ipaddressid", ip)]).await;
        assert_eq!((opened.len(), opened[0]["startport"].as_i64()), (1, Some(80)), "{opened:?}");

        t.call("assignToLoadBalancerRule", &[("id", &lb_id), ("virtualmachineids", &a)]).await;
        let applied = t.list("listLoadBalancerRuleInstances", &[("id", &lb_id)]).await;
        assert_eq!(applied.iter().map(id).collect::<Vec<_>>(), vec![a.clone()]);
        let spare = t.list("listLoadBalancerRuleInstances", &[("id", &lb_id), ("applied", "false")]).await;
        assert_eq!(spare.iter().map(id).collect::<Vec<_>>(), vec![b.clone()]);
        assert_eq!(t.list("listLoadBalancerRules", &[("virtualmachineid", &a)]).await.len(), 1);
        assert!(t.list("listLoadBalancerRules", &[("virtualmachineid", &b)]).await.is_empty());
        refused(
            &t,
            "removeFromLoadBalancerRule",
            &[("id", &lb_id), ("virtualmachineids", &b)],
            431,
            &format!("The instance id: {b} is not configured  for LB rule id {lb_id}"),
        )
        .await;
        // vmidipmap names the guest address itself.
        let guest_b = text(&first(t.list("listNics", &[("virtualmachineid", &b)]).await), "ipaddress").to_owned();
        t.call(
            "assignToLoadBalancerRule",
            &[("id", &lb_id), ("vmidipmap[0].vmid", &b), ("vmidipmap[0].vmip", &guest_b)],
        )
        .await;
        assert_eq!(t.list("listLoadBalancerRuleInstances", &[("id", &lb_id)]).await.len(), 2);
        assert!(t.list("listLoadBalancerRuleInstances", &[("id", &lb_id), ("applied", "false")]).await.is_empty());
        let with_ips = t.list("listLoadBalancerRuleInstances", &[("id", &lb_id), ("lbvmips", "true")]).await;
        assert!(with_ips.iter().all(|e| e["lbvmipaddresses"].as_array().is_some_and(|a| a.len() == 1)), "{with_ips:?}");

        let guest_a = text(&first(t.list("listNics", &[("virtualmachineid", &a)]).await), "ipaddress").to_owned();
        refused(
            &t,
            "assignToLoadBalancerRule",
            &[("id", &lb_id), ("virtualmachineids", &a)],
            431,
            &format!("VM {a} with {guest_a} is already mapped to load balancer."),
        )
        .await;
        refused(
            &t,
            "assignToLoadBalancerRule",
            &[("id", &lb_id)],
            431,
            "Both instanceids and vmidipmap  can't be null",
        )
        .await;
        let create = |public: &'static str, algorithm: &'static str| {
            [("name", "x"), ("algorithm", algorithm), ("publicport", public), ("privateport", "80"), ("publicipid", ip)]
        };
        refused(&t, "createLoadBalancerRule", &create("81", "random"), 431, "Invalid algorithm: random").await;
        refused(&t, "createLoadBalancerRule", &create("0", "source"), 431, "publicPort is an invalid value: 0").await;
        let conflict = format!(
            "The range specified, 80-80, conflicts with rule Rule[{lb_id}-LoadBalancing-Active] which has 80-80"
        );
        let again = [create("80", "source").as_slice(), &[("openfirewall", "false")]].concat();
        refused(&t, "createLoadBalancerRule", &again, 537, &conflict).await;
        // Port forwarding on a balanced port conflicts too.
        let pf = [("ipaddressid", ip), ("publicport", "80"), ("privateport", "80"), ("protocol", "udp")];
        let pf = [pf.as_slice(), &[("virtualmachineid", &a), ("openfirewall", "false")]].concat();
        let conflict = format!(
            "The range specified, 80-80, conflicts with rule Rule[{lb_id}-LoadBalancing-Active] which has 80-80"
        );
        refused(&t, "createPortForwardingRule", &pf, 537, &conflict).await;

        let changed =
            t.call("updateLoadBalancerRule", &[("id", &lb_id), ("algorithm", "leastconn"), ("name", "www")]).await;
        assert_eq!((text(&changed, "algorithm"), text(&changed, "name")), ("leastconn", "www"));
        refused(
            &t,
            "updateLoadBalancerRule",
            &[("id", &lb_id), ("algorithm", "fastest")],
            431,
            "Invalid algorithm: fastest",
        )
        .await;

        t.call("removeFromLoadBalancerRule", &[("id", &lb_id), ("virtualmachineids", &a)]).await;
        let applied = t.list("listLoadBalancerRuleInstances", &[("id", &lb_id)]).await;
        assert_eq!(applied.iter().map(id).collect::<Vec<_>>(), vec![b.clone()]);

        t.call("deleteLoadBalancerRule", &[("id", &lb_id)]).await;
        assert!(t.list("listLoadBalancerRules", &[]).await.is_empty());
        assert!(
            t.list("listFirewallRules", &[("ipaddressid", ip)]).await.is_empty(),
            "the firewall rule it opened is gone"
        );
        for vm in [&a, &b] {
            t.call("destroyVirtualMachine", &[("id", vm), ("expunge", "true")]).await;
        }
    });
}

#[test]
fn rules_are_refused_on_foreign_static_nat_and_unassociated_addresses() {
    let cloud = cloud();
    cloud.block_on(async {
        let owner = tenant(cloud).await;
        let other = tenant(cloud).await;
        let vm = owner.deploy("target").await;
        let ip = owner.ip.as_str();
        // Another account's IP: 531 for every kind of rule, and nothing listed.
        let cases: [(&str, Vec<(&str, &str)>); 3] = [
            ("createFirewallRule", vec![("ipaddressid", ip), ("protocol", "tcp"), ("startport", "22")]),
            (
                "createPortForwardingRule",
                vec![("ipaddressid", ip), ("protocol", "tcp"), ("publicport", "22"), ("privateport", "22"), ("virtualmachineid", &vm)],
            ),
            (
                "createLoadBalancerRule",
                vec![("name", "x"), ("algorithm", "source"), ("publicport", "80"), ("privateport", "80"), ("publicipid", ip)],
            ),
        ];
        for (command, params) in &cases {
            let before = rule_rows(&owner.network).await;
            let err = other.user.call(command, params).await.expect_err(command);
            assert_eq!(err.code(), Some(531), "{command}: {err}");
            assert_eq!(rule_rows(&owner.network).await, before, "{command}");
        }
        let err = other.user.call("listPortForwardingRules", &[("ipaddressid", ip)]).await.expect_err("listing theirs");
        assert_eq!(err.code(), Some(531), "{err}");
        // Their rules are not visible to others, nor changeable.
        let fw = owner.call("createFirewallRule", &[("ipaddressid", ip), ("protocol", "tcp"), ("startport", "22")]).await;
        assert!(other.user.list("listFirewallRules", &[]).await.expect("list").is_empty());
        let err = other.user.call("deleteFirewallRule", &[("id", &id(&fw))]).await.expect_err("deleting theirs");
        assert_eq!(err.code(), Some(531), "{err}");

        // A static NAT address takes no forwarding or balancing rule.
        let (nat_ip, address) = public_ip(&owner.user, &owner.network).await;
        owner.call("enableStaticNat", &[("ipaddressid", &nat_ip), ("virtualmachineid", &vm)]).await;
        let pf = [("ipaddressid", nat_ip.as_str()), ("protocol", "tcp"), ("publicport", "22"), ("privateport", "22"), ("virtualmachineid", &vm)];
        let said = format!("Unable to create port forwarding rule; ip id={nat_ip} has static nat enabled");
        refused(&owner, "createPortForwardingRule", &pf, 431, &said).await;
        let lb = [("name", "x"), ("algorithm", "source"), ("publicport", "80"), ("privateport", "80"), ("publicipid", &nat_ip)];
        refused(&owner, "createLoadBalancerRule", &lb, 537, &format!("Can't do load balance on ip address: {address}")).await;
        // Firewall rules are how a static NAT address opens ports.
        owner.call("createFirewallRule", &[("ipaddressid", &nat_ip), ("protocol", "tcp"), ("startport", "22")]).await;

        // An address given back: associated with no network any more.
        let (loose, _) = public_ip(&owner.user, &owner.network).await;
        owner.call("disassociateIpAddress", &[("id", &loose)]).await;
        let said = format!(
            "Unable to create firewall rule for the IP address ID={loose} as IP is not associated with any network and no \
             networkId is passed in"
        );
        refused(&owner, "createFirewallRule", &[("ipaddressid", &loose), ("protocol", "tcp")], 431, &said).await;
        let pf = [("ipaddressid", loose.as_str()), ("protocol", "tcp"), ("publicport", "22"), ("privateport", "22"), ("virtualmachineid", &vm)];
        let said = format!("Unable to create PF rule, invalid IP address id {loose}");
        refused(&owner, "createPortForwardingRule", &pf, 431, &said).await;
        let lb = [("name", "x"), ("algorithm", "source"), ("publicport", "80"), ("privateport", "80"), ("publicipid", &loose)];
        let said = "Unable to create load balancer rule ; specified sourceip id is not associated with any network";
        refused(&owner, "createLoadBalancerRule", &lb, 431, said).await;

        // A network whose offering has no router services (no source NAT).
        let plain = tenant_on(cloud, "DefaultIsolatedNetworkOffering").await;
        let params = [("ipaddressid", plain.ip.as_str()), ("protocol", "tcp"), ("startport", "22")];
        refused(&plain, "createFirewallRule", &params, 431, "Firewall service is not supported in specified network id")
            .await;
        let lb = [("name", "x"), ("algorithm", "source"), ("publicport", "80"), ("privateport", "80"), ("publicipid", &plain.ip)];
        refused(&plain, "createLoadBalancerRule", &lb, 431, "LB service is not supported in specified network id")
            .await;
        owner.call("destroyVirtualMachine", &[("id", &vm), ("expunge", "true")]).await;
    });
}

#[test]
fn rule_jobs_report_as_cloudstack_does() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = tenant(cloud).await;
        let reply = t
            .user
            .reply("createFirewallRule", &[("ipaddressid", &t.ip), ("protocol", "tcp"), ("startport", "443")])
            .await
            .expect("createFirewallRule");
        let wasmstack::api::render::Reply::AsyncJob { job_id, id: Some(rule) } = reply else {
            panic!("not an async create: {reply:?}");
        };
        let done = t.user.job_result("createFirewallRule", &job_id).await.expect("the job");
        assert_eq!(id(&done), rule);
        let job =
            first(t.list("listAsyncJobs", &[]).await.into_iter().filter(|j| text(j, "jobid") == job_id).collect());
        assert_eq!(text(&job, "cmd"), "org.apache.cloudstack.api.command.user.firewall.CreateFirewallRuleCmd");
        assert_eq!((text(&job, "jobinstancetype"), text(&job, "jobinstanceid")), ("FirewallRule", rule.as_str()));
        assert!(job["jobresult"]["firewallrule"].is_object(), "{job:?}");
        let events = t.list("listEvents", &[("type", "FIREWALL.OPEN")]).await;
        assert!(events.iter().any(|e| text(e, "resourceid") == rule), "{events:?}");
    });
}
