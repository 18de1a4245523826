//! Security groups through the orchestrator in-process, on the process's demo cloud
//! (Simulator, SQLite in memory): every command, the default group, refusals with
//! CloudStack's codes and texts that leave the database as it was, deploys into groups on
//! a Shared network with the SecurityGroup service, and the per-NIC rule sets a network
//! driver is handed, as instances come and go.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Map, Value};
use wasmstack::operator::{Operator, OperatorError, id};
use wasmstack::orchestrate::security_groups::{NicRules, Protocol, networks_affected, nic_rule_sets};

use crate::support::{DemoCloud, NewAccount, new_uuid};

fn cloud() -> &'static DemoCloud {
    crate::support::demo_cloud()
}

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> &'a str {
    object.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn items<'a>(object: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    object.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn refusal(e: OperatorError) -> (u32, String) {
    match e {
        OperatorError::Command { code, text, .. } => (code, text),
        other => panic!("not an API refusal: {other}"),
    }
}

async fn scalar(cloud: &DemoCloud, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(cloud.orch.db.pool()).await.expect(sql)
}

/// What the security group tables hold (all accounts): a refusal leaves this as it was.
async fn state(cloud: &DemoCloud) -> [i64; 4] {
    [
        scalar(cloud, "SELECT COUNT(*) FROM security_groups").await,
        scalar(cloud, "SELECT COUNT(*) FROM security_group_rules").await,
        scalar(cloud, "SELECT COUNT(*) FROM instance_security_groups").await,
        scalar(cloud, "SELECT COUNT(*) FROM instances").await,
    ]
}

/// A Shared network on `DefaultSharedNetworkOfferingWithSGService` in the demo zone, with
/// a CIDR and VLAN of its own.
async fn sg_network(cloud: &DemoCloud) -> (String, i64) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let admin = cloud.admin().await;
    let offering = admin
        .list("listNetworkOfferings", &[("name", "DefaultSharedNetworkOfferingWithSGService")])
        .await
        .expect("network offerings");
    let offering = id(offering.first().expect("the SG offering"));
    let listed = admin.list("listNetworkOfferings", &[("id", &offering)]).await.expect("the offering");
    let services: Vec<&str> = items(&listed[0], "service").iter().filter_map(|s| s["name"].as_str()).collect();
    assert!(services.contains(&"SecurityGroup"), "{services:?}");
    let zone = id(admin.list("listZones", &[]).await.expect("zones").first().expect("the demo zone"));
    // VLANs from the top of the demo's range down: its Isolated networks take them from the bottom up.
    let (vlan, net) = (format!("{}", 199 - n), format!("10.{}.7", 200 + n));
    let network = admin
        .call(
            "createNetwork",
            &[
                ("name", &format!("sg-{n}")),
                ("displaytext", "security groups"),
                ("networkofferingid", &offering),
                ("zoneid", &zone),
                ("vlan", &vlan),
                ("gateway", &format!("{net}.1")),
                ("netmask", "255.255.255.0"),
                ("startip", &format!("{net}.10")),
                ("endip", &format!("{net}.99")),
            ],
        )
        .await
        .expect("a Shared network with security groups");
    let uuid = id(&network);
    let internal = sqlx::query_scalar::<_, i64>("SELECT id FROM networks WHERE uuid = $1")
        .bind(&uuid)
        .fetch_one(cloud.orch.db.pool())
        .await
        .expect("the network's id");
    (uuid, internal)
}

async fn deploy(
    t: &NewAccount<'_>,
    network: &str,
    extra: &[(&str, &str)],
) -> Result<Map<String, Value>, OperatorError> {
    let name = format!("vm-{}", &new_uuid()[..8]);
    let mut params = vec![
        ("name", name.as_str()),
        ("zoneid", &t.zone),
        ("templateid", &t.template),
        ("serviceofferingid", &t.offering),
        ("networkids", network),
    ];
    params.extend_from_slice(extra);
    t.user.call("deployVirtualMachine", &params).await
}

fn group_names(vm: &Map<String, Value>) -> Vec<String> {
    items(vm, "securitygroup").iter().filter_map(|g| g.get("name").and_then(Value::as_str)).map(str::to_owned).collect()
}

