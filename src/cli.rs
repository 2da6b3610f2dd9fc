//! The command line: fleet's built-in commands, plus one subcommand per recipe, generated
//! from the recipes' signatures and doc comments.

use crate::recipe::args::clap_args;
use crate::recipe::index::RecipeIndex;
use clap::{Args, CommandFactory, Parser, Subcommand};
use std::path::PathBuf;

/// Names recipes cannot take.
pub(crate) const BUILTIN_COMMANDS: &[&str] = &[
    "hosts",
    "list",
    "exec",
    "recipes",
    "help",
    "init",
    "api",
    "completions",
    "connect",
    "history",
    "show",
    "config-diff",
    "backups",
    "status",
    "report",
    "pull",
];

/// A recipe argument cannot be called like one of fleet's global options (`--timeout`,
/// `--check`, ...): the command line could not tell them apart.
/// `cmd` is the command line `command` built, whose own arguments are the globals.
pub(crate) fn check_recipe_flags(
    recipes: &RecipeIndex,
    cmd: &clap::Command,
) -> crate::error::Result<()> {
    let globals: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .chain(["help".to_string(), "version".to_string()])
        .collect();
    for recipe in recipes.recipes.values() {
        for p in &recipe.params {
            if p.default.is_some() && globals.contains(&p.flag()) {
                return Err(crate::error::Error::usage_with_help(
                    format!(
                        "{}: argument `{}` of recipe `{}` would be --{}, which is one of fleet's own options",
                        recipe.file,
                        p.name,
                        recipe.name,
                        p.flag()
                    ),
                    "rename the argument",
                ));
            }
        }
    }
    Ok(())
}

const EXIT_CODES: &str = "\
Exit codes:
  0    every host ended ok or changed
  1    internal error in fleet
  2    usage, configuration or recipe error
  3    at least one host failed
  4    at least one host was unreachable (and none failed)
  75   another run holds the project's lock
  124  the run's --timeout expired
  130  interrupted (Ctrl-C, SIGTERM); the recap and log are still written

Recipes: `fleet recipes` lists them, `fleet help RECIPE` shows one.";

#[derive(Debug, Parser)]
#[command(
    name = "fleet",
    version,
    about = "Run versioned Rhai recipes against a fleet of servers",
    disable_help_subcommand = true,
    arg_required_else_help = true,
    after_help = EXIT_CODES,
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Option<Builtin>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// Run in this project directory (default: walk up to the nearest fleet.toml)
    #[arg(short = 'C', long = "directory", value_name = "DIR", global = true)]
    pub(crate) directory: Option<PathBuf>,
    /// Use this inventory (TOML, a plain host list, Ansible INI or YAML, or an executable
    /// dynamic inventory, run with --list)
    #[arg(short, long, value_name = "FILE", global = true)]
    pub(crate) inventory: Option<PathBuf>,
    /// Only touch hosts matching this pattern
    #[arg(short, long, value_name = "PATTERN", global = true)]
    pub(crate) limit: Option<String>,
    /// How many hosts to work on at once [default: fleet.toml's forks, else 10]
    #[arg(short, long, value_name = "N", global = true)]
    pub(crate) forks: Option<usize>,
    /// Stop starting new hosts once more than N (or N%) have failed
    #[arg(long, value_name = "N|N%", global = true)]
    pub(crate) max_fail: Option<String>,
    /// Dry run: read-only queries run, commands that would change something are printed
    #[arg(long, global = true)]
    pub(crate) check: bool,
    /// Bound the whole run (e.g. 30m, 1h): on expiry fleet stops it, writes the recap and
    /// exits 124
    #[arg(long, value_name = "DURATION", global = true, value_parser = humantime::parse_duration)]
    pub(crate) timeout: Option<std::time::Duration>,
    /// Wait this many seconds for another run of the project to end (default: exit 75 at once)
    #[arg(long, value_name = "SECS", default_value_t = 0, global = true)]
    pub(crate) lock_wait: u64,
    /// Rerun a recipe with the arguments of its last run (or of run RUN), only on the
    /// hosts that failed or were unreachable there
    #[arg(long, value_name = "RUN", num_args = 0..=1, require_equals = true, default_missing_value = "last", global = true)]
    pub(crate) retry_failed: Option<String>,
    /// Run the project's recipes as they are at this git revision (tag, branch, commit)
    #[arg(long, value_name = "REV", global = true)]
    pub(crate) recipes_rev: Option<String>,
    /// Record the host keys of hosts never seen before (changed keys are still refused)
    #[arg(long, global = true)]
    pub(crate) accept_new_host_keys: bool,
    /// Plain log lines instead of progress bars
    #[arg(long, global = true)]
    pub(crate) no_progress: bool,
    /// Machine-readable output (recap of a run, host list, recipe list)
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// More output: commands and their output (-vv: more)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Less output: only failures and the recap
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) quiet: u8,
    /// Keep the journal in this directory instead of the project's state repository
    #[arg(long, value_name = "DIR", global = true, hide = true)]
    pub(crate) state_dir: Option<PathBuf>,
}

