//! Recipe parameters on the command line: required ones are positional, ones with a
//! default are `--name VALUE` options (`--flag` for booleans). Values are converted to
//! the declared type with an error that names the recipe and the argument.

use super::doc::ArgType;
use rhai::Dynamic;

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub ty: ArgType,
    /// None: required, given positionally.
    pub default: Option<Dynamic>,
    pub help: String,
}

impl Param {
    /// `--dry-run` for a parameter `dry_run`.
    pub fn flag(&self) -> String {
        self.name.replace('_', "-")
    }

    pub fn value_name(&self) -> String {
        self.name.to_uppercase()
    }
}

pub fn convert(ty: ArgType, raw: &str) -> Result<Dynamic, String> {
    match ty {
        ArgType::String => Ok(Dynamic::from(raw.to_string())),
        ArgType::Int => raw
            .trim()
            .parse::<rhai::INT>()
            .map(Dynamic::from)
            .map_err(|_| format!("expects an int, got `{raw}`")),
        ArgType::Float => raw
            .trim()
            .parse::<rhai::FLOAT>()
            .map(Dynamic::from)
            .map_err(|_| format!("expects a float, got `{raw}`")),
        ArgType::Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(Dynamic::from(true)),
            "false" | "no" | "off" | "0" => Ok(Dynamic::from(false)),
            _ => Err(format!("expects true or false, got `{raw}`")),
        },
    }
}

/// The clap definition of one recipe's arguments.
/// `retrying`: `--retry-failed` was given, so the earlier run supplies the arguments.
pub fn clap_args(params: &[Param], retrying: bool) -> Vec<clap::Arg> {
    params
        .iter()
        .map(|p| {
            let help = if p.help.is_empty() {
                format!("({})", p.ty.name())
            } else {
                format!("{} ({})", p.help, p.ty.name())
            };
            let arg = clap::Arg::new(p.name.clone()).help(help);
            match &p.default {
                // `--retry-failed` takes the arguments of the earlier run.
                None => arg.value_name(p.value_name()).required(!retrying),
                Some(d) if p.ty == ArgType::Bool => arg
                    .long(p.flag())
                    .alias(p.name.clone())
                    .value_name("BOOL")
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
                    .default_value(d.to_string()),
                Some(d) => arg
                    .long(p.flag())
                    .alias(p.name.clone())
                    .value_name(p.value_name())
                    .default_value(d.to_string()),
            }
        })
        .collect()
}

/// Converts the parsed command line into the recipe function's arguments, in order.
pub fn bind(
    recipe: &str,
    params: &[Param],
    matches: &clap::ArgMatches,
) -> Result<Vec<Dynamic>, String> {
    params
        .iter()
        .map(|p| {
            let raw = matches
                .get_one::<String>(&p.name)
                .ok_or_else(|| format!("recipe `{recipe}` needs {}", p.value_name()))?;
            convert(p.ty, raw)
                .map_err(|e| format!("argument `{}` of recipe `{recipe}` {e}", p.name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Vec<Param> {
        vec![
            Param {
                name: "name".into(),
                ty: ArgType::String,
                default: None,
                help: "VM name".into(),
            },
            Param {
                name: "cores".into(),
                ty: ArgType::Int,
                default: Some(Dynamic::from(2_i64)),
                help: String::new(),
            },
            Param {
                name: "dry_run".into(),
                ty: ArgType::Bool,
                default: Some(Dynamic::from(false)),
                help: String::new(),
            },
        ]
    }

    fn parse(args: &[&str]) -> Result<Vec<Dynamic>, String> {
        let cmd = clap::Command::new("provision").args(clap_args(&params(), false));
        let m = cmd
            .try_get_matches_from(std::iter::once("provision").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        bind("provision", &params(), &m)
    }

    #[test]
    fn converts_to_declared_types() {
        assert_eq!(convert(ArgType::Int, "42").unwrap().as_int(), Ok(42));
        assert_eq!(convert(ArgType::Float, "1.5").unwrap().as_float(), Ok(1.5));
        assert_eq!(convert(ArgType::Bool, "yes").unwrap().as_bool(), Ok(true));
        assert_eq!(
            convert(ArgType::Int, "four").unwrap_err(),
            "expects an int, got `four`"
        );
    }

    #[test]
    fn positional_options_and_flags() {
        let v = parse(&["web-3", "--cores", "4", "--dry-run"]).unwrap();
        assert_eq!(v[0].clone().into_string().unwrap(), "web-3");
        assert_eq!(v[1].as_int(), Ok(4));
        assert_eq!(v[2].as_bool(), Ok(true));
        let v = parse(&["web-3"]).unwrap();
        assert_eq!(v[1].as_int(), Ok(2));
        assert_eq!(v[2].as_bool(), Ok(false));
    }

    #[test]
    fn a_bad_value_names_recipe_and_argument() {
        let err = parse(&["web-3", "--cores", "four"]).unwrap_err();
        assert_eq!(
            err,
            "argument `cores` of recipe `provision` expects an int, got `four`"
        );
    }

    #[test]
    fn a_missing_argument_is_refused() {
        let err = parse(&[]).unwrap_err();
        assert!(err.contains("<NAME>"), "{err}");
    }
}