async fn group_by_name(t: &NewAccount<'_>, name: &str) -> Map<String, Value> {
    let found = t.user.list("listSecurityGroups", &[("securitygroupname", name)]).await.expect("listSecurityGroups");
    found.into_iter().next().unwrap_or_else(|| panic!("no group {name}"))
}

fn nic_ip(vm: &Map<String, Value>) -> String {
    items(vm, "nic").first().and_then(|n| n.get("ipaddress")).and_then(Value::as_str).expect("an address").to_owned()
}

fn set_of<'a>(sets: &'a [NicRules], vm: &Map<String, Value>) -> Option<&'a NicRules> {
    sets.iter().find(|s| s.instance == id(vm))
}

#[test]
fn groups_are_created_listed_and_deleted_beside_the_default_group() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = cloud.new_account("sg").await;
        // The account's default group is there when first looked for: no rules at all.
        let groups = t.user.list("listSecurityGroups", &[]).await.expect("listSecurityGroups");
        assert_eq!(groups.iter().map(|g| text(g, "name")).collect::<Vec<_>>(), ["default"]);
        let default = &groups[0];
        assert_eq!(text(default, "description"), "Default Security Group");
        assert_eq!(text(default, "account"), t.account);
        assert!(items(default, "ingressrule").is_empty() && items(default, "egressrule").is_empty(), "{default:?}");
        assert_eq!(default.get("tags"), Some(&Value::Array(vec![])));
        assert_eq!(default.get("virtualmachinecount"), Some(&Value::from(0)));

        let web = t
            .user
            .call("createSecurityGroup", &[("name", "web"), ("description", "web servers")])
            .await
            .expect("createSecurityGroup");
        assert_eq!((text(&web, "name"), text(&web, "description")), ("web", "web servers"));
        assert!(web.get("ingressrule").is_some_and(Value::is_array), "{web:?}");
        for filter in [("securitygroupname", "web"), ("id", &id(&web)), ("keyword", "we")] {
            let found = t.user.list("listSecurityGroups", &[filter]).await.expect("filtered");
            assert_eq!(found.iter().map(|g| text(g, "name")).collect::<Vec<_>>(), ["web"], "{filter:?}");
        }
        // Another account sees none of them, and may not delete them.
        let other = cloud.new_account("sgo").await;
        assert_eq!(other.user.list("listSecurityGroups", &[]).await.expect("list").len(), 1, "its own default only");

        let before = state(cloud).await;
        let web_id = id(&web);
        let default_id = id(default);
        type Case<'a> = (&'a Operator<'a>, &'a str, Vec<(&'a str, &'a str)>, u32, &'a str);
        let cases: Vec<Case> = vec![
            (
                &t.user,
                "createSecurityGroup",
                vec![("name", "web")],
                431,
                "Unable to create security group, a group with name web already exists.",
            ),
            (
                &t.user,
                "createSecurityGroup",
                vec![("name", "default")],
                431,
                "Unable to create security group, a group with name default already exists.",
            ),
            (&t.user, "deleteSecurityGroup", vec![("id", &default_id)], 431, "The network group default is reserved"),
            (&t.user, "deleteSecurityGroup", vec![("name", "default")], 431, "The network group default is reserved"),
            (
                &t.user,
                "deleteSecurityGroup",
                vec![],
                431,
                "Either id or name parameter is required by deleteSecurityGroup command",
            ),
            (&other.user, "deleteSecurityGroup", vec![("id", &web_id)], 531, ""),
        ];
        for (who, command, params, code, wanted) in cases {
            let (got, said) = refusal(who.call(command, &params).await.expect_err(command));
            assert_eq!(got, code, "{command} {params:?}: {said}");
            if !wanted.is_empty() {
                assert_eq!(said, wanted, "{command} {params:?}");
            }
            assert_eq!(state(cloud).await, before, "{command} {params:?} changed something");
        }

        t.user.call("deleteSecurityGroup", &[("name", "web")]).await.expect("deleteSecurityGroup by name");
        let left = t.user.list("listSecurityGroups", &[]).await.expect("list");
        assert_eq!(left.iter().map(|g| text(g, "name")).collect::<Vec<_>>(), ["default"]);
        let again = t.user.call("createSecurityGroup", &[("name", "web")]).await.expect("the name is free again");
        t.user.call("deleteSecurityGroup", &[("id", &id(&again))]).await.expect("deleteSecurityGroup by id");
    });
}

