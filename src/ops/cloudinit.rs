//! cloud-init NoCloud documents from typed values: `#cloud-config` user-data,
//! network-config version 2 and meta-data, validated by fleet before cloud-init (or
//! Proxmox) ever sees them, and the `cloud-init status --long` report read back.
//! YAML is written by serde-saphyr from the structs, never by string pasting (see `yaml`).

use serde::{Deserialize, Serialize};

/// Linux user names as Debian's adduser accepts them by default.
pub(crate) fn is_user_name(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 32
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c))
}

const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// One OpenSSH public key line: type, base64 body, optional comment.
pub(crate) fn is_public_key(s: &str) -> bool {
    let mut parts = s.split_whitespace();
    let (Some(kind), Some(body)) = (parts.next(), parts.next()) else {
        return false;
    };
    !s.contains('\n')
        && KEY_TYPES.contains(&kind)
        && body.len() >= 16
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
}

fn is_package_name(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

fn is_hostname(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(crate::ops::proxmox::is_dns_label)
}

/// `sudo: true` is passwordless sudo for everything; a string is a sudoers rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(crate) enum Sudo {
    All(bool),
    Rule(String),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserSpec {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) ssh_authorized_keys: Vec<String>,
    pub(crate) sudo: Option<Sudo>,
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    pub(crate) shell: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteFileSpec {
    pub(crate) path: String,
    pub(crate) content: String,
    pub(crate) permissions: Option<String>,
    pub(crate) owner: Option<String>,
}

/// A user's password for cloud-init's `chpasswd`, as a crypt hash only: the user-data
/// snippet stays on the node, so it must hold no plaintext.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordSpec {
    pub(crate) name: String,
    /// `$6$…` (SHA-512 crypt), `$5$…` or `$y$…`.
    pub(crate) hash: String,
}

/// What a recipe says of a machine's first boot.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserDataSpec {
    pub(crate) hostname: Option<String>,
    pub(crate) fqdn: Option<String>,
    pub(crate) timezone: Option<String>,
    #[serde(default)]
    pub(crate) users: Vec<UserSpec>,
    pub(crate) ssh_pwauth: Option<bool>,
    pub(crate) disable_root: Option<bool>,
    #[serde(default)]
    pub(crate) packages: Vec<String>,
    pub(crate) package_upgrade: Option<bool>,
    #[serde(default)]
    pub(crate) write_files: Vec<WriteFileSpec>,
    /// Each command is run by `sh -c` (a string) as cloud-init's runcmd does.
    #[serde(default)]
    pub(crate) runcmd: Vec<String>,
    /// Password hashes set by cloud-init's chpasswd (22.3+ `users` form), not expired.
    #[serde(default)]
    pub(crate) chpasswd: Vec<PasswordSpec>,
}

#[derive(Serialize)]
struct CloudConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "yaml::opt_text")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "yaml::opt_text")]
    fqdn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    manage_etc_hosts: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "yaml::opt_text")]
    timezone: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    users: Vec<UserOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssh_pwauth: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_root: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    package_update: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    package_upgrade: Option<bool>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    #[serde(serialize_with = "yaml::texts")]
    packages: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    write_files: Vec<FileOut<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    #[serde(serialize_with = "yaml::texts")]
    runcmd: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    chpasswd: Option<ChpasswdOut<'a>>,
}

#[derive(Serialize)]
struct ChpasswdOut<'a> {
    expire: bool,
    users: Vec<PasswordOut<'a>>,
}

#[derive(Serialize)]
struct PasswordOut<'a> {
    #[serde(serialize_with = "yaml::text")]
    name: &'a str,
    #[serde(serialize_with = "yaml::text")]
    password: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct UserOut<'a> {
    #[serde(serialize_with = "yaml::text")]
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "yaml::opt_text")]
    sudo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "yaml::opt_text")]
    groups: Option<String>,
    #[serde(serialize_with = "yaml::text")]
    shell: &'a str,
    lock_passwd: bool,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    #[serde(serialize_with = "yaml::texts")]
    ssh_authorized_keys: &'a [String],
}

