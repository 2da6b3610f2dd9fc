//! Recipe parameters on the command line: required ones are positional, ones with a
//! default are `--name VALUE` options (`--flag` for booleans). Values are converted to
//! the declared type with an error that names the recipe and the argument.

use super::doc::ArgType;
use rhai::Dynamic;

#[derive(Debug, Clone)]
pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) ty: ArgType,
    /// None: required, given positionally.
    pub(crate) default: Option<Dynamic>,
    pub(crate) help: String,
}

impl Param {
    /// `--dry-run` for a parameter `dry_run`.
    pub(crate) fn flag(&self) -> String {
        self.name.replace('_', "-")
    }

    pub(crate) fn value_name(&self) -> String {
        self.name.to_uppercase()
    }
}

/// A value that is not of its argument's declared type; the caller names the argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConvertError {
    #[error("expects an int, got `{0}`")]
    Int(String),
    #[error("expects a port (1-65535), got `{0}`")]
    Port(String),
    #[error("expects a float, got `{0}`")]
    Float(String),
    #[error("expects true or false, got `{0}`")]
    Bool(String),
}

/// Why a recipe's arguments cannot be bound from the command line (or the terminal).
#[derive(Debug, thiserror::Error)]
pub(crate) enum BindError {
    /// `missing`: each argument's value name, with its help when it has one.
    #[error(
        "recipe `{recipe}` needs {}: pass {} on the command line (`fleet help {recipe}`); on a terminal fleet asks for them",
        .missing.join(", "),
        it_or_them(.missing)
    )]
    Missing {
        recipe: String,
        missing: Vec<String>,
    },
    #[error("recipe `{recipe}` needs {value_name}")]
    NotGiven { recipe: String, value_name: String },
    #[error("argument `{arg}` of recipe `{recipe}` {error}")]
    Invalid {
        recipe: String,
        arg: String,
        error: ConvertError,
    },
    #[error("could not read `{arg}` from the terminal: {error}")]
    Terminal {
        arg: String,
        error: dialoguer::Error,
    },
}

fn it_or_them(missing: &[String]) -> &'static str {
    if missing.len() == 1 { "it" } else { "them" }
}

pub(crate) fn convert(ty: ArgType, raw: &str) -> Result<Dynamic, ConvertError> {
    match ty {
        ArgType::String => Ok(Dynamic::from(raw.to_string())),
        ArgType::Int => raw
            .trim()
            .parse::<rhai::INT>()
            .map(Dynamic::from)
            .map_err(|_| ConvertError::Int(raw.to_string())),
        // An int a recipe pastes into a configuration file (`Port ${ssh_port}`) or an
        // inventory entry: out of range it would only fail on the host, much later.
        ArgType::Port => raw
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .map(|p| Dynamic::from(rhai::INT::from(p)))
            .ok_or_else(|| ConvertError::Port(raw.to_string())),
        ArgType::Float => raw
            .trim()
            .parse::<rhai::FLOAT>()
            .map(Dynamic::from)
            .map_err(|_| ConvertError::Float(raw.to_string())),
        ArgType::Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(Dynamic::from(true)),
            "false" | "no" | "off" | "0" => Ok(Dynamic::from(false)),
            _ => Err(ConvertError::Bool(raw.to_string())),
        },
    }
}