#[test]
fn rules_are_authorized_listed_and_revoked() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = cloud.new_account("sgr").await;
        t.user.call("createSecurityGroup", &[("name", "web")]).await.expect("web");
        let made = t
            .user
            .call(
                "authorizeSecurityGroupIngress",
                &[
                    ("securitygroupname", "web"),
                    ("protocol", "TCP"),
                    ("startport", "22"),
                    ("endport", "22"),
                    ("cidrlist", "0.0.0.0/0,10.0.0.0/8"),
                ],
            )
            .await
            .expect("authorizeSecurityGroupIngress");
        // The job's result is the group with the new rules: one per CIDR.
        assert_eq!(text(&made, "name"), "web");
        let new = items(&made, "ingressrule");
        assert_eq!(new.len(), 2, "{made:?}");
        let cidrs: Vec<&str> = new.iter().filter_map(|r| r["cidr"].as_str()).collect();
        assert_eq!(cidrs, ["0.0.0.0/0", "10.0.0.0/8"]);
        assert!(new.iter().all(|r| r["protocol"] == "tcp" && r["startport"] == 22 && r["endport"] == 22));
        assert!(new.iter().all(|r| r["ruleid"].as_str().is_some_and(|s| s.len() == 36)));

        // The same rule again adds nothing, as in CloudStack.
        let again = t
            .user
            .call(
                "authorizeSecurityGroupIngress",
                &[
                    ("securitygroupname", "web"),
                    ("protocol", "tcp"),
                    ("startport", "22"),
                    ("endport", "22"),
                    ("cidrlist", "10.0.0.0/8"),
                ],
            )
            .await
            .expect("the same rule");
        assert!(items(&again, "ingressrule").is_empty(), "{again:?}");

        let web = group_by_name(&t, "web").await;
        let icmp = t
            .user
            .call(
                "authorizeSecurityGroupIngress",
                &[
                    ("securitygroupid", &id(&web)),
                    ("protocol", "icmp"),
                    ("icmptype", "-1"),
                    ("icmpcode", "-1"),
                    ("cidrlist", "192.0.2.0/24"),
                ],
            )
            .await
            .expect("icmp");
        let icmp_rule = &items(&icmp, "ingressrule")[0];
        assert_eq!((icmp_rule["icmptype"].as_i64(), icmp_rule["icmpcode"].as_i64()), (Some(-1), Some(-1)));
        // Members of the account's default group may reach web on 80.
        let from_default = t
            .user
            .call(
                "authorizeSecurityGroupIngress",
                &[
                    ("securitygroupname", "web"),
                    ("protocol", "tcp"),
                    ("startport", "80"),
                    ("endport", "80"),
                    ("usersecuritygrouplist[0].account", &t.account),
                    ("usersecuritygrouplist[0].group", "default"),
                ],
            )
            .await
            .expect("a group rule");
        let group_rule = &items(&from_default, "ingressrule")[0];
        assert_eq!(
            (group_rule["securitygroupname"].as_str(), group_rule["account"].as_str()),
            (Some("default"), Some(t.account.as_str()))
        );
        assert!(group_rule.get("cidr").is_none());
        let egress = t
            .user
            .call(
                "authorizeSecurityGroupEgress",
                &[
                    ("securitygroupname", "web"),
                    ("protocol", "udp"),
                    ("startport", "53"),
                    ("endport", "53"),
                    ("cidrlist", "0.0.0.0/0"),
                ],
            )
            .await
            .expect("authorizeSecurityGroupEgress");
        let egress_rule = items(&egress, "egressrule")[0].clone();
        assert!(items(&egress, "ingressrule").is_empty());
        // Protocol "all" (the default) and a protocol number.
        t.user
            .call("authorizeSecurityGroupEgress", &[("securitygroupname", "web"), ("cidrlist", "198.51.100.0/24")])
            .await
            .expect("all protocols");
        let gre = t
            .user
            .call(
                "authorizeSecurityGroupEgress",
                &[("securitygroupname", "web"), ("protocol", "47"), ("cidrlist", "198.51.100.0/24")],
            )
            .await
            .expect("protocol 47");
        assert_eq!(items(&gre, "egressrule")[0]["protocol"], "47");

        let web = group_by_name(&t, "web").await;
        assert_eq!(items(&web, "ingressrule").len(), 4);
        assert_eq!(items(&web, "egressrule").len(), 3);
        let protocols: Vec<&str> = items(&web, "egressrule").iter().filter_map(|r| r["protocol"].as_str()).collect();
        assert_eq!(protocols, ["udp", "all", "47"]);

        // The default group, named by a rule of web, cannot go while it does (nor ever, being default);
        // a plain group named by a rule cannot go either.
        t.user.call("createSecurityGroup", &[("name", "lb")]).await.expect("lb");
        t.user
            .call(
                "authorizeSecurityGroupIngress",
                &[
                    ("securitygroupname", "web"),
                    ("protocol", "tcp"),
                    ("startport", "8080"),
                    ("endport", "8080"),
                    ("usersecuritygrouplist[0].account", &t.account),
                    ("usersecuritygrouplist[0].group", "lb"),
                ],
            )
            .await
            .expect("a rule naming lb");
        let before = state(cloud).await;
        let (code, said) =
            refusal(t.user.call("deleteSecurityGroup", &[("name", "lb")]).await.expect_err("lb is named"));
        assert_eq!(
            (code, said.as_str()),
            (536, "Cannot delete group when there are security rules that allow this group")
        );
        assert_eq!(state(cloud).await, before);

        // Revoking: by the rule's id, in its own direction only.
        let egress_id = egress_rule["ruleid"].as_str().expect("a rule id").to_owned();
        let (code, said) = refusal(
            t.user.call("revokeSecurityGroupIngress", &[("id", &egress_id)]).await.expect_err("wrong direction"),
        );
        assert_eq!((code, said), (431, format!("Mismatch in rule type for security rule with id {egress_id}")));
        let other = cloud.new_account("sgx").await;
        let (code, _) =
            refusal(other.user.call("revokeSecurityGroupEgress", &[("id", &egress_id)]).await.expect_err("not theirs"));
        assert_eq!(code, 531);
        assert_eq!(state(cloud).await, before);
        t.user.call("revokeSecurityGroupEgress", &[("id", &egress_id)]).await.expect("revokeSecurityGroupEgress");
        let web = group_by_name(&t, "web").await;
        assert_eq!(items(&web, "egressrule").len(), 2);
        let lb_rule = items(&web, "ingressrule")
            .iter()
            .find(|r| r["securitygroupname"] == "lb")
            .and_then(|r| r["ruleid"].as_str())
            .expect("the rule naming lb")
            .to_owned();
        t.user.call("revokeSecurityGroupIngress", &[("id", &lb_rule)]).await.expect("revoke");
        t.user.call("deleteSecurityGroup", &[("name", "lb")]).await.expect("lb is free to go");
        let (code, said) =
            refusal(t.user.call("revokeSecurityGroupIngress", &[("id", &lb_rule)]).await.expect_err("gone"));
        assert_eq!((code, said), (431, format!("Unable to find security rule with id {lb_rule}")));
    });
}