#[derive(Serialize)]
struct FileOut<'a> {
    #[serde(serialize_with = "yaml::text")]
    path: &'a str,
    #[serde(serialize_with = "yaml::text")]
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "yaml::opt_text")]
    permissions: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "yaml::opt_text")]
    owner: Option<&'a str>,
}

/// One problem with a document, named by where it is (`users[0].name`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    pub(crate) at: String,
    pub(crate) message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

fn problem(at: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        at: at.into(),
        message: message.into(),
    }
}

impl UserDataSpec {
    pub(crate) fn check(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Some(h) = &self.hostname
            && !crate::ops::proxmox::is_dns_label(h)
        {
            out.push(problem(
                "hostname",
                format!("`{h}` is not a host name (a DNS label)"),
            ));
        }
        if let Some(f) = &self.fqdn
            && !is_hostname(f)
        {
            out.push(problem("fqdn", format!("`{f}` is not a domain name")));
        }
        if let Some(tz) = &self.timezone
            && (tz.is_empty()
                || tz.contains("..")
                || !tz
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c)))
        {
            out.push(problem(
                "timezone",
                format!("`{tz}` is not a time zone like Europe/Berlin or UTC"),
            ));
        }
        for (i, u) in self.users.iter().enumerate() {
            if !is_user_name(&u.name) {
                out.push(problem(
                    format!("users[{i}].name"),
                    format!("`{}` is not a Linux user name", u.name),
                ));
            }
            for (k, key) in u.ssh_authorized_keys.iter().enumerate() {
                if !is_public_key(key) {
                    out.push(problem(
                        format!("users[{i}].ssh_authorized_keys[{k}]"),
                        format!(
                            "`{}` is not an OpenSSH public key line (type, base64, comment)",
                            shorten(key)
                        ),
                    ));
                }
            }
            for g in &u.groups {
                if !is_user_name(g) {
                    out.push(problem(
                        format!("users[{i}].groups"),
                        format!("`{g}` is not a group name"),
                    ));
                }
            }
            if let Some(Sudo::Rule(r)) = &u.sudo
                && (r.contains('\n') || r.trim().is_empty())
            {
                out.push(problem(
                    format!("users[{i}].sudo"),
                    "must be one sudoers rule, or true/false",
                ));
            }
            if let Some(s) = &u.shell
                && !s.starts_with('/')
            {
                out.push(problem(
                    format!("users[{i}].shell"),
                    format!("`{s}` must be an absolute path"),
                ));
            }
        }
        for (i, p) in self.chpasswd.iter().enumerate() {
            if !is_user_name(&p.name) {
                out.push(problem(
                    format!("chpasswd[{i}].name"),
                    format!("`{}` is not a Linux user name", p.name),
                ));
            }
            // Never quoted back: a plaintext password given here by mistake stays unshown.
            if !is_crypt_hash(&p.hash) {
                out.push(problem(
                    format!("chpasswd[{i}].hash"),
                    "must be a crypt hash ($6$..., as passwords::guest gives), never a plaintext password",
                ));
            }
        }
        for p in &self.packages {
            if !is_package_name(p) {
                out.push(problem(
                    "packages",
                    format!("`{p}` is not a Debian package name"),
                ));
            }
        }
        for (i, f) in self.write_files.iter().enumerate() {
            if !f.path.starts_with('/') {
                out.push(problem(
                    format!("write_files[{i}].path"),
                    format!("`{}` must be absolute", f.path),
                ));
            }
            if let Some(p) = &f.permissions
                && !(p.len() == 4
                    && p.starts_with('0')
                    && p.chars().all(|c| ('0'..='7').contains(&c)))
            {
                out.push(problem(
                    format!("write_files[{i}].permissions"),
                    format!("`{p}` must be an octal mode like 0644"),
                ));
            }
        }
        out
    }

    /// The `#cloud-config` document; `check()` first.
    pub(crate) fn render(&self) -> Result<String, Vec<Problem>> {
        let problems = self.check();
        if !problems.is_empty() {
            return Err(problems);
        }
        let users = self
            .users
            .iter()
            .map(|u| UserOut {
                name: &u.name,
                sudo: match &u.sudo {
                    Some(Sudo::All(true)) => Some("ALL=(ALL) NOPASSWD:ALL".into()),
                    Some(Sudo::All(false)) | None => None,
                    Some(Sudo::Rule(r)) => Some(r.clone()),
                },
                groups: (!u.groups.is_empty()).then(|| u.groups.join(", ")),
                shell: u.shell.as_deref().unwrap_or("/bin/bash"),
                lock_passwd: true,
                ssh_authorized_keys: &u.ssh_authorized_keys,
            })
            .collect();
        let doc = CloudConfig {
            hostname: self.hostname.as_deref(),
            fqdn: self.fqdn.as_deref(),
            manage_etc_hosts: self.hostname.as_ref().map(|_| true),
            timezone: self.timezone.as_deref(),
            users,
            ssh_pwauth: self.ssh_pwauth,
            disable_root: self.disable_root,
            package_update: (!self.packages.is_empty()).then_some(true),
            package_upgrade: self.package_upgrade,
            packages: &self.packages,
            write_files: self
                .write_files
                .iter()
                .map(|f| FileOut {
                    path: &f.path,
                    content: &f.content,
                    permissions: f.permissions.as_deref(),
                    owner: f.owner.as_deref(),
                })
                .collect(),
            runcmd: &self.runcmd,
            chpasswd: (!self.chpasswd.is_empty()).then(|| ChpasswdOut {
                expire: false,
                users: self
                    .chpasswd
                    .iter()
                    .map(|p| PasswordOut {
                        name: &p.name,
                        password: &p.hash,
                        kind: "hash",
                    })
                    .collect(),
            }),
        };
        let yaml = yaml::to_string(&doc);
        Ok(format!("#cloud-config\n{yaml}"))
    }
}

