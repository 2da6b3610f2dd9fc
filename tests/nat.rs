//! `nat::` and `fleet nat` on the network edge of issue 18: a real nftables edge
//! forwards a public port to the VM's sshd behind it, reached from a client on the
//! public network (tests/support/containers.rs `EdgeTopology`).

use crate::support::containers::{ContainerHost, EdgeTopology};

const RECIPES: &str = r#"
/// Forwards 2203 to the edge itself: the port already goes to vm.
fn to_other() { each([host("edge")], |h| nat::forward(h, #{ port: 2203, to_host: "edge", to_port: 22 })); }
/// Forwards the edge's own SSH port.
fn own_ssh() { each([host("edge")], |h| nat::forward(h, #{ port: 22, to_host: "vm" })); }
/// A port out of range.
fn bad_port() { each([host("edge")], |h| nat::forward(h, #{ port: 70000, to_host: "vm" })); }
/// A target that is not in the inventory.
fn nowhere() { each([host("edge")], |h| nat::forward(h, #{ port: 2205, to_host: "nowhere" })); }
/// One more forward to vm, as `fleet provision --forward-ssh` will add it.
fn extra() { each([host("edge")], |h| nat::forward(h, #{ port: 2204, proto: "tcp", to_host: "vm", to_port: 22, comment: "provisioned" })); }
/// Every forward to vm removed, as `fleet terminate vm` will.
fn gone() { each([host("edge")], |h| nat::remove_target(h, "vm")); }
/// The forwards, one line each.
fn forwards() { for f in nat::list(host("edge")) { print(`${f.proto} ${f.port} -> ${f.to_host} ${f.to_address}:${f.to_port} (${f.from})`); } }
"#;

/// The host key the client sees at `ip:port` (empty when nothing answers).
fn key_seen(client: &ContainerHost, ip: &str, port: u16) -> String {
    client
        .try_exec(&format!(
            "ssh-keyscan -T 5 -t ed25519 -p {port} {ip} 2>/dev/null | cut -d' ' -f2-"
        ))
        .1
        .trim()
        .to_string()
}

fn host_key(h: &ContainerHost) -> String {
    let key = h.exec("cat /etc/ssh/ssh_host_ed25519_key.pub");
    key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

#[test]
fn the_edge_forwards_a_port_to_the_vm_and_keeps_what_it_did_not_write() {
    let t = EdgeTopology::start();
    let (ok, out) = t.edge.try_exec("nft list ruleset");
    assert!(ok, "nft does not work in the edge container: {out}");
    // A table fleet did not write.
    let (ok, out) = t.edge.try_exec(
        "nft add table inet handmade && nft add chain inet handmade input '{ type filter hook input priority 0; }' && nft add rule inet handmade input tcp dport 9999 accept comment '\"by hand\"'",
    );
    assert!(ok, "{out}");
    let nat = r#"ssh = { port = 22 }, nat = { forwards = [{ port = 2203, to_host = "vm", to_port = 22, comment = "vm ssh" }] }"#;
    let p = t.project(nat, "").recipe("edge", RECIPES);
    let public = t.edge.ip_on(&t.public);
    let vm_key = host_key(&t.vm);
    t.client_on_the_internet();
    let table = || t.edge.try_exec("nft list table ip fleet_nat").1;

    // --check: the ruleset diff, nothing changed.
    let check = p.fleet(&["nat", "--check"]);
    check
        .code(0)
        .stdout_has("would write /etc/fleet/nat.nft")
        .stdout_has("+\t\tfib daddr type local tcp dport 2203 dnat to ");
    assert!(table().contains("No such file"), "{}", table());
    assert_eq!(t.edge.exec("ls /etc/fleet 2>&1 | grep -c 'No such'"), "1\n");
    assert_eq!(key_seen(&t.client, &public, 2203), "");

    let first = p.fleet(&["nat"]);
    first.code(0);
    assert!(first.recap_row("edge").contains("changed"), "{first}");
    assert_eq!(
        key_seen(&t.client, &public, 2203),
        vm_key,
        "{first}\nedge: {}\nvm: {}\nclient: {}",
        t.edge.try_exec("nft list ruleset; ip route; ip -br addr; cat /proc/sys/net/ipv4/ip_forward; conntrack -L 2>&1 | head").1,
        t.vm.try_exec("ip route; ip -br addr; ss -ltn").1,
        t.client.try_exec(&format!("ip -br addr; ip route; ssh-keyscan -T 5 -p 2203 {public}")).1,
    );
    assert_eq!(t.edge.exec("cat /proc/sys/net/ipv4/ip_forward"), "1\n");
    assert!(
        t.edge
            .exec("cat /etc/sysctl.d/60-fleet-nat.conf")
            .contains("net.ipv4.ip_forward = 1")
    );
    // The internal network's outbound traffic leaves with the edge's address.
    let cidr = t.edge.exec(&format!(
        "ip -o -4 addr show | awk '$4 ~ /^{}\\// {{print $4}}'",
        t.edge.ip_on(&t.internal)
    ));
    let prefix = cidr
        .trim()
        .split('/')
        .nth(1)
        .unwrap_or_else(|| panic!("{cidr:?}"));
    assert!(
        table().contains(&format!(
            "/{prefix} masquerade comment \"internal network\""
        )),
        "{}",
        table()
    );
    assert!(
        t.edge
            .exec("cat /etc/systemd/system/fleet-nat.service")
            .contains("PartOf=nftables.service")
    );
    assert!(
        t.edge.exec("ufw show added").contains(&format!(
            "ufw route allow to {} port 22 proto tcp comment 'fleet-nat: vm'",
            t.vm.ip_on(&t.internal)
        )),
        "{}",
        t.edge.exec("ufw show added")
    );
    assert!(
        t.edge
            .exec("nft list table inet handmade")
            .contains("tcp dport 9999 accept comment \"by hand\"")
    );

    // A second run changes nothing; --check has nothing to show.
    let second = p.fleet(&["nat"]);
    second.code(0);
    assert!(
        second.recap_row("edge").contains(" ok"),
        "second run changed something: {second}"
    );
    p.fleet(&["nat", "--check"])
        .code(0)
        .stdout_lacks("would write");

    // Refused, with the table as it was.
    let before = table();
    let file = t.edge.exec("cat /etc/fleet/nat.nft");
    let conflict = p.fleet(&["to_other"]);
    conflict.stderr_has("You cannot forward a source port on the same host to different servers: tcp port 2203 of edge goes to vm and to edge");
    let own = p.fleet(&["own_ssh"]);
    own.stderr_has("port 22 is the SSH port of edge");
    let bad = p.fleet(&["bad_port"]);
    bad.stderr_has("`port` 70000 is not a port (1-65535)");
    let nowhere = p.fleet(&["nowhere"]);
    nowhere.stderr_has("to_host `nowhere` is not in the inventory");
    for refused in [&conflict, &own, &bad, &nowhere] {
        refused.code(3);
        assert!(refused.recap_row("edge").contains("failed"), "{refused}");
    }
    assert_eq!(table(), before);
    assert_eq!(t.edge.exec("cat /etc/fleet/nat.nft"), file);

    // What fleet-nat.service runs after `flush ruleset` brings the forward back.
    let exec_start = t
        .edge
        .exec("sed -n 's/^ExecStart=//p' /etc/systemd/system/fleet-nat.service");
    assert_eq!(exec_start, "/usr/sbin/nft -f /etc/fleet/nat.nft\n");
    let (ok, out) = t
        .edge
        .try_exec(&format!("nft flush ruleset && {}", exec_start.trim()));
    assert!(ok, "{out}");
    assert_eq!(key_seen(&t.client, &public, 2203), vm_key);

    // With ufw active (forwarding denied by default), the route rule lets it through.
    let (ok, out) = t
        .edge
        .try_exec("ufw allow 22/tcp && ufw --force enable && ufw status verbose");
    assert!(ok && out.contains("deny (routed)"), "{out}");
    assert_eq!(key_seen(&t.client, &public, 2203), vm_key);
    let vm_internal = t.vm.ip_on(&t.internal);
    let (ok, out) = t.edge.try_exec(&format!(
        "ufw route delete allow to {vm_internal} port 22 proto tcp"
    ));
    assert!(ok, "{out}");
    assert_eq!(key_seen(&t.client, &public, 2203), "");
    let again = p.fleet(&["nat"]);
    again.code(0);
    assert!(again.recap_row("edge").contains("changed"), "{again}");
    assert_eq!(key_seen(&t.client, &public, 2203), vm_key);

    // A recipe's forward joins the inventory's; the target's removal takes both.
    p.fleet(&["extra"]).code(0);
    assert_eq!(key_seen(&t.client, &public, 2204), vm_key);
    let shown = p.fleet(&["forwards"]);
    shown
        .code(0)
        .stdout_has("tcp 2203 -> vm ")
        .stdout_has(":22 (inventory)")
        .stdout_has(":22 (recipe)");
    p.fleet(&["gone"]).code(0);
    assert_eq!(key_seen(&t.client, &public, 2203), "");
    assert_eq!(key_seen(&t.client, &public, 2204), "");
    assert!(
        !t.edge.exec("ufw show added").contains("fleet-nat:"),
        "{}",
        t.edge.exec("ufw show added")
    );
    // The inventory's forward comes back with the next `fleet nat`.
    p.fleet(&["nat"]).code(0);
    assert_eq!(key_seen(&t.client, &public, 2203), vm_key);
}