#[test]
fn bad_rules_are_refused_with_cloudstacks_errors_and_change_nothing() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = cloud.new_account("sgb").await;
        let web = t.user.call("createSecurityGroup", &[("name", "web")]).await.expect("web");
        let other = cloud.new_account("sgc").await;
        let theirs = other.user.call("createSecurityGroup", &[("name", "theirs")]).await.expect("theirs");
        let (web_id, their_id) = (id(&web), id(&theirs));
        let tcp = |s: &'static str, e: &'static str| {
            vec![
                ("securitygroupname", "web"),
                ("protocol", "tcp"),
                ("startport", s),
                ("endport", e),
                ("cidrlist", "0.0.0.0/0"),
            ]
        };
        type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u32, String);
        let cases: Vec<Case> = vec![
            ("reversed port range", tcp("30", "20"), 431, "Invalid port range 30:20".into()),
            ("port above 65535", tcp("1", "70000"), 431, "Invalid port numbers 1:70000".into()),
            (
                "missing end port",
                vec![("securitygroupname", "web"), ("protocol", "udp"), ("startport", "5"), ("cidrlist", "0.0.0.0/0")],
                431,
                "Invalid port range specified, startPort = 5, endPort = null".into(),
            ),
            (
                "unknown protocol",
                vec![("securitygroupname", "web"), ("protocol", "gre"), ("cidrlist", "0.0.0.0/0")],
                431,
                "Invalid protocol gre".into(),
            ),
            (
                "protocol number above 255",
                vec![("securitygroupname", "web"), ("protocol", "300"), ("cidrlist", "0.0.0.0/0")],
                431,
                "Invalid protocol number: 300".into(),
            ),
            (
                "ports with protocol all",
                vec![("securitygroupname", "web"), ("startport", "1"), ("endport", "2"), ("cidrlist", "0.0.0.0/0")],
                431,
                "Cannot specify startPort or endPort without specifying protocol".into(),
            ),
            (
                "icmp code without type",
                vec![
                    ("securitygroupname", "web"),
                    ("protocol", "icmp"),
                    ("icmptype", "-1"),
                    ("icmpcode", "3"),
                    ("cidrlist", "0.0.0.0/0"),
                ],
                431,
                "Invalid icmp code".into(),
            ),
            (
                "malformed CIDR",
                vec![
                    ("securitygroupname", "web"),
                    ("protocol", "tcp"),
                    ("startport", "22"),
                    ("endport", "22"),
                    ("cidrlist", "10.0.0.300/24"),
                ],
                431,
                "Invalid cidr 10.0.0.300/24".into(),
            ),
            (
                "CIDR without prefix",
                vec![("securitygroupname", "web"), ("cidrlist", "10.0.0.1")],
                431,
                "Invalid cidr 10.0.0.1".into(),
            ),
            (
                "no CIDR or group",
                vec![("securitygroupname", "web"), ("protocol", "tcp"), ("startport", "22"), ("endport", "22")],
                431,
                "At least one cidr or at least one security group needs to be specified".into(),
            ),
            (
                "id and name",
                vec![("securitygroupname", "web"), ("securitygroupid", &web_id), ("cidrlist", "0.0.0.0/0")],
                431,
                "securityGroupId and securityGroupName parameters are mutually exclusive".into(),
            ),
            (
                "neither id nor name",
                vec![("cidrlist", "0.0.0.0/0")],
                431,
                "Either securityGroupId or securityGroupName is required by authorizeSecurityGroupIngress command"
                    .into(),
            ),
            ("unknown group name", vec![("securitygroupname", "nope"), ("cidrlist", "0.0.0.0/0")], 431, String::new()),
            (
                "group of another account",
                vec![("securitygroupid", &their_id), ("cidrlist", "0.0.0.0/0")],
                531,
                String::new(),
            ),
            (
                "a nonexistent group to allow",
                vec![
                    ("securitygroupname", "web"),
                    ("usersecuritygrouplist[0].account", &t.account),
                    ("usersecuritygrouplist[0].group", "nope"),
                ],
                431,
                String::new(),
            ),
            (
                "an allowed group without its account",
                vec![("securitygroupname", "web"), ("usersecuritygrouplist[0].group", "web")],
                431,
                String::new(),
            ),
        ];
        let before = state(cloud).await;
        for (what, params, code, wanted) in cases {
            let (got, said) = refusal(t.user.call("authorizeSecurityGroupIngress", &params).await.expect_err(what));
            assert_eq!(got, code, "{what}: {said}");
            if !wanted.is_empty() {
                assert_eq!(said, wanted, "{what}");
            }
            assert_eq!(state(cloud).await, before, "{what} changed something");
        }
        assert!(items(&group_by_name(&t, "web").await, "ingressrule").is_empty());
    });
}

