//! Recipes: Rhai files whose public functions are fleet commands.

pub(crate) mod args;
pub(crate) mod check;
pub(crate) mod diagnostic;
pub(crate) mod doc;
pub(crate) mod engine;
pub(crate) mod index;
pub(crate) mod resolver;
pub(crate) mod sources;