impl GlobalArgs {
    pub(crate) fn verbosity(&self) -> i8 {
        self.verbose as i8 - self.quiet as i8
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Builtin {
    /// List hosts with address, groups and variables
    #[command(visible_alias = "list")]
    Hosts {
        /// Host pattern, e.g. `web`, `web-*`, `web:&prod`, `all:!db-1`
        #[arg(default_value = "all")]
        pattern: String,
    },
    /// Run an ad-hoc shell command on matching hosts
    Exec {
        /// Host pattern
        pattern: String,
        /// The command, after `--`
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Open an interactive SSH session to a host (or run CMD there), with the same
    /// user, port, key and host-key policy as a run
    Connect {
        /// Inventory host name
        host: String,
        /// A command to run instead of a shell, after `--`
        #[arg(last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// List past runs from the journal, newest first
    History {
        /// Only runs that touched this host
        #[arg(long)]
        host: Option<String>,
        /// Only runs of this recipe
        #[arg(long)]
        recipe: Option<String>,
        /// Only runs since a date (2026-11-01), a time, or an age (2h, 3days)
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
    },
    /// Show one run per host with its steps, commands and output tails
    Show {
        /// Run id (or a unique prefix), or `last`
        #[arg(default_value = "last")]
        run: String,
    },
    /// Show how a host's captured configuration changed between two runs
    /// (default: the last two changes)
    ConfigDiff {
        host: String,
        /// One run (compared with the newest state) or two
        #[arg(num_args = 0..=2, value_name = "RUN")]
        runs: Vec<String>,
    },
    /// Per host: the last good backup snapshot, its age and size, and the last error
    Backups,
    /// The fleet at a glance: reachable, OS, kernel, uptime, pending (security) updates,
    /// reboot needed, sudo, last update run and last backup, gathered in parallel
    Status {
        /// Host pattern
        #[arg(default_value = "all")]
        pattern: String,
        /// From the journal (the last `fleet status` and runs), without connecting
        #[arg(long)]
        cached: bool,
        /// Only hosts with pending updates or a reboot waiting
        #[arg(long)]
        outdated: bool,
        /// Only hosts that could not be reached
        #[arg(long)]
        unreachable: bool,
    },
    /// Pull mode, run on a host itself (cron, systemd timer): sync the recipe repository
    /// (its last good checkout when the fetch fails), run RECIPE on this host with the
    /// local transport, keep the journal here, optionally push it to a results branch
    Pull {
        /// The recipe repository (a path, file://, or any URL the git command fetches)
        #[arg(long, value_name = "URL")]
        repo: String,
        /// Branch, tag or commit to run (default: the repository's default branch)
        #[arg(long, value_name = "REV")]
        rev: Option<String>,
        /// Where the checkout, journal and inventory live
        /// [default: ~/.local/state/fleet/pull/<repo>]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// This host's name in the repository's inventory [default: the hostname]
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
        /// Push the journal to the branch PREFIX/<host> of the repository after the run
        #[arg(long, value_name = "PREFIX")]
        push_results: Option<String>,
        /// The recipe to run
        recipe: String,
        /// The recipe's arguments
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
    /// Write the fleet's status, run history and per-host results as one
    /// self-contained HTML page (from the journal; no connection)
    Report {
        /// The HTML file to write
        #[arg(long, value_name = "FILE")]
        html: PathBuf,
        /// How many of the newest runs to include
        #[arg(long, default_value_t = 30)]
        runs: usize,
    },
    /// List every recipe with its summary and where it comes from
    Recipes,
    /// Show help for fleet or for one recipe
    Help {
        /// Recipe or command name
        name: Option<String>,
    },
    /// Create a new fleet project
    Init {
        /// Directory to create it in
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Print the reference of every function a recipe can call
    Api {
        /// Write `.d.rhai` definition files for editor completion into DIR instead
        #[arg(long, value_name = "DIR")]
        definitions: Option<PathBuf>,
    },
    /// Print shell completions
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The full command line: built-ins plus a subcommand for every recipe.
pub(crate) fn command(recipes: &RecipeIndex, retrying: bool) -> clap::Command {
    let mut cmd = Cli::command();
    let required = !retrying && !crate::recipe::args::on_terminal();
    for recipe in recipes.recipes.values() {
        let mut sub = clap::Command::new(recipe.name.clone())
            .about(recipe.doc.summary.clone())
            .args(clap_args(&recipe.params, required))
            .after_help(format!(
                "Recipe defined in {}{}",
                recipe.file,
                recipe
                    .overrides
                    .as_ref()
                    .map(|b| format!(" (replaces {b})"))
                    .unwrap_or_default()
            ));
        if !recipe.doc.body.is_empty() {
            sub = sub.long_about(format!("{}\n\n{}", recipe.doc.summary, recipe.doc.body));
        }
        if recipe.name.contains('_') {
            sub = sub.visible_alias(recipe.name.replace('_', "-"));
        }
        cmd = cmd.subcommand(sub);
    }
    cmd
}

/// `-C DIR` is needed before parsing (recipes depend on the project), so it is found
/// by a scan of the raw arguments first.
pub(crate) fn prescan_directory(args: &[std::ffi::OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if s == "--" {
            break;
        }
        if s == "-C" || s == "--directory" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = s.strip_prefix("--directory=") {
            return Some(PathBuf::from(v));
        }
        if let Some(v) = s.strip_prefix("-C")
            && !s.starts_with("--")
        {
            return Some(PathBuf::from(v.strip_prefix('=').unwrap_or(v)));
        }
    }
    None
}

/// The value of a long option (`--name V` or `--name=V`) before `--`, for options that
/// must be known before parsing.
pub(crate) fn prescan_value(args: &[std::ffi::OsString], name: &str) -> Option<String> {
    let mut it = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == name {
            return it.next().map(|v| v.into_owned());
        }
        if let Some(v) = a.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return Some(v.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<std::ffi::OsString> {
        v.iter().map(Into::into).collect()
    }

    #[test]
    fn finds_the_directory_anywhere_before_double_dash() {
        assert_eq!(
            prescan_directory(&os(&["fleet", "-C", "x", "hosts"])),
            Some("x".into())
        );
        assert_eq!(
            prescan_directory(&os(&["fleet", "hosts", "--directory=y"])),
            Some("y".into())
        );
        assert_eq!(prescan_directory(&os(&["fleet", "-Cz"])), Some("z".into()));
        assert_eq!(
            prescan_directory(&os(&["fleet", "exec", "all", "--", "-C", "x"])),
            None
        );
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
