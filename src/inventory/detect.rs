//! placeholder until the helper's version lands
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Ini,
    Plain,
}
pub fn detect_format(_name: &str, _text: &str) -> Format {
    Format::Toml
}