/// The clap definition of one recipe's arguments.
/// `required`: clap itself refuses a missing positional argument (false when
/// `--retry-failed` supplies the earlier run's, or on a terminal, where `bind` asks).
pub(crate) fn clap_args(params: &[Param], required: bool) -> Vec<clap::Arg> {
    let mut args: Vec<clap::Arg> = params
        .iter()
        .map(|p| {
            let help = if p.help.is_empty() {
                format!("({})", p.ty.name())
            } else {
                format!("{} ({})", p.help, p.ty.name())
            };
            let arg = clap::Arg::new(p.name.clone())
                .help(help)
                .help_heading("Recipe options");
            match &p.default {
                None => arg.value_name(p.value_name()).required(required),
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
        .collect();
    if takes_positional_pattern(params) {
        args.push(
            clap::Arg::new(POSITIONAL_PATTERN)
                .value_name("PATTERN")
                .help("Which hosts, as `--pattern` (e.g. `web`, `web-*`, `web:&prod`)")
                .index(1)
                .conflicts_with("pattern"),
        );
    }
    args
}

/// The id of the positional form of a `pattern` argument.
const POSITIONAL_PATTERN: &str = "pattern (positional)";

/// `fleet update web-3` as `inv update web-3` would take it: a recipe whose arguments all
/// have defaults and include `pattern` also takes the pattern as its first positional
/// argument (`--pattern` keeps working).
fn takes_positional_pattern(params: &[Param]) -> bool {
    params.iter().all(|p| p.default.is_some())
        && params
            .iter()
            .any(|p| p.name == "pattern" && p.ty == ArgType::String)
}

/// Whether fleet can ask the user (stdin and stderr are a terminal).
pub(crate) fn on_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks the user for one argument: the parameter and its default, if it has one.
pub(crate) type Ask<'a> = &'a dyn Fn(&Param, Option<String>) -> Result<String, BindError>;

/// The arguments the user typed (not clap's defaults): a recipe asks on the terminal
/// only for the others (`ask::given`).
pub(crate) fn from_command_line(params: &[Param], matches: &clap::ArgMatches) -> Vec<String> {
    params
        .iter()
        .filter(|p| {
            (p.name == "pattern"
                && takes_positional_pattern(params)
                && matches.get_one::<String>(POSITIONAL_PATTERN).is_some())
                || matches.value_source(&p.name) == Some(clap::parser::ValueSource::CommandLine)
        })
        .map(|p| p.name.clone())
        .collect()
}

/// Converts the parsed command line into the recipe function's arguments, in order.
/// When a required argument is missing and `ask` is given (a terminal), the missing
/// required ones are asked for (the others keep their defaults: the recipe may offer
/// menus for them, `ask::`); without `ask`, the error lists every missing one.
pub(crate) fn bind(
    recipe: &str,
    params: &[Param],
    matches: &clap::ArgMatches,
    ask: Option<Ask>,
) -> Result<Vec<Dynamic>, BindError> {
    let positional = |p: &Param| {
        (p.name == "pattern" && takes_positional_pattern(params))
            .then(|| matches.get_one::<String>(POSITIONAL_PATTERN).cloned())
            .flatten()
    };
    let given = |p: &Param| positional(p).or_else(|| matches.get_one::<String>(&p.name).cloned());
    let missing: Vec<&Param> = params
        .iter()
        .filter(|p| p.default.is_none() && given(p).is_none())
        .collect();
    let interactive = match (missing.is_empty(), ask) {
        (true, _) => None,
        (false, Some(ask)) => Some(ask),
        (false, None) => {
            let names: Vec<String> = missing
                .iter()
                .map(|p| {
                    if p.help.is_empty() {
                        p.value_name()
                    } else {
                        format!("{} ({})", p.value_name(), p.help)
                    }
                })
                .collect();
            return Err(BindError::Missing {
                recipe: recipe.to_string(),
                missing: names,
            });
        }
    };
    params
        .iter()
        .map(|p| {
            let from_command_line = positional(p).is_some()
                || matches.value_source(&p.name) == Some(clap::parser::ValueSource::CommandLine);
            match interactive {
                Some(ask) if !from_command_line && p.default.is_none() => loop {
                    let raw = ask(p, given(p))?;
                    match convert(p.ty, &raw) {
                        Ok(v) => break Ok(v),
                        Err(e) => eprintln!("{} {e}", p.name),
                    }
                },
                _ => {
                    let raw = given(p).ok_or_else(|| BindError::NotGiven {
                        recipe: recipe.to_string(),
                        value_name: p.value_name(),
                    })?;
                    convert(p.ty, &raw).map_err(|error| BindError::Invalid {
                        recipe: recipe.to_string(),
                        arg: p.name.clone(),
                        error,
                    })
                }
            }
        })
        .collect()
}

/// `ask` for a terminal: one line per argument, its help as the prompt, the default
/// accepted with Enter.
pub(crate) fn ask_on_terminal(p: &Param, default: Option<String>) -> Result<String, BindError> {
    let prompt = if p.help.is_empty() {
        format!("{} ({})", p.name, p.ty.name())
    } else {
        format!("{}: {} ({})", p.name, p.help, p.ty.name())
    };
    let mut input = dialoguer::Input::<String>::new().with_prompt(prompt);
    if let Some(d) = default {
        input = input.default(d).allow_empty(true);
    }
    input.interact_text().map_err(|error| BindError::Terminal {
        arg: p.name.clone(),
        error,
    })
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

    // String: the test compares clap's and bind's messages alike, as the user sees them.
    fn parse(args: &[&str]) -> Result<Vec<Dynamic>, String> {
        let cmd = clap::Command::new("provision").args(clap_args(&params(), true));
        let m = cmd
            .try_get_matches_from(std::iter::once("provision").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        bind("provision", &params(), &m, None).map_err(|e| e.to_string())
    }

    #[test]
    fn argument_errors_say_what_is_wrong() {
        let invalid = BindError::Invalid {
            recipe: "provision".into(),
            arg: "cores".into(),
            error: ConvertError::Int("four".into()),
        };
        let terminal = BindError::Terminal {
            arg: "name".into(),
            error: std::io::Error::other("closed").into(),
        };
        let cases: [(Box<dyn std::error::Error>, &str); 8] = [
            (
                Box::new(ConvertError::Int("x".into())),
                "expects an int, got `x`",
            ),
            (
                ConvertError::Port("0".into()).into(),
                "expects a port (1-65535), got `0`",
            ),
            (
                ConvertError::Float("x".into()).into(),
                "expects a float, got `x`",
            ),
            (
                ConvertError::Bool("x".into()).into(),
                "expects true or false, got `x`",
            ),
            (
                Box::new(BindError::Missing {
                    recipe: "provision".into(),
                    missing: vec!["NAME".into(), "SIZE (in GB)".into()],
                }),
                "recipe `provision` needs NAME, SIZE (in GB): pass them on the command line (`fleet help provision`); on a terminal fleet asks for them",
            ),
            (
                Box::new(BindError::NotGiven {
                    recipe: "provision".into(),
                    value_name: "NAME".into(),
                }),
                "recipe `provision` needs NAME",
            ),
            (
                Box::new(invalid),
                "argument `cores` of recipe `provision` expects an int, got `four`",
            ),
            (
                Box::new(terminal),
                "could not read `name` from the terminal: IO error: closed",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn converts_to_declared_types() {
        assert_eq!(convert(ArgType::Int, "42").unwrap().as_int(), Ok(42));
        assert_eq!(convert(ArgType::Port, "2222").unwrap().as_int(), Ok(2222));
        for bad in ["0", "70000", "-22", "ssh"] {
            assert_eq!(
                convert(ArgType::Port, bad).unwrap_err().to_string(),
                format!("expects a port (1-65535), got `{bad}`")
            );
        }
        assert_eq!(convert(ArgType::Float, "1.5").unwrap().as_float(), Ok(1.5));
        assert_eq!(convert(ArgType::Bool, "yes").unwrap().as_bool(), Ok(true));
        assert_eq!(
            convert(ArgType::Int, "four").unwrap_err().to_string(),
            "expects an int, got `four`"
        );
    }

    fn update_params() -> Vec<Param> {
        let string = |name: &str, d: &str| Param {
            name: name.into(),
            ty: ArgType::String,
            default: Some(Dynamic::from(d.to_string())),
            help: String::new(),
        };
        vec![string("pattern", "all"), string("serial", "")]
    }

    // String: the test compares clap's and bind's messages alike, as the user sees them.
    fn parse_update(args: &[&str]) -> Result<Vec<String>, String> {
        let cmd = clap::Command::new("update").args(clap_args(&update_params(), true));
        let m = cmd
            .try_get_matches_from(std::iter::once("update").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        let values = bind("update", &update_params(), &m, None).map_err(|e| e.to_string())?;
        Ok(values.into_iter().map(|v| v.to_string()).collect())
    }

    #[test]
    fn a_pattern_argument_is_also_the_first_positional() {
        assert_eq!(parse_update(&[]).unwrap(), ["all", ""]);
        assert_eq!(parse_update(&["web-3"]).unwrap(), ["web-3", ""]);
        assert_eq!(
            parse_update(&["--pattern", "db", "--serial", "2"]).unwrap(),
            ["db", "2"]
        );
        assert_eq!(
            parse_update(&["web:&prod", "--serial=25%"]).unwrap(),
            ["web:&prod", "25%"]
        );
        let both = parse_update(&["web", "--pattern", "db"]).unwrap_err();
        assert!(both.contains("cannot be used with"), "{both}");
        // A recipe with a required argument keeps its positionals for those.
        let mut params = update_params();
        params[1].default = None;
        assert!(!takes_positional_pattern(&params));
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
    fn a_missing_argument_is_refused_with_every_name() {
        let err = parse(&[]).unwrap_err();
        assert!(
            err.contains("required arguments were not provided:\n  <NAME>"),
            "{err}"
        );
        let cmd = clap::Command::new("provision").args(clap_args(&params(), false));
        let m = cmd.try_get_matches_from(["provision"]).unwrap();
        let err = bind("provision", &params(), &m, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "recipe `provision` needs NAME (VM name): pass it on the command line (`fleet help provision`); on a terminal fleet asks for them"
        );
    }

    #[test]
    fn on_a_terminal_only_missing_required_arguments_are_asked_for() {
        let cmd = clap::Command::new("provision").args(clap_args(&params(), false));
        let m = cmd
            .try_get_matches_from(["provision", "--cores", "8"])
            .unwrap();
        let asked = std::sync::Mutex::new(Vec::new());
        let ask = |p: &Param, default: Option<String>| {
            asked
                .lock()
                .unwrap()
                .push((p.name.clone(), default.clone()));
            Ok(match p.name.as_str() {
                "name" => "web-9".to_string(),
                _ => default.unwrap_or_default(),
            })
        };
        let v = bind("provision", &params(), &m, Some(&ask)).unwrap();
        assert_eq!(v[0].clone().into_string().unwrap(), "web-9");
        assert_eq!(v[1].as_int(), Ok(8));
        assert_eq!(v[2].as_bool(), Ok(false));
        assert_eq!(*asked.lock().unwrap(), [("name".into(), None)]);
        assert_eq!(from_command_line(&params(), &m), ["cores"]);
    }
}
