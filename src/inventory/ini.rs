//! placeholder
use super::*;
pub fn parse(_name: &str, _text: &str) -> crate::error::Result<Inventory> {
    Err(crate::error::Error::usage("x"))
}