/// A SHA-512, SHA-256 or yescrypt crypt(3) string: only its own alphabet.
fn is_crypt_hash(h: &str) -> bool {
    ["$6$", "$5$", "$y$"].iter().any(|p| h.starts_with(p))
        && h.len() < 200
        && h.split('$').count() >= 4
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || "./$=,".contains(c))
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Network: DHCP, or a static IPv4 address with gateway and DNS, for the NIC with `mac`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkSpec {
    /// `dhcp` or a CIDR like 10.0.0.5/24.
    pub(crate) ip: String,
    #[serde(default)]
    pub(crate) gateway: String,
    #[serde(default)]
    pub(crate) dns: Vec<String>,
    #[serde(default)]
    pub(crate) search: Vec<String>,
    pub(crate) mac: String,
    #[serde(default = "default_nic")]
    pub(crate) name: String,
}

fn default_nic() -> String {
    "eth0".into()
}

#[derive(Serialize)]
struct NetworkV2<'a> {
    version: u8,
    ethernets: std::collections::BTreeMap<&'a str, Ethernet<'a>>,
}

#[derive(Serialize)]
struct Ethernet<'a> {
    #[serde(rename = "match")]
    matches: MacMatch,
    #[serde(rename = "set-name")]
    #[serde(serialize_with = "yaml::text")]
    set_name: &'a str,
    dhcp4: bool,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    #[serde(serialize_with = "yaml::texts")]
    addresses: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nameservers: Option<Nameservers<'a>>,
}

#[derive(Serialize)]
struct MacMatch {
    #[serde(serialize_with = "yaml::text")]
    macaddress: String,
}

#[derive(Serialize)]
struct Route<'a> {
    #[serde(serialize_with = "yaml::text")]
    to: &'a str,
    #[serde(serialize_with = "yaml::text")]
    via: &'a str,
}

#[derive(Serialize)]
struct Nameservers<'a> {
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    #[serde(serialize_with = "yaml::texts")]
    addresses: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    #[serde(serialize_with = "yaml::texts")]
    search: &'a [String],
}

