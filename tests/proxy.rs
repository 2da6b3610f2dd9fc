//! `proxy::` and `tls::` on the network edge: nginx on the edge forwards web3.test to an
//! HTTP server on the vm (internal network only), with a certificate from Pebble (an
//! ACME test CA run on the client, on the public network, whose http-01 challenge
//! reaches the edge's port 80); the client fetches the page over HTTPS.

use crate::support::Output;
use crate::support::containers::{ContainerHost, EdgeTopology};

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

fn recap_of(out: &Output, host: &str) -> String {
    out.stderr
        .lines()
        .find(|l| {
            l.starts_with(host)
                && (l.contains(" ok") || l.contains(" changed") || l.contains(" failed"))
        })
        .unwrap_or_else(|| panic!("no recap row for {host}: {out}"))
        .to_string()
}

fn must(host: &ContainerHost, cmd: &str) -> String {
    let (ok, out) = host.try_exec(cmd);
    assert!(ok, "`{cmd}` failed: {out}");
    out
}

/// Pebble on the client: its HTTPS certificate from a throwaway CA (written to
/// `/tmp/pebble/ca.pem`), challenges resolved to `edge_ip` by pebble-challtestsrv,
/// http-01 validated on port 80. Returns the CA's PEM.
fn start_pebble(client: &ContainerHost, client_ip: &str, edge_ip: &str) -> String {
    must(
        client,
        &format!(
            "set -e; mkdir -p /tmp/pebble; cd /tmp/pebble
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=fleet-test-ca -keyout ca.key -out ca.pem \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=pebble -keyout key.pem -out req.pem 2>/dev/null
printf 'subjectAltName=IP:{client_ip},DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n' > ext.cnf
openssl x509 -req -in req.pem -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out cert.pem 2>/dev/null
cat > config.json <<'EOF'
{{\"pebble\": {{\"listenAddress\": \"0.0.0.0:14000\", \"managementListenAddress\": \"0.0.0.0:15000\",
 \"certificate\": \"/tmp/pebble/cert.pem\", \"privateKey\": \"/tmp/pebble/key.pem\",
 \"httpPort\": 80, \"tlsPort\": 443, \"ocspResponderURL\": \"\", \"externalAccountBindingRequired\": false}}}}
EOF
setsid pebble-challtestsrv -defaultIPv4 {edge_ip} -defaultIPv6 '' -dns01 127.0.0.1:8053 -http01 '' -https01 '' -tlsalpn01 '' -management 127.0.0.1:8055 >challtestsrv.log 2>&1 &
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 setsid pebble -config config.json -dnsserver 127.0.0.1:8053 >pebble.log 2>&1 &
for i in $(seq 50); do curl -sf --cacert ca.pem https://127.0.0.1:14000/dir >/dev/null && exit 0; sleep 0.2; done
cat pebble.log challtestsrv.log; exit 1"
        ),
    );
    must(client, "cat /tmp/pebble/ca.pem")
}

/// The client's HTTPS request to web3.test through the edge, checked with Pebble's root.
fn fetch(client: &ContainerHost, edge_ip: &str) -> (bool, String) {
    client.try_exec(&format!(
        "curl -sS --max-time 10 --cacert /tmp/pebble/root.pem --resolve web3.test:443:{edge_ip} https://web3.test/"
    ))
}

#[test]
fn a_site_gets_a_certificate_forwards_to_the_vm_and_is_removed_with_it() {
    let t = EdgeTopology::start();
    let edge_ip = t.edge.ip_on(&t.public);
    let client_ip = t.client.ip_on(&t.public);
    must(
        &t.vm,
        &format!(
            "mkdir -p /srv/www && printf '{}' > /srv/www/index.html && (setsid python3 -m http.server 80 --directory /srv/www >/dev/null 2>&1 &)",
            PAGE.replace('\n', "\\n")
        ),
    );
    let ca = start_pebble(&t.client, &client_ip, &edge_ip);
    must(
        &t.edge,
        &format!("mkdir -p /etc/fleet-test && printf '%s' '{ca}' > /etc/fleet-test/pebble-ca.pem"),
    );

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
        "acme_directory = \"https://{client_ip}:14000/dir\"\nacme_ca_bundle = \"/etc/fleet-test/pebble-ca.pem\"\n{}",
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
    assert!(recap_of(&first, "edge").contains("changed"), "{first}");
    must(
        &t.client,
        "curl -sf --cacert /tmp/pebble/ca.pem https://127.0.0.1:15000/roots/0 > /tmp/pebble/root.pem",
    );
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
        recap_of(&second, "edge").contains(" ok"),
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