#[test]
fn deploys_put_instances_in_groups_and_rule_sets_follow_their_members() {
    let cloud = cloud();
    cloud.block_on(async {
        let t = cloud.new_account("sgd").await;
        let (network, network_id) = sg_network(cloud).await;
        let web = t.user.call("createSecurityGroup", &[("name", "web")]).await.expect("web");
        let other = cloud.new_account("sge").await;
        let theirs = other.user.call("createSecurityGroup", &[("name", "theirs")]).await.expect("theirs");
        let isolated = t.isolated_network("plain").await;

        // Refusals first: nothing is made.
        let before = state(cloud).await;
        let (web_id, their_id) = (id(&web), id(&theirs));
        type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, u32, &'a str);
        let cases: Vec<Case> = vec![
            (
                "ids and names",
                network.clone(),
                vec![("securitygroupids", &web_id), ("securitygroupnames", "web")],
                431,
                "securitygroupids parameter is mutually exclusive with securitygroupnames parameter",
            ),
            (
                "a network without the service",
                isolated.clone(),
                vec![("securitygroupnames", "web")],
                431,
                "Can't create vm with security groups; security group feature is not enabled per zone",
            ),
            (
                "an unknown name",
                network.clone(),
                vec![("securitygroupnames", "nope")],
                431,
                "Unable to find group by name nope",
            ),
            ("another account's group", network.clone(), vec![("securitygroupids", &their_id)], 531, ""),
        ];
        for (what, net, extra, code, wanted) in cases {
            let (got, said) = refusal(deploy(&t, &net, &extra).await.expect_err(what));
            assert_eq!(got, code, "{what}: {said}");
            if !wanted.is_empty() {
                assert_eq!(said, wanted, "{what}");
            }
            assert_eq!(state(cloud).await, before, "{what} changed something");
        }

        // With no group named, the default group; on a network without the service, none.
        let a = deploy(&t, &network, &[]).await.expect("deploy into the default group");
        assert_eq!(group_names(&a), ["default"]);
        let plain = deploy(&t, &isolated, &[]).await.expect("deploy on an Isolated network");
        assert!(group_names(&plain).is_empty(), "{plain:?}");
        let b = deploy(&t, &network, &[("securitygroupnames", "web")]).await.expect("deploy into web");
        assert_eq!(group_names(&b), ["web"]);
        let c = deploy(&t, &network, &[("securitygroupids", &web_id)]).await.expect("deploy into web by id");
        assert_eq!(group_names(&c), ["web"]);
        let listed = t.user.list("listVirtualMachines", &[("id", &id(&b))]).await.expect("listVirtualMachines");
        assert_eq!(group_names(&listed[0]), ["web"]);
        let of_b = t.user.list("listSecurityGroups", &[("virtualmachineid", &id(&b))]).await.expect("groups of b");
        assert_eq!(of_b.iter().map(|g| text(g, "name")).collect::<Vec<_>>(), ["web"]);
        let web_now = group_by_name(&t, "web").await;
        assert_eq!(web_now.get("virtualmachinecount"), Some(&Value::from(2)));

        // A group in use cannot go.
        let before = state(cloud).await;
        let (code, said) = refusal(t.user.call("deleteSecurityGroup", &[("id", &web_id)]).await.expect_err("in use"));
        assert_eq!((code, said.as_str()), (536, "Cannot delete group when it's in use by virtual machines"));
        assert_eq!(state(cloud).await, before);

        // The default group lets web's members in on tcp/80: A's NIC allows exactly B's and C's addresses.
        t.user
            .call(
                "authorizeSecurityGroupIngress",
                &[
                    ("securitygroupname", "default"),
                    ("protocol", "tcp"),
                    ("startport", "80"),
                    ("endport", "80"),
                    ("usersecuritygrouplist[0].account", &t.account),
                    ("usersecuritygrouplist[0].group", "web"),
                ],
            )
            .await
            .expect("default lets web in");
        let db = &cloud.orch.db;
        let sets = nic_rule_sets(db, network_id).await.expect("rule sets");
        assert_eq!(sets.len(), 3, "one set per NIC on the network: {sets:?}");
        let a_set = set_of(&sets, &a).expect("A's set");
        assert_eq!(a_set.ip.map(|i| i.to_string()), Some(nic_ip(&a)));
        assert_eq!(a_set.ingress.len(), 1);
        assert_eq!((a_set.ingress[0].protocol, a_set.ingress[0].ports), (Protocol::Tcp, Some((80, 80))));
        let mut allowed = a_set.ingress[0].cidrs.clone();
        allowed.sort();
        let mut wanted = vec![format!("{}/32", nic_ip(&b)), format!("{}/32", nic_ip(&c))];
        wanted.sort();
        assert_eq!(allowed, wanted);
        assert!(a_set.egress_open);
        let b_set = set_of(&sets, &b).expect("B's set");
        assert!(b_set.ingress.is_empty() && b_set.egress_open, "web has no rules: ingress closed, egress open");
        // The change to web reaches this network (web's members, and default's who name web).
        let web_internal: i64 = sqlx::query_scalar("SELECT id FROM security_groups WHERE uuid = $1")
            .bind(&web_id)
            .fetch_one(db.pool())
            .await
            .expect("web's id");
        assert_eq!(networks_affected(db, web_internal).await.expect("affected"), [network_id]);

        // B stops: its address leaves A's rule, and B has no set; it comes back on start.
        t.user.call("stopVirtualMachine", &[("id", &id(&b))]).await.expect("stop B");
        let sets = nic_rule_sets(db, network_id).await.expect("rule sets");
        assert!(set_of(&sets, &b).is_none());
        assert_eq!(set_of(&sets, &a).expect("A").ingress[0].cidrs, [format!("{}/32", nic_ip(&c))]);
        // A stopped VM changes groups; a running one may not.
        let (code, said) = refusal(
            t.user
                .call("updateVirtualMachine", &[("id", &id(&a)), ("securitygroupids", &web_id)])
                .await
                .expect_err("running"),
        );
        assert_eq!((code, said), (431, format!("VM {} must be stopped prior to update security groups", id(&a))));
        let changed = t
            .user
            .call("updateVirtualMachine", &[("id", &id(&b)), ("securitygroupnames", "default")])
            .await
            .expect("update a stopped VM's groups");
        assert_eq!(group_names(&changed), ["default"]);
        t.user.call("startVirtualMachine", &[("id", &id(&b))]).await.expect("start B");
        let sets = nic_rule_sets(db, network_id).await.expect("rule sets");
        let b_set = set_of(&sets, &b).expect("B is back");
        assert_eq!(b_set.ingress.len(), 1, "B is in default now, which lets web in");
        assert_eq!(b_set.ingress[0].cidrs, [format!("{}/32", nic_ip(&c))], "only C is in web now");

        // Destroying the members frees web.
        for vm in [&b, &c] {
            t.user.call("destroyVirtualMachine", &[("id", &id(vm))]).await.expect("destroy");
        }
        let sets = nic_rule_sets(db, network_id).await.expect("rule sets");
        assert!(set_of(&sets, &a).expect("A").ingress.is_empty(), "no member of web is left: {sets:?}");
    });
}