impl NetworkSpec {
    pub(crate) fn check(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        // The same rules as a VM spec's address (`qm::create`).
        for e in crate::ops::proxmox::address_problems(&self.ip, &self.gateway) {
            out.push(problem(
                e.field,
                format!("`{}` {}", crate::ops::text::shown(&e.value), e.problem),
            ));
        }
        for d in &self.dns {
            if d.parse::<std::net::IpAddr>().is_err() {
                out.push(problem("dns", format!("`{d}` must be an IP address")));
            }
        }
        for s in &self.search {
            if !is_hostname(s) {
                out.push(problem("search", format!("`{s}` must be a domain name")));
            }
        }
        if !crate::ops::proxmox::is_mac(&self.mac) {
            out.push(problem(
                "mac",
                format!("`{}` must be a MAC like bc:24:11:aa:bb:cc", self.mac),
            ));
        }
        if !crate::ops::proxmox::is_dns_label(&self.name) {
            out.push(problem(
                "name",
                format!("`{}` is not an interface name", self.name),
            ));
        }
        out
    }

    /// network-config version 2, the NIC matched by MAC and named `name`.
    pub(crate) fn render(&self) -> Result<String, Vec<Problem>> {
        let problems = self.check();
        if !problems.is_empty() {
            return Err(problems);
        }
        let dhcp = self.ip == "dhcp";
        let addresses = if dhcp {
            Vec::new()
        } else {
            vec![self.ip.clone()]
        };
        let eth = Ethernet {
            matches: MacMatch {
                macaddress: self.mac.to_ascii_lowercase(),
            },
            set_name: &self.name,
            dhcp4: dhcp,
            addresses: &addresses,
            routes: if self.gateway.is_empty() {
                Vec::new()
            } else {
                // `to: default` is netplan's; cloud-init before 23.x rejects it, while
                // every version takes the explicit network.
                vec![Route {
                    to: "0.0.0.0/0",
                    via: &self.gateway,
                }]
            },
            nameservers: (!self.dns.is_empty() || !self.search.is_empty()).then_some(Nameservers {
                addresses: &self.dns,
                search: &self.search,
            }),
        };
        let doc = NetworkV2 {
            version: 2,
            ethernets: [(self.name.as_str(), eth)].into_iter().collect(),
        };
        Ok(yaml::to_string(&doc))
    }
}

/// meta-data: a new instance-id makes cloud-init treat the boot as a first boot.
pub(crate) fn meta_data(instance_id: &str, hostname: &str) -> String {
    #[derive(Serialize)]
    struct Meta<'a> {
        #[serde(rename = "instance-id")]
        #[serde(serialize_with = "yaml::text")]
        instance_id: &'a str,
        #[serde(rename = "local-hostname")]
        #[serde(serialize_with = "yaml::text")]
        local_hostname: &'a str,
    }
    yaml::to_string(&Meta {
        instance_id,
        local_hostname: hostname,
    })
}

/// What `cloud-init status --long` says, in any version's layout.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Status {
    pub(crate) status: String,
    pub(crate) detail: String,
    pub(crate) errors: Vec<String>,
}

impl Status {
    pub(crate) fn failed(&self) -> bool {
        self.status == "error" || !self.errors.is_empty()
    }
}

/// The command fleet waits with; exit 2 (degraded, since 23.4) still means finished.
pub(crate) const STATUS_COMMAND: &str = "cloud-init status --wait --long";

