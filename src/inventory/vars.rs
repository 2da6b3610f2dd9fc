//! placeholder
use super::*;
pub(super) fn resolve(inv: &Inventory, host: &str) -> Option<ResolvedHost> {
    let h = inv.hosts.get(host)?;
    Some(ResolvedHost {
        name: h.name.clone(),
        address: h.address.clone(),
        port: h.port,
        user: h.user.clone(),
        identity_file: h.identity_file.clone(),
        connection: h.connection,
        groups: h.groups.clone(),
        vars: h.vars.clone(),
    })
}
