//! `proxy::` and `tls::` on the network edge: nginx on the edge forwards web3.test to an
//! HTTP server on the vm (internal network only), with a certificate from Pebble (an
//! ACME test CA run on the client, on the public network, whose http-01 challenge
//! reaches the edge's port 80); the client fetches the page over HTTPS.

use crate::support::acme::{fetch, must, serve_page, start_pebble, trust_pebble};
use crate::support::containers::EdgeTopology;

const PAGE: &str = "hello from the vm, 7f3a\n";

const RECIPES: &str = r#"
/// A site with a domain that is no host name.
fn bad_domain() { each(hosts("edge"), |h| proxy::site(h, #{ domain: "web3.test;x", to_host: "vm" })); }
/// A site for a host whose internal address is no address.
fn no_address() { each(hosts("edge"), |h| proxy::site(h, #{ domain: "nowhere.test", to_host: "ghost" })); }
/// A plain site for another domain.
fn plain() { each(hosts("edge"), |h| proxy::site(h, #{ domain: "plain.test", to_host: host("vm") })); }
/// The certificate's expiry.
fn expiry() { print(`expires ${tls::expiry(host("edge"), "web3.test")}`); }
/// Removes a site.
fn unsite(domain) { print(`removed ${proxy::remove(host("edge"), domain)}`); }
"#;

#[test]
fn a_site_gets_a_certificate_forwards_to_the_vm_and_is_removed_with_it() {
    let t = EdgeTopology::start();
    let edge_ip = t.edge.ip_on(&t.public);
    let client_ip = t.client.ip_on(&t.public);
    serve_page(&t.vm, PAGE);
    let ca = start_pebble(&t.client, &client_ip, &edge_ip);
    let bundle = trust_pebble(&t.edge, &ca);

    let p = t.project(
        "",
        r#"proxy = "edge", domains = [{ domain = "web3.test", tls = "acme" }]"#,
    );
    // A host the proxy cannot reach: its internal address is empty.
    let inventory = format!(
        "{}[hosts.ghost]\naddress = \"ghost.invalid\"\nvars = {{ internal_address = \"\" }}\n",
        p.read("inventory.toml")
    );
    let p = p.file("inventory.toml", &inventory);
    let toml = format!(
        "acme_directory = \"https://{client_ip}:14000/dir\"\nacme_ca_bundle = \"{bundle}\"\n{}",
        p.read("fleet.toml")
    );
    let p = p.file("fleet.toml", &toml).recipe("sites", RECIPES);
    let fleet_files = || {
        t.edge
            .exec("ls /etc/nginx/sites-available /etc/nginx/sites-enabled | grep -c fleet-")
    };

    // Bad input is refused before anything reaches the edge.
    p.fleet(&["bad-domain"])
        .code(3)
        .stderr_has("`web3.test;x` is not a domain name");
    p.fleet(&["no-address"])
        .code(3)
        .stderr_has("host `ghost` has no usable address");
    assert_eq!(fleet_files(), "0\n");

    // --check shows the file and the certificate it would get, and changes nothing.
    let check = p.fleet(&["proxy", "--check"]);
    check
        .code(0)
        .stdout_has("+    server_name web3.test;")
        .stdout_has("would request a certificate for web3.test");
    assert_eq!(fleet_files(), "0\n");

    let first = p.fleet(&["proxy"]);
    first.code(0);
    assert!(first.recap_row("edge").contains("changed"), "{first}");
    let (ok, page) = fetch(&t.client, &edge_ip);
    assert!(
        ok && page == PAGE,
        "https://web3.test/ through the edge: {page}"
    );
    let conf = t
        .edge
        .exec("cat /etc/nginx/sites-enabled/fleet-web3.test.conf");
    assert!(
        conf.contains("listen 443 ssl;")
            && conf.contains(&format!(
                "proxy_pass http://{}:80;",
                t.vm.ip_on(&t.internal)
            )),
        "{conf}"
    );

    let second = p.fleet(&["proxy"]);
    second.code(0);
    assert!(
        second.recap_row("edge").contains(" ok"),
        "second run changed something: {second}"
    );
    p.fleet(&["expiry"]).code(0).stdout_has("expires 20");
    let status = p.fleet(&["status", "edge:vm"]);
    status.code(0).stdout_has("CERT EXPIRY");
    let row = |host: &str| {
        status
            .stdout
            .lines()
            .find(|l| l.starts_with(host))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row("edge").trim_end().ends_with(" web3.test"), "{status}");
    assert!(row("vm").trim_end().ends_with(" -"), "{status}");

    // A change nginx -t refuses is put back; the sites that were there still answer.
    must(
        &t.edge,
        "echo 'this is not nginx;' > /etc/nginx/conf.d/broken.conf",
    );
    p.fleet(&["plain"])
        .code(3)
        .stderr_has("nginx -t refused the site plain.test, which was put back");
    assert_eq!(
        t.edge
            .exec("ls /etc/nginx/sites-available /etc/nginx/sites-enabled | grep -c plain.test"),
        "0\n"
    );
    let (ok, page) = fetch(&t.client, &edge_ip);
    assert!(ok && page == PAGE, "after the refused change: {page}");
    must(&t.edge, "rm /etc/nginx/conf.d/broken.conf");

    // Two hosts claiming one domain: refused before any host is touched.
    let twice = t.project(
        r#"proxy = "edge", domains = ["web3.test"]"#,
        r#"proxy = "edge", domains = ["web3.test"]"#,
    );
    twice
        .fleet(&["proxy"])
        .code(2)
        .stderr_has("the domain web3.test is claimed by both edge and vm");

    // Removal takes the site, its symlink and its certificate.
    p.fleet(&["unsite", "web3.test"])
        .code(0)
        .stdout_has("removed true");
    assert_eq!(fleet_files(), "0\n");
    assert_eq!(
        t.edge.exec("ls /etc/letsencrypt/live | grep -c web3.test"),
        "0\n"
    );
    p.fleet(&["unsite", "web3.test"])
        .code(0)
        .stdout_has("removed false");
}
