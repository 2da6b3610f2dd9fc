//! Recipes: Rhai files whose public functions are fleet commands.

pub mod args;
pub mod diagnostic;
pub mod doc;
pub mod engine;
pub mod index;
pub mod resolver;
pub mod sources;
