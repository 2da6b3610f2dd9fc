//! Recognises an inventory's format from its name and content, so users never have to say.

/// The inventory formats fleet reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// fleet's own format: `[hosts.x]`, `[groups.y]`, `[vars]`.
    Toml,
    /// Ansible's YAML inventory: `all:` / `children:` / `hosts:` / `vars:`.
    Yaml,
    /// Ansible's INI inventory.
    Ini,
    /// One `[user@]host[:port]` per line.
    Plain,
}

pub(crate) fn detect_format(name: &str, text: &str) -> Format {
    if name.ends_with(".toml") {
        Format::Toml
    } else if name.ends_with(".yml") || name.ends_with(".yaml") {
        Format::Yaml
    } else if is_native_toml(text) {
        Format::Toml
    } else if is_yaml(text) {
        Format::Yaml
    } else if is_ini(text) {
        Format::Ini
    } else {
        Format::Plain
    }
}

/// An INI file with only `[hosts]` or `[vars]` sections is valid TOML too; requiring
/// nothing but fleet's own top-level keys keeps that ambiguity to those rare names.
fn is_native_toml(text: &str) -> bool {
    match ::toml::from_str::<::toml::Table>(text) {
        Ok(table) => {
            !table.is_empty()
                && table
                    .keys()
                    .all(|k| matches!(k.as_str(), "hosts" | "groups" | "vars"))
        }
        Err(_) => false,
    }
}

/// A YAML inventory opens with `---` or a group key (`all:`, `web:  # comment`) on a
/// line of its own: neither is a host of a plain list (an empty port) nor INI.
fn is_yaml(text: &str) -> bool {
    let Some(first) = text.lines().map(str::trim_end).find(|line| {
        let t = line.trim_start();
        !(t.is_empty() || t.starts_with('#'))
    }) else {
        return false;
    };
    if first == "---" || first.starts_with("--- ") {
        return true;
    }
    let line = match first.find(" #") {
        Some(cut) => first[..cut].trim_end(),
        None => first,
    };
    let Some(key) = line.strip_suffix(':') else {
        return false;
    };
    !key.is_empty()
        && !line.starts_with(char::is_whitespace)
        && !key.contains(char::is_whitespace)
        && !key.starts_with(['[', '-', ';'])
        // `fe80::` is an IPv6 host of a plain list.
        && line.parse::<std::net::Ipv6Addr>().is_err()
}

fn is_ini(text: &str) -> bool {
    text.lines().map(str::trim).any(|line| {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            return false;
        }
        section_header(line).is_some()
            || line
                .split_whitespace()
                .skip(1)
                .take_while(|t| !t.starts_with('#'))
                .any(|t| t.contains('='))
    })
}

/// The inside of a `[section]` line. `[::1]` is a plain inventory's IPv6 host, not a section.
pub(super) fn section_header(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('[')?.strip_suffix(']')?;
    if inner.parse::<std::net::Ipv6Addr>().is_ok() {
        None
    } else {
        Some(inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_extension_wins_whatever_the_content() {
        assert_eq!(detect_format("fleet.toml", "web-1\n"), Format::Toml);
    }

    #[test]
    fn toml_with_only_fleet_keys_is_native() {
        let text = "[vars]\nntp = 'x'\n[hosts.web-1]\n[groups.web]\n";
        assert_eq!(detect_format("inventory", text), Format::Toml);
    }

    #[test]
    fn toml_with_other_keys_is_not_native() {
        // Valid TOML, but these are Ansible groups.
        let text = "[web]\n[db]\n";
        assert_eq!(detect_format("inventory", text), Format::Ini);
        assert_eq!(detect_format("inventory", ""), Format::Plain);
    }

    #[test]
    fn yaml_by_extension_or_by_its_first_line() {
        assert_eq!(detect_format("hosts.yml", "web-1\n"), Format::Yaml);
        assert_eq!(detect_format("hosts.yaml", ""), Format::Yaml);
        assert_eq!(
            detect_format("hosts", "# fleet\n\nall:\n  hosts:\n    a:\n"),
            Format::Yaml
        );
        assert_eq!(detect_format("hosts", "---\nweb:\n"), Format::Yaml);
        assert_eq!(
            detect_format("hosts", "all:   # every host\n"),
            Format::Yaml
        );
        assert_eq!(detect_format("hosts", "fe80::\n"), Format::Plain);
        assert_eq!(detect_format("hosts", "web-1:22\nall:\n"), Format::Plain);
        assert_eq!(detect_format("hosts", "[web]\nall:\n"), Format::Ini);
    }

    #[test]
    fn sections_or_key_values_mean_ini() {
        assert_eq!(detect_format("hosts", "# x\n[web]\nweb-1\n"), Format::Ini);
        assert_eq!(
            detect_format("hosts", "web-1 ansible_host=10.0.0.1\n"),
            Format::Ini
        );
        assert_eq!(detect_format("hosts", "web-1\n[web:vars]\n"), Format::Ini);
    }

    #[test]
    fn host_lists_are_plain() {
        let text = "# fleet\n\ndeploy@web-1:2222\n  db-1\n[::1]\n[::1]:22\n";
        assert_eq!(detect_format("hosts", text), Format::Plain);
    }

    #[test]
    fn comments_do_not_count() {
        assert_eq!(
            detect_format("hosts", "# [web]\n; [db]\nweb-1\n"),
            Format::Plain
        );
        assert_eq!(detect_format("hosts", "web-1 # a=b\n"), Format::Plain);
    }
}
