//! An ACME test CA for the network-edge tests: Pebble and pebble-challtestsrv (Debian's
//! `pebble`) run in a container of the test image, with an HTTPS certificate from a
//! throwaway CA made with openssl, and helpers to serve and fetch a page through it.
#![allow(dead_code)]

use super::containers::ContainerHost;

pub fn must(host: &ContainerHost, cmd: &str) -> String {
    let (ok, out) = host.try_exec(cmd);
    assert!(ok, "`{cmd}` failed: {out}");
    out
}

/// Pebble on the client: its HTTPS certificate from a throwaway CA (written to
/// `/tmp/pebble/ca.pem`), challenges resolved to `edge_ip` by pebble-challtestsrv,
/// http-01 validated on port 80. Returns the CA's PEM.
pub fn start_pebble(client: &ContainerHost, client_ip: &str, edge_ip: &str) -> String {
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

/// The client's HTTPS request to web3.test through the edge, checked with Pebble's
/// issuing root (fetched from its management interface first).
pub fn fetch(client: &ContainerHost, edge_ip: &str) -> (bool, String) {
    must(
        client,
        "test -s /tmp/pebble/root.pem || curl -sf --cacert /tmp/pebble/ca.pem https://127.0.0.1:15000/roots/0 > /tmp/pebble/root.pem",
    );
    client.try_exec(&format!(
        "curl -sS --max-time 10 --cacert /tmp/pebble/root.pem --resolve web3.test:443:{edge_ip} https://web3.test/"
    ))
}

/// An HTTP server on port 80 of `host` whose index page is `page`.
pub fn serve_page(host: &ContainerHost, page: &str) {
    must(
        host,
        &format!(
            "mkdir -p /srv/www && printf '%s' '{page}' > /srv/www/index.html && (setsid python3 -m http.server 80 --directory /srv/www >/dev/null 2>&1 &)"
        ),
    );
}

/// Makes `host` (a proxy host) trust Pebble's CA, at the path fleet.toml's
/// `acme_ca_bundle` then names.
pub fn trust_pebble(host: &ContainerHost, ca: &str) -> &'static str {
    must(
        host,
        &format!("mkdir -p /etc/fleet-test && printf '%s' '{ca}' > /etc/fleet-test/pebble-ca.pem"),
    );
    "/etc/fleet-test/pebble-ca.pem"
}