pub(crate) fn parse_status(text: &str) -> Status {
    let mut s = Status::default();
    let mut lines = text.lines().peekable();
    let mut in_errors = false;
    while let Some(line) = lines.next() {
        // --wait prints dots before the report.
        let line = line.trim_start_matches('.');
        if in_errors {
            if let Some(e) = line.trim().strip_prefix("- ") {
                s.errors.push(e.to_string());
                continue;
            }
            in_errors = false;
        }
        if let Some(v) = line.strip_prefix("status: ") {
            s.status = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("detail:") {
            let v = v.trim();
            // Before 24.1 the detail is on the next line.
            s.detail = if v.is_empty() {
                lines.next().unwrap_or_default().trim().to_string()
            } else {
                v.to_string()
            };
        } else if let Some(v) = line.strip_prefix("errors:") {
            let v = v.trim();
            in_errors = v.is_empty();
            if let Some(list) = v.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
                s.errors.extend(
                    list.split("', '")
                        .map(|e| e.trim_matches(|c| c == '\'' || c == '"').to_string())
                        .filter(|e| !e.is_empty()),
                );
            }
        }
    }
    s
}

/// Waits for cloud-init on a fresh host (`cloud-init status --wait --long`): a
/// cloud-init that ended in error fails the host with its errors. Check mode, where
/// the host may not exist, answers an empty status.
pub(crate) fn wait(
    host: &dyn crate::ops::remote::Remote,
    timeout: std::time::Duration,
) -> Result<Status, crate::outcome::HostError> {
    use crate::ops::remote::CommandOpts;
    use crate::outcome::HostError;
    host.activity("waiting for cloud-init to finish");
    let r = host.command(
        STATUS_COMMAND,
        CommandOpts {
            timeout: Some(timeout),
            ..CommandOpts::QUERY
        },
    )?;
    if host.check_mode() && !r.executed {
        return Ok(Status::default());
    }
    let status = parse_status(&r.stdout);
    if r.code == 1 || status.failed() {
        let errors = if status.errors.is_empty() {
            status.detail.clone()
        } else {
            status.errors.join("; ")
        };
        return Err(HostError {
            code: Some(r.code as i32),
            command: Some(STATUS_COMMAND.into()),
            ..HostError::new(
                host.name(),
                format!(
                    "cloud-init failed on {}: status {}: {errors} (see /var/log/cloud-init.log there)",
                    host.name(),
                    status.status
                ),
            )
        });
    }
    if r.code != 0 && r.code != 2 {
        return Err(HostError::new(
            host.name(),
            format!(
                "`{STATUS_COMMAND}` on {} exited with {}: {}",
                host.name(),
                r.code,
                r.stderr.trim()
            ),
        ));
    }
    Ok(status)
}

/// The options map of `cloudinit::wait`: how long cloud-init may take.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitOpts {
    #[serde(
        default = "ten_minutes",
        deserialize_with = "crate::ops::options::seconds"
    )]
    pub(crate) timeout: std::time::Duration,
}

fn ten_minutes() -> std::time::Duration {
    std::time::Duration::from_secs(600)
}

/// YAML as cloud-init reads it. cloud-init parses with PyYAML (YAML 1.1), where a plain
/// `yes`, `on`, `0644` or `1:20` is not a string: every string that any YAML reader
/// could take for something else is written in single quotes; other strings are plain
/// when they read back unchanged. Long lines are never folded. This keeps the documents
/// byte for byte as serde_yaml wrote them before (a changed snippet would be a change on
/// every host), and quotes the YAML 1.1 words serde_yaml left bare.
mod yaml {
    use serde::{Serialize, Serializer};

    pub(super) fn to_string<T: Serialize>(doc: &T) -> String {
        let options = serde_saphyr::ser_options! {
            yaml_12: true,
            no_lang_directive: true,
            folded_wrap_chars: usize::MAX,
            min_fold_chars: usize::MAX,
        };
        serde_saphyr::to_string_with_options(doc, options).expect("cloud-init documents serialize")
    }

