//! What a node offers a new VM, for the menus of `fleet provision` on a terminal:
//! active storages that hold disk images (with their free space), bridges, and the
//! cloud images in a folder. Queries only; every value chosen is checked again by
//! `qm::check` and `qm::create` like a command-line value.

use super::procedures::read;
use super::{self as pve, Storage};
use crate::ops::remote::{CommandOpts, Remote};
use crate::ops::shell::quote;
use crate::outcome::HostError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeChoices {
    pub(crate) storages: Vec<Storage>,
    pub(crate) bridges: Vec<String>,
    /// Full paths, sorted.
    pub(crate) images: Vec<String>,
}

/// The cloud images directly in `dir` (qcow2, img, raw), one path a line.
pub(crate) fn images_command(dir: &str) -> String {
    format!(
        "find {} -maxdepth 1 -type f \\( -name '*.qcow2' -o -name '*.img' -o -name '*.raw' \\) -print",
        quote(dir)
    )
}

/// `find`'s lines, sorted; a missing folder reads as none.
pub(crate) fn parse_images(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

/// The `iface` of each bridge in `pvesh get /nodes/N/network --output-format json`.
pub(crate) fn parse_bridges(json: &str) -> Result<Vec<String>, serde_json::Error> {
    Ok(serde_json::from_str::<Vec<serde_json::Value>>(json)?
        .iter()
        .filter_map(|b| b["iface"].as_str().map(str::to_string))
        .collect())
}

/// `12.3 GiB free` for a storage row.
pub(crate) fn free_space(s: &Storage) -> String {
    format!("{:.1} GiB free", s.avail_kib as f64 / (1024.0 * 1024.0))
}

/// Reads the node's choices; `node_name` is its name in API paths (None: its
/// `hostname`), `image_dir` where its cloud images are.
pub(crate) fn node_choices(
    node: &dyn Remote,
    node_name: Option<&str>,
    image_dir: &str,
) -> Result<NodeChoices, HostError> {
    let unreadable = |what: String| HostError::new(node.name(), what);
    // Absolute, so that no folder name can read as an option of `find`.
    if !image_dir.starts_with('/') {
        return Err(unreadable(format!(
            "image folder `{}`: must be an absolute path",
            crate::ops::menu::shown(image_dir)
        )));
    }
    let storages = pve::parse_pvesm_status(&read(node, &pve::pvesm_content_command("images"))?)
        .map_err(|e| unreadable(format!("{e} on {}", node.name())))?
        .into_iter()
        .filter(|s| s.status == "active")
        .collect();
    let node_name = match node_name {
        Some(n) => n.to_string(),
        None => read(node, pve::HOSTNAME_COMMAND)?.trim().to_string(),
    };
    let bridges = parse_bridges(&read(node, &pve::bridges_command(&node_name))?).map_err(|e| {
        unreadable(format!(
            "bridges of {}: unexpected answer ({e})",
            node.name()
        ))
    })?;
    let found = node.command(&images_command(image_dir), CommandOpts::QUERY)?;
    Ok(NodeChoices {
        storages,
        bridges,
        images: parse_images(&found.stdout),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_found_in_one_quoted_folder() {
        assert_eq!(
            images_command("/var/lib/vz/template/iso"),
            "find /var/lib/vz/template/iso -maxdepth 1 -type f \\( -name '*.qcow2' -o -name '*.img' -o -name '*.raw' \\) -print"
        );
        assert!(images_command("/x; rm -rf /").starts_with("find '/x; rm -rf /' "));
        assert_eq!(
            parse_images("/i/b.qcow2\n/i/a.img\n\n"),
            ["/i/a.img", "/i/b.qcow2"]
        );
    }

    #[test]
    fn reads_storages_bridges_and_images() {
        use crate::ops::remote::fake::Scripted;
        let pvesm = "Name Type Status Total Used Available %\n\
                     local-lvm lvmthin active 100 10 90 10%\n\
                     nfs1 nfs disabled 0 0 0 N/A\n\
                     tank zfspool active 200 0 200 0%\n";
        let node = Scripted::new(&[
            ("pvesm status --content images", 0, pvesm),
            ("pvesh get /nodes/pve1/network", 0, r#"[{"iface":"vmbr0"}]"#),
            (
                "find /var/lib/vz/template/iso ",
                0,
                "/var/lib/vz/template/iso/d.qcow2\n",
            ),
        ]);
        let found = node_choices(&node, Some("pve1"), "/var/lib/vz/template/iso").unwrap();
        let ids: Vec<&str> = found.storages.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            ["local-lvm", "tank"],
            "a disabled storage is not offered"
        );
        assert_eq!(found.bridges, ["vmbr0"]);
        assert_eq!(found.images, ["/var/lib/vz/template/iso/d.qcow2"]);
        // A relative folder could read as an option of find: refused before asking.
        let err = node_choices(&Scripted::new(&[]), Some("pve1"), "-delete").unwrap_err();
        assert_eq!(
            err.message,
            "image folder `-delete`: must be an absolute path"
        );
    }

    #[test]
    fn bridges_and_free_space() {
        assert_eq!(
            parse_bridges(r#"[{"iface":"vmbr1"},{"iface":"vmbr0","type":"bridge"},{}]"#).unwrap(),
            ["vmbr1", "vmbr0"]
        );
        assert!(parse_bridges("not json").is_err());
        let s = Storage {
            id: "tank".into(),
            kind: "zfspool".into(),
            status: "active".into(),
            total_kib: 0,
            used_kib: 0,
            avail_kib: 86152102,
        };
        assert_eq!(free_space(&s), "82.2 GiB free");
    }
}
