//! placeholder
use super::*;
pub fn select<'a>(inv: &'a Inventory, pattern: &str) -> crate::error::Result<Vec<&'a Host>> {
    let v: Vec<&Host> = inv
        .hosts
        .values()
        .filter(|h| {
            pattern == "all"
                || h.name == pattern
                || h.groups.iter().any(|g| g == pattern)
                || pattern
                    .strip_suffix('*')
                    .is_some_and(|p| h.name.starts_with(p))
        })
        .collect();
    if v.is_empty() {
        return Err(crate::error::Error::usage(format!(
            "pattern `{pattern}` matches no host in {}",
            inv.source
        )));
    }
    Ok(v)
}