    /// A string value, quoted as [`needs_quotes`] says.
    struct Text<'a>(&'a str);

    impl Serialize for Text<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            if needs_quotes(self.0) {
                serde_saphyr::SingleQuoted(self.0).serialize(s)
            } else {
                s.serialize_str(self.0)
            }
        }
    }

    pub(super) fn text<T: AsRef<str> + ?Sized, S: Serializer>(
        value: &T,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        Text(value.as_ref()).serialize(s)
    }

    pub(super) fn opt_text<T: AsRef<str>, S: Serializer>(
        value: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => s.serialize_some(&Text(value.as_ref())),
            None => s.serialize_none(),
        }
    }

    pub(super) fn texts<T: AsRef<[String]> + ?Sized, S: Serializer>(
        values: &T,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(values.as_ref().iter().map(|v| Text(v)))
    }

    /// Single quotes when the text, written plain, would read back as something else
    /// (a number, a boolean, null, a mapping, a comment, …) under YAML 1.2 or YAML 1.1.
    /// Several lines are a literal block, and control characters need double quotes:
    /// both are left to the serializer.
    pub(super) fn needs_quotes(text: &str) -> bool {
        if text.contains(['\n', '\r']) || text.chars().any(|c| c.is_control() && c != '\t') {
            return false;
        }
        let reads_back = |options| {
            matches!(
                serde_saphyr::from_str_with_options::<serde_json::Value>(text, options),
                Ok(serde_json::Value::String(read)) if read == text
            )
        };
        let yaml_12 = serde_saphyr::options! { strict_booleans: true };
        let yaml_11 = serde_saphyr::options! { legacy_octal_numbers: true };
        !(reads_back(yaml_12) && reads_back(yaml_11)) || yaml_11_only(text)
    }

    /// What PyYAML resolves that a YAML 1.2 reader does not: sexagesimal numbers
    /// (`1:20`), numbers with `_`, timestamps (`2024-01-02`), `=` and `<<`.
    fn yaml_11_only(text: &str) -> bool {
        let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
        let digitish =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'_');
        let sexagesimal = unsigned.split_once(':').is_some_and(|(head, tail)| {
            head.starts_with(|c: char| c.is_ascii_digit())
                && digitish(head)
                && tail.split(':').enumerate().all(|(i, part)| {
                    let last = i == tail.split(':').count() - 1;
                    let part = if last {
                        part.split('.').next().unwrap_or(part)
                    } else {
                        part
                    };
                    (1..=2).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit())
                })
        });
        let underscored = unsigned.contains('_')
            && unsigned.starts_with(|c: char| c.is_ascii_digit())
            && unsigned
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b"_.xXoObB".contains(&b));
        let timestamp = text.len() >= 8
            && text.as_bytes()[..4].iter().all(u8::is_ascii_digit)
            && text.as_bytes()[4] == b'-';
        sexagesimal || underscored || timestamp || text == "=" || text == "<<"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_fails_the_host_with_cloud_inits_errors() {
        use crate::ops::remote::fake::Scripted;
        use std::time::Duration;
        let host = Scripted::new(&[(STATUS_COMMAND, 2, "status: done\n")]);
        assert_eq!(wait(&host, Duration::from_secs(1)).unwrap().status, "done");
        let host = Scripted::new(&[(
            STATUS_COMMAND,
            1,
            "status: error\nerrors:\n\t- apt failed\n\t- runcmd failed\n",
        )]);
        let e = wait(&host, Duration::from_secs(1)).unwrap_err();
        assert_eq!(
            e.message,
            "cloud-init failed on fake: status error: apt failed; runcmd failed (see /var/log/cloud-init.log there)"
        );
        assert_eq!(e.code, Some(1));
    }

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq3xGcJc0Tq5b6m0yQm6o7ZlJ4W2l8rN5o1fNwzJX6c admin@laptop";

    fn user_data() -> UserDataSpec {
        serde_json::from_value(serde_json::json!({
            "hostname": "web-3",
            "timezone": "Europe/Berlin",
            "users": [{ "name": "admin", "ssh_authorized_keys": [KEY], "sudo": true }],
            "ssh_pwauth": false,
            "disable_root": true,
            "packages": ["qemu-guest-agent", "python3"],
            "write_files": [{ "path": "/etc/motd", "content": "managed by fleet\n", "permissions": "0644" }],
            "runcmd": ["systemctl enable --now qemu-guest-agent"]
        }))
        .unwrap()
    }

    #[test]
    fn chpasswd_carries_hashes_only() {
        let hash = "$6$rounds=5000$7DrqCKdTaL2we1dQ$Ci06A12dF0QdHDRWSUDj/lS/gw5lRn98nOC5KZmvkh4jpXTRZ2QaMc/eCpc5FniPQBVhvMHw0oHDHNl1QeJBm1";
        let spec: UserDataSpec = serde_json::from_value(serde_json::json!({
            "chpasswd": [{ "name": "root", "hash": hash }, { "name": "admin", "hash": hash }]
        }))
        .unwrap();
        assert_eq!(
            spec.render().unwrap(),
            format!(
                "#cloud-config\nchpasswd:\n  expire: false\n  users:\n  - name: root\n    password: {hash}\n    type: hash\n  - name: admin\n    password: {hash}\n    type: hash\n"
            )
        );
        let bad: UserDataSpec = serde_json::from_value(serde_json::json!({
            "chpasswd": [{ "name": "-root", "hash": "Plain-Pa55word" }]
        }))
        .unwrap();
        let problems: Vec<String> = bad.check().iter().map(|p| p.to_string()).collect();
        assert_eq!(
            problems,
            [
                "chpasswd[0].name: `-root` is not a Linux user name",
                "chpasswd[0].hash: must be a crypt hash ($6$..., as passwords::guest gives), never a plaintext password",
            ]
        );
    }

    #[test]
    fn user_data_golden() {
        assert_eq!(
            user_data().render().unwrap(),
            "#cloud-config
hostname: web-3
manage_etc_hosts: true
timezone: Europe/Berlin
users:
- name: admin
  sudo: ALL=(ALL) NOPASSWD:ALL
  shell: /bin/bash
  lock_passwd: true
  ssh_authorized_keys:
  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq3xGcJc0Tq5b6m0yQm6o7ZlJ4W2l8rN5o1fNwzJX6c admin@laptop
ssh_pwauth: false
disable_root: true
package_update: true
packages:
- qemu-guest-agent
- python3
write_files:
- path: /etc/motd
  content: |
    managed by fleet
  permissions: '0644'
runcmd:
- systemctl enable --now qemu-guest-agent
"
        );
    }

    #[test]
    fn strings_yaml_readers_would_retype_are_quoted() {
        use super::yaml::needs_quotes;
        for typed in [
            "yes",
            "on",
            "No",
            "true",
            "null",
            "~",
            "",
            "0644",
            "12",
            "1.5",
            ".inf",
            "1_000",
            "1:20",
            "2024-01-02",
            "a: b",
            "- x",
            "#x",
            "x #y",
            "[x]",
            "{x}",
            " lead",
            "@x",
            "*x",
            "!x",
            "<<",
            "=",
        ] {
            assert!(needs_quotes(typed), "{typed:?} was left plain");
        }
        for plain in [
            "web-3",
            "10.0.0.1",
            "10.0.0.5/24",
            "bc:24:11:0a:0b:0c",
            "ALL=(ALL) NOPASSWD:ALL",
            "/bin/bash",
            "echo 'it''s done' > /root/done",
            "python3",
            "Europe/Berlin",
            "two words",
        ] {
            assert!(!needs_quotes(plain), "{plain:?} was quoted");
        }
        let mut u = user_data();
        u.packages = vec!["yes".into(), "on".into()];
        u.runcmd = vec!["true".into(), "a: b".into()];
        let out = u.render().unwrap();
        assert!(
            out.contains("packages:\n- 'yes'\n- 'on'\n"),
            "YAML 1.1 booleans for cloud-init's PyYAML: {out}"
        );
        assert!(out.contains("runcmd:\n- 'true'\n- 'a: b'\n"), "{out}");
    }

    #[test]
    fn bad_user_data_names_each_problem() {
        let mut u = user_data();
        u.hostname = Some("web_3".into());
        u.users[0].name = "Admin".into();
        u.users[0].ssh_authorized_keys = vec!["not a key".into()];
        u.packages.push("curl; reboot".into());
        u.write_files[0].path = "etc/motd".into();
        u.write_files[0].permissions = Some("644".into());
        u.timezone = Some("../../etc/passwd".into());
        let at: Vec<String> = u.render().unwrap_err().into_iter().map(|p| p.at).collect();
        assert_eq!(
            at,
            [
                "hostname",
                "timezone",
                "users[0].name",
                "users[0].ssh_authorized_keys[0]",
                "packages",
                "write_files[0].path",
                "write_files[0].permissions"
            ]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = serde_json::from_value::<UserDataSpec>(serde_json::json!({ "hostnme": "x" }))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `hostnme`"), "{e}");
    }

    #[test]
    fn public_keys() {
        assert!(is_public_key(KEY));
        assert!(!is_public_key("ssh-ed25519"));
        assert!(!is_public_key("ssh-dss AAAAB3NzaC1kc3MAAACBAP"));
        assert!(!is_public_key(&format!("{KEY}\nssh-ed25519 AAAA")));
    }

    #[test]
    fn network_static_and_dhcp() {
        let spec = NetworkSpec {
            ip: "10.0.0.5/24".into(),
            gateway: "10.0.0.1".into(),
            dns: vec!["10.0.0.1".into()],
            search: vec!["lan".into()],
            mac: "BC:24:11:0A:0B:0C".into(),
            name: "eth0".into(),
        };
        assert_eq!(
            spec.render().unwrap(),
            "version: 2
ethernets:
  eth0:
    match:
      macaddress: bc:24:11:0a:0b:0c
    set-name: eth0
    dhcp4: false
    addresses:
    - 10.0.0.5/24
    routes:
    - to: 0.0.0.0/0
      via: 10.0.0.1
    nameservers:
      addresses:
      - 10.0.0.1
      search:
      - lan
"
        );
        let dhcp = NetworkSpec {
            ip: "dhcp".into(),
            mac: spec.mac.clone(),
            name: "eth0".into(),
            ..NetworkSpec::default()
        };
        assert!(dhcp.render().unwrap().contains("dhcp4: true"));
        let bad = NetworkSpec {
            gateway: "10.0.0.1".into(),
            ..dhcp
        };
        assert_eq!(bad.render().unwrap_err()[0].at, "gateway");
        let outside = NetworkSpec {
            gateway: "10.0.1.1".into(),
            ..spec
        };
        assert_eq!(
            outside.render().unwrap_err()[0].to_string(),
            "gateway: `10.0.1.1` is outside 10.0.0.0/24, the subnet of ip 10.0.0.5/24"
        );
    }

    #[test]
    fn meta() {
        assert_eq!(
            meta_data("fleet-105-1", "web-3"),
            "instance-id: fleet-105-1\nlocal-hostname: web-3\n"
        );
    }

    #[test]
    fn status_layouts() {
        let new = "status: done\nextended_status: done\nboot_status_code: enabled-by-generator\ndetail: DataSourceNoCloud [seed=/dev/sr0]\nerrors: []\nrecoverable_errors: {}\n";
        let s = parse_status(new);
        assert_eq!(s.status, "done");
        assert_eq!(s.detail, "DataSourceNoCloud [seed=/dev/sr0]");
        assert!(!s.failed());
        let old = "..\nstatus: error\ntime: Wed, 13 Mar 2024 18:46:26 +0000\ndetail:\n('package-update-upgrade-install', ProcessExecutionError('Unexpected error while running command.'))\n";
        let s = parse_status(old);
        assert_eq!(s.status, "error");
        assert!(s.detail.starts_with("('package-update-upgrade-install'"));
        assert!(s.failed());
        let listed = "status: error\ndetail: DataSourceNoCloud\nerrors:\n\t- ('scripts_user', RuntimeError('Runparts: 1 failures'))\nrecoverable_errors: {}\n";
        assert_eq!(
            parse_status(listed).errors,
            ["('scripts_user', RuntimeError('Runparts: 1 failures'))"]
        );
    }
}