#[test]
fn zones_with_security_groups_take_shared_networks_on_the_sg_offering() {
    let cloud = cloud();
    cloud.block_on(async {
        let admin = cloud.admin().await;
        let tag = &new_uuid()[..6];
        let zone = admin
            .call(
                "createZone",
                &[
                    ("name", &format!("zsg{tag}")),
                    ("networktype", "Advanced"),
                    ("securitygroupenabled", "true"),
                    ("dns1", "8.8.8.8"),
                    ("internaldns1", "10.0.0.2"),
                ],
            )
            .await
            .expect("an Advanced zone with security groups");
        assert_eq!(zone.get("securitygroupsenabled"), Some(&Value::Bool(true)), "{zone:?}");
        let phys = admin
            .call(
                "createPhysicalNetwork",
                &[
                    ("name", &format!("psg{tag}")),
                    ("zoneid", &id(&zone)),
                    ("vlan", "200-209"),
                    ("isolationmethods", "VLAN"),
                ],
            )
            .await
            .expect("a physical network");
        admin
            .call(
                "addTrafficType",
                &[("physicalnetworkid", &id(&phys)), ("traffictype", "Guest"), ("kvmnetworklabel", "ws-sg")],
            )
            .await
            .expect("guest traffic");
        let offering = admin
            .list("listNetworkOfferings", &[("name", "DefaultSharedNetworkOfferingWithSGService")])
            .await
            .expect("offerings");
        let net = admin
            .call(
                "createNetwork",
                &[
                    ("name", "sg"),
                    ("displaytext", "sg"),
                    ("networkofferingid", &id(&offering[0])),
                    ("zoneid", &id(&zone)),
                    ("vlan", "201"),
                    ("gateway", "10.231.0.1"),
                    ("netmask", "255.255.255.0"),
                    ("startip", "10.231.0.10"),
                    ("endip", "10.231.0.50"),
                ],
            )
            .await
            .expect("a Shared network on the SG offering");
        assert_eq!(text(&net, "type"), "Shared");
        let services: Vec<&str> = items(&net, "service").iter().filter_map(|s| s["name"].as_str()).collect();
        assert!(services.contains(&"SecurityGroup"), "{net:?}");
    });
}
