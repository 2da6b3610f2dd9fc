//! Menus on the operator's terminal (the `ask::` functions of recipes). Their options
//! often come from a host's output (storages, bridges, files), so a label is shown as
//! one line with its control characters made visible; the value goes back unchanged,
//! and the recipe checks it as it checks a command-line value.

use super::terminal::neutralise;

/// One option: `value` is returned, `label` shown.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Choice {
    pub(crate) value: String,
    pub(crate) label: String,
}

/// Why a menu cannot be shown; `what` is the question asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum MenuError {
    #[error(
        "cannot ask `{what}`: there is no terminal (stdin or stderr is not one); pass the value on the command line"
    )]
    NoTerminal { what: String },
    #[error("cannot ask `{what}`: there are no options to choose from")]
    Empty { what: String },
    #[error("cannot ask `{what}`: two options have the value `{value}`")]
    Duplicate { what: String, value: String },
    #[error("could not read the answer to `{what}` from the terminal: {error}")]
    Terminal { what: String, error: String },
}

/// What the terminal shows for untrusted text: one line, no control sequences.
pub(crate) fn shown(text: &str) -> String {
    neutralise(&text.replace(['\n', '\t'], " ")).into_owned()
}

/// Refuses an empty menu and options that could not be told apart by their values.
pub(crate) fn check(what: &str, choices: &[Choice]) -> Result<(), MenuError> {
    if choices.is_empty() {
        return Err(MenuError::Empty { what: shown(what) });
    }
    for (i, c) in choices.iter().enumerate() {
        if choices[..i].iter().any(|o| o.value == c.value) {
            return Err(MenuError::Duplicate {
                what: shown(what),
                value: shown(&c.value),
            });
        }
    }
    Ok(())
}

/// The option the cursor starts on: the default's, else the first (a default the
/// node does not have, e.g. `local-lvm` on a node without it, is no error here).
pub(crate) fn default_index(choices: &[Choice], default: Option<&str>) -> usize {
    default
        .and_then(|d| choices.iter().position(|c| c.value == d))
        .unwrap_or(0)
}

/// Which options start ticked: those whose value is among `defaults`.
pub(crate) fn ticked(choices: &[Choice], defaults: &[String]) -> Vec<bool> {
    choices
        .iter()
        .map(|c| defaults.contains(&c.value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choices(values: &[&str]) -> Vec<Choice> {
        values
            .iter()
            .map(|v| Choice {
                value: v.to_string(),
                label: format!("{v} label"),
            })
            .collect()
    }

    #[test]
    fn defaults_pick_the_cursor_and_the_ticks() {
        let c = choices(&["local-lvm", "tank"]);
        assert_eq!(default_index(&c, Some("tank")), 1);
        assert_eq!(default_index(&c, Some("gone")), 0);
        assert_eq!(default_index(&c, None), 0);
        assert_eq!(ticked(&c, &["tank".into(), "gone".into()]), [false, true]);
    }

    #[test]
    fn hostile_labels_are_one_visible_line() {
        assert_eq!(
            shown("tank\x1b]52;c;ZXZpbA==\x07\nsecond\tline\r"),
            "tank^[]52;c;ZXZpbA==^G second line^M"
        );
    }

    #[test]
    fn empty_and_ambiguous_menus_are_refused() {
        assert_eq!(
            check("storage", &[]).unwrap_err().to_string(),
            "cannot ask `storage`: there are no options to choose from"
        );
        assert_eq!(
            check("storage", &choices(&["a", "b", "a"]))
                .unwrap_err()
                .to_string(),
            "cannot ask `storage`: two options have the value `a`"
        );
        assert!(check("storage", &choices(&["a", "b"])).is_ok());
        assert_eq!(
            MenuError::NoTerminal {
                what: "storage".into()
            }
            .to_string(),
            "cannot ask `storage`: there is no terminal (stdin or stderr is not one); pass the value on the command line"
        );
    }
}
