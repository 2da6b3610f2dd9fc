//! The command line: fleet's built-in commands, plus one subcommand per recipe, generated
//! from the recipes' signatures and doc comments.

use crate::recipe::args::clap_args;
use crate::recipe::index::RecipeIndex;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
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
    "restore",
    "catalog",
    "status",
    "report",
    "pull",
    "check",
    "replay",
    "test",
    "keys",
    "user",
    "guest",
    "image",
    "drift",
    "serve",
];

/// A recipe argument cannot be called like one of fleet's global options (`--timeout`,
/// `--check`, ...): the command line could not tell them apart. Returns each recipe
/// that has such an argument with the error (the caller makes those recipes broken).
pub(crate) fn recipe_flag_clashes(recipes: &RecipeIndex) -> Vec<(String, crate::error::Error)> {
    // fleet's own options are those of the command line without any recipe: building
    // the whole command line (every recipe's subcommand) for them is not needed.
    let cmd = Cli::command();
    let globals: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .chain(["help".to_string(), "version".to_string()])
        .collect();
    // Options are added to every recipe's command under their ids (`max_fail`, ...).
    let ids: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    let mut clashes = Vec::new();
    for recipe in recipes.recipes.values() {
        let clash = recipe.params.iter().find(|p| {
            (p.default.is_some() && globals.contains(&p.flag())) || ids.contains(&p.name)
        });
        if let Some(p) = clash {
            clashes.push((
                recipe.name.clone(),
                crate::error::Error::usage_with_help(
                    format!(
                        "{}: argument `{}` of recipe `{}` would be --{}, which is one of fleet's own options",
                        recipe.file,
                        p.name,
                        recipe.name,
                        p.flag()
                    ),
                    "rename the argument",
                ),
            ));
        }
    }
    clashes
}

const EXIT_CODES: &str = "\
Exit codes:
  0    every host ended ok or changed
  1    internal error in fleet
  2    usage, configuration or recipe error; recipes refused by --require-signed
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
    #[arg(short, long, value_name = "PATTERN")]
    pub(crate) limit: Option<String>,
    /// How many hosts to work on at once [default: fleet.toml's forks, else 10]
    #[arg(short, long, value_name = "N")]
    pub(crate) forks: Option<usize>,
    /// Stop starting new hosts once more than N (or N%) have failed
    #[arg(long, value_name = "N|N%")]
    pub(crate) max_fail: Option<String>,
    /// Dry run: read-only queries run, commands that would change something are printed
    #[arg(long)]
    pub(crate) check: bool,
    /// Bound the whole run (e.g. 30m, 1h): on expiry fleet stops it, writes the recap and
    /// exits 124
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Option<std::time::Duration>,
    /// Wait this many seconds for another run of the project to end (default: exit 75 at once)
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub(crate) lock_wait: u64,
    /// Rerun a recipe with the arguments of its last run (or of run RUN), only on the
    /// hosts that failed or were unreachable there
    #[arg(long, value_name = "RUN", num_args = 0..=1, require_equals = true, default_missing_value = "last")]
    pub(crate) retry_failed: Option<String>,
    /// Run the project's recipes as they are at this git revision (tag, branch, commit)
    #[arg(long, value_name = "REV")]
    pub(crate) recipes_rev: Option<String>,
    /// Run only recipes of a commit (or annotated tag) signed by an allowed key: the
    /// --recipes-rev, the replayed run's commit, the --catalog-repo checkout, the pulled
    /// commit; anything else is refused (exit 2)
    #[arg(long)]
    pub(crate) require_signed: bool,
    /// SSH keys allowed to sign (ssh-keygen's allowed signers format: `PRINCIPAL KEY`)
    /// [default: fleet.toml's allowed_signers; in pull mode DIR/allowed_signers]
    #[arg(long, value_name = "FILE")]
    pub(crate) allowed_signers: Option<PathBuf>,
    /// OpenPGP public keys allowed to sign (a keyring file for gpgv)
    #[arg(long, value_name = "FILE")]
    pub(crate) gpg_keyring: Option<PathBuf>,
    /// Record the host keys of hosts never seen before (changed keys are still refused)
    #[arg(long)]
    pub(crate) accept_new_host_keys: bool,
    /// Plain log lines instead of progress bars
    #[arg(long)]
    pub(crate) no_progress: bool,
    /// The closing table: `auto` lists every host, except on a terminal with more than
    /// 20 hosts, where ok/changed/skipped hosts are counted and only failed and
    /// unreachable ones listed (`short`); `full` lists every host (the journal always has
    /// all)
    #[arg(long, value_name = "MODE", value_enum, default_value_t = RecapMode::Auto)]
    pub(crate) recap: RecapMode,
    /// Machine-readable output (recap of a run, host list, recipe list)
    #[arg(long)]
    pub(crate) json: bool,
    /// More output: commands and their output (-vv: more)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Quiet, for cron: nothing when every host ends well; on failure only the failed and
    /// unreachable hosts and the summary line
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) quiet: u8,
    /// Keep the journal in this directory instead of the project's state repository
    #[arg(long, value_name = "DIR", global = true, hide = true)]
    pub(crate) state_dir: Option<PathBuf>,
    /// Not an option: set by pull mode when it refused a newer commit and runs the last
    /// verified one (`refused: commit abc1234 is not signed`), for the journal record.
    #[arg(skip)]
    pub(crate) refused: Option<String>,
}

/// How much of the closing table is shown (`--recap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RecapMode {
    Auto,
    Full,
    Short,
}

impl GlobalArgs {
    pub(crate) fn verbosity(&self) -> i8 {
        self.verbose as i8 - self.quiet as i8
    }
}

/// `fleet pull verify`.
#[derive(Debug, Args)]
pub(crate) struct PullVerify {
    /// The recipe repository (as given to fleet pull)
    #[arg(long, value_name = "URL")]
    pub(crate) repo: String,
    /// Branch, tag or commit (default: the repository's default branch)
    #[arg(long, value_name = "REV")]
    pub(crate) rev: Option<String>,
    /// The pull directory (as given to fleet pull)
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// SSH keys allowed to sign [default: pull.toml's allowed_signers, else
    /// DIR/allowed_signers]
    #[arg(long, value_name = "FILE")]
    pub(crate) allowed_signers: Option<PathBuf>,
    /// OpenPGP public keys allowed to sign [default: pull.toml's gpg_keyring]
    #[arg(long, value_name = "FILE")]
    pub(crate) gpg_keyring: Option<PathBuf>,
    /// The recipe fleet pull would run, shown with the rest
    pub(crate) recipe: Option<String>,
}

/// `fleet pull enroll`, `fleet pull verify`.
#[derive(Debug, Subcommand)]
pub(crate) enum PullCommand {
    /// Print what `fleet pull` would run (commit, subject, recipe) and who signed it
    /// (principal, key), without running anything; exit 2 when it would be refused
    Verify(Box<PullVerify>),
    /// Set hosts up for pull mode over SSH: check the architecture, copy this fleet
    /// binary to /usr/local/bin/fleet, write the systemd service and timer of
    /// examples/pull/ (hosts without systemd: /etc/cron.d/fleet-pull, same command and
    /// interval), enable them and run the first pull, showing its result. Idempotent
    /// (a second enroll says "unchanged"); `fleet --check pull enroll ...` shows what
    /// it would do. With --print, the shell script to run as root on a host fleet
    /// cannot reach. Enrolled hosts run only recipes signed by a key of
    /// --allowed-signers, unless enrolled --unsigned
    Enroll {
        /// Host pattern
        #[arg(default_value = "all")]
        pattern: String,
        /// The recipe repository the host pulls from
        #[arg(long, value_name = "URL")]
        repo: String,
        /// The recipe the timer runs
        #[arg(long, value_name = "NAME", default_value = "update")]
        recipe: String,
        /// How often (also the host's expected interval: set `pull_interval` to it)
        #[arg(long, value_name = "DURATION", default_value = "1h")]
        interval: String,
        /// Push the journal to the branch PREFIX/<host> after each run
        #[arg(long, value_name = "PREFIX")]
        push_results: Option<String>,
        /// Print the equivalent shell script instead of enrolling over SSH
        #[arg(long)]
        print: bool,
        /// Who may sign the recipes the host runs: an allowed signers file (`ssh-keygen
        /// -Y` format), installed on the host with `require_signed = true` in its
        /// pull.toml. Enrolled hosts run only signed commits unless --unsigned
        #[arg(long, value_name = "FILE", required_unless_present = "unsigned")]
        allowed_signers: Option<PathBuf>,
        /// Enroll without signature checks: the host runs, as root, whatever the
        /// repository holds (anyone who can push to it owns the host)
        #[arg(long, conflicts_with = "allowed_signers")]
        unsigned: bool,
    },
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
    /// Run an ad-hoc shell command on matching hosts (with --retry-failed and nothing
    /// else: the last `exec` again, on the hosts that failed there)
    Exec {
        /// Host pattern
        pattern: Option<String>,
        /// The command, after `--`
        #[arg(last = true, value_name = "CMD")]
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
    /// Per host (and per named backup job): the last good snapshot, its age and size,
    /// and the last error; hosts never backed up show as `never`
    Backups {
        /// Host pattern
        #[arg(default_value = "all")]
        pattern: String,
    },
    /// Restore PATH of HOST from a backup snapshot (default: the newest good one),
    /// asking first on a terminal
    Restore {
        /// Inventory host name
        host: String,
        /// [SNAPSHOT] PATH: a snapshot (its name, like 20261125T020000Z, or its path
        /// as `fleet backups` shows it) and the absolute path to restore
        #[arg(num_args = 1..=2, required = true, value_name = "[SNAPSHOT] PATH")]
        args: Vec<String>,
        /// Restore to this path on the host instead of PATH itself
        #[arg(long, value_name = "DIR")]
        to: Option<String>,
        /// The named backup job to restore from (host var `backups`)
        #[arg(long, value_name = "NAME")]
        job: Option<String>,
        /// Do not ask (needed without a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// List the apps of the catalog (catalog/index.json) with their ports, scopes and
    /// dependencies, and the hosts that have each (their `apps` var)
    Catalog {
        /// Take catalog/ from this git repository first, as `fleet configure
        /// --catalog-repo` does (its last good checkout when unreachable)
        #[arg(long, value_name = "URL")]
        catalog_repo: Option<String>,
        /// Branch, tag or commit of that repository
        #[arg(long, value_name = "REV", requires = "catalog_repo")]
        catalog_rev: Option<String>,
    },
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
        /// Only hosts whose last drift check (`fleet drift`) found changes
        #[arg(long)]
        drifted: bool,
    },
    /// Pull mode, run on a host itself (cron, systemd timer): sync the recipe repository
    /// (its last good checkout when the fetch fails), run RECIPE on this host with the
    /// local transport, keep the journal here, optionally push it to a results branch
    #[command(subcommand_negates_reqs = true)]
    Pull {
        #[command(subcommand)]
        enroll: Option<PullCommand>,
        /// The recipe repository (a path, file://, or any URL the git command fetches)
        #[arg(long, value_name = "URL", required = true)]
        repo: Option<String>,
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
        #[arg(required = true)]
        recipe: Option<String>,
        /// The recipe's arguments
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
    /// `fetch`: fetch the results branches pull-mode hosts push (`fleet pull
    /// --push-results P`) from the state repository's remote, for `fleet status` and
    /// `fleet report` (last run, result, last seen; overdue after twice `pull_interval`),
    /// and merge the journals other controllers pushed to `controllers/<name>` into this
    /// one, so `fleet history`, `status --cached` and `report` show the whole fleet
    Results {
        /// fetch
        #[arg(value_enum)]
        action: crate::commands::results::ResultsAction,
        /// The repository the hosts push to [default: the state repository's origin]
        #[arg(long, value_name = "URL")]
        from: Option<String>,
        /// The branches' prefix, as given to `fleet pull --push-results`
        #[arg(long, value_name = "PREFIX", default_value = "results")]
        prefix: String,
        /// The prefix of the controllers' journal branches (`git push origin
        /// HEAD:controllers/NAME` in each controller's state repository)
        #[arg(long, value_name = "PREFIX", default_value = "controllers")]
        controllers: String,
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
    /// A web view of the fleet: status, hosts, runs, recipes and metrics from the
    /// journal, and recipe runs with their output live. Without users it listens on
    /// loopback only; with users (--add-user) every browser signs in and it may listen
    /// on any address. Pull hosts' results are fetched every --fetch-every. POST
    /// /hooks/sync (a git host's webhook) pulls the project (--ff-only), syncs
    /// --catalog-repo and fetches results; it needs the token of the secret
    /// `webhook_token` (Authorization: Bearer or X-Fleet-Token), is off (404) without
    /// one, and every call is journaled as `hooks/sync`
    Serve {
        /// Where to listen: ADDRESS:PORT (port 0 picks a free one); other addresses than
        /// loopback need users
        #[arg(long, value_name = "ADDR:PORT", default_value = crate::commands::serve::DEFAULT_LISTEN)]
        listen: String,
        /// Add a user who signs in (or give one a new password, which ends their
        /// sessions): the password is asked twice on the terminal, or read as one line
        /// from stdin; an argon2id hash goes to the users file (`.fleet/users.toml`, or
        /// `serve_users` in fleet.toml; mode 0600, never in git)
        #[arg(long, value_name = "NAME", conflicts_with = "remove_user")]
        add_user: Option<String>,
        /// The role of --add-user: viewer (sees every page) or operator (also runs
        /// recipes); a new user is a viewer unless given
        #[arg(long, value_name = "ROLE", requires = "add_user", value_parser = ["viewer", "operator"])]
        role: Option<String>,
        /// Remove a user from the users file; their sessions end
        #[arg(long, value_name = "NAME")]
        remove_user: Option<String>,
        /// Mark the session cookie Secure: for a server behind a TLS reverse proxy
        /// (examples/serve/ has nginx and Caddy configurations)
        #[arg(long)]
        secure_cookies: bool,
        #[command(flatten)]
        pull: crate::commands::serve::fetch::PullArgs,
    },
    /// What a recipe (default `configure`) would change on each host, run in check mode
    /// and kept in the journal as the host's drift; exit 0 when nothing drifts, 3 when
    /// a host drifts, 4 when a host was not reached
    Drift {
        /// Host pattern
        #[arg(default_value = "all")]
        pattern: String,
        /// The recipe to check (its `pattern` argument gets PATTERN, the others their defaults)
        #[arg(long, value_name = "NAME", default_value = "configure")]
        recipe: String,
        /// List HOST's pending changes with their diffs from the journal (no connection)
        #[arg(long, value_name = "HOST", conflicts_with = "pattern")]
        show: Option<String>,
    },
    /// Rerun a run of the journal exactly: its recipe as committed then (recipes from a
    /// work tree with uncommitted changes are refused), its arguments, its hosts by name
    Replay {
        /// Run id (or a unique prefix), or `last`
        run: String,
        /// Replay a run made with uncommitted changes, with the recipes of its commit
        #[arg(long)]
        allow_dirty: bool,
    },
    /// Run the project's recipe tests (public functions of tests/*.rhai), each on fresh
    /// throwaway Docker containers over SSH; exit 0 when all pass, 3 when one fails
    Test {
        /// Only the tests whose name (or file name) contains FILTER
        filter: Option<String>,
        /// Leave a failed test's containers running, for `fleet connect`
        #[arg(long)]
        keep: bool,
        /// Build fleet's test image again (debootstrap + docker import), even if it exists
        #[arg(long)]
        build_image: bool,
        /// Run the tests on this existing Docker image instead of fleet's own
        /// [env: FLEET_TEST_IMAGE]
        #[arg(long, value_name = "TAG")]
        image: Option<String>,
    },
    /// SSH access from access.toml: `plan`/`apply` [PATTERN] the keys of each managed
    /// account (fleet's block in authorized_keys), `who` HOST can log in, `where` PERSON
    /// can log in (--live: from the hosts' files, showing keys access.toml does not know)
    Keys {
        /// plan, apply, who or where
        #[arg(value_enum)]
        action: crate::commands::keys::KeysAction,
        /// plan/apply: a host pattern (default: all); who: a host; where: a person or
        /// server of access.toml
        #[arg(value_name = "PATTERN|HOST|NAME")]
        target: Option<String>,
        /// who/where: read what the hosts' authorized_keys files hold
        #[arg(long)]
        live: bool,
    },
    /// `add` NAME --on PATTERN [--sudo] [--key FILE]: give a person an account on the
    /// hosts of PATTERN: access.toml gets the person (with the key), a group user-NAME
    /// and a rule, then each host gets the user (users::ensure) and its keys (as
    /// `fleet keys apply`)
    User {
        /// add
        #[arg(value_enum)]
        action: crate::commands::user::UserAction,
        /// The user's name: the account on the hosts and the person in access.toml
        name: String,
        /// The hosts to create the account on (a host pattern)
        #[arg(long, value_name = "PATTERN")]
        on: String,
        /// Let the user run every command with sudo (else fleet's sudo rule for the user
        /// is left as it is)
        #[arg(long)]
        sudo: bool,
        /// A file holding the person's public key (one line; needed unless access.toml
        /// already has keys for NAME)
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// `start`, `stop`, `shutdown`, `reboot` NAME...: the Proxmox guests behind inventory
    /// hosts (vars proxmox_node, vmid; kind = "ct" for containers); `set` NAME...
    /// --cores N --memory MiB --disk +GiB changes their size (qm set / pct set, disk
    /// resize) and says when a change waits for a restart; `password` NAME shows a
    /// guest's root password (fleet.toml password_secret) on a terminal, after asking
    Guest {
        /// start, stop, shutdown, reboot, set or password
        #[arg(value_enum)]
        action: crate::commands::guest::GuestAction,
        /// Inventory hosts that are Proxmox guests
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// set: CPU cores
        #[arg(long, value_name = "N")]
        cores: Option<i64>,
        /// set: memory in MiB
        #[arg(long, value_name = "MiB")]
        memory: Option<i64>,
        /// set: GiB added to the boot disk (+10; disks only grow)
        #[arg(long, value_name = "+GiB", allow_hyphen_values = true)]
        disk: Option<String>,
    },
    /// `fetch` URL --node NODE: the Proxmox node downloads a cloud image (into the
    /// storage's template/iso) or container template (template/cache), checked against
    /// --sha512 before it is moved into place; one already there is not fetched again
    Image {
        /// fetch
        #[arg(value_enum)]
        action: crate::commands::image::ImageAction,
        /// An http(s) URL ending in the file name (.img, .qcow2, .raw, .iso, .tar.gz, .tar.xz, .tar.zst)
        url: String,
        /// The node (an inventory host)
        #[arg(long, value_name = "NODE")]
        node: String,
        /// A storage with a directory that holds iso (or vztmpl for templates)
        #[arg(long, value_name = "ID", default_value = "local")]
        storage: String,
        /// The file's SHA-512 (128 hex digits); a download that differs is removed
        #[arg(long, value_name = "SUM")]
        sha512: Option<String>,
    },
    /// List every recipe with its summary and where it comes from
    Recipes,
    /// Compile every recipe, stdlib module and catalog role without running anything and
    /// report every problem: syntax errors, unknown functions or argument counts, missing
    /// modules, @arg lines, name clashes, catalog errors (exit 2 when there are any)
    Check,
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
    /// Print the reference of every function a recipe can call, with the stdlib modules'
    Api {
        /// Write `.d.rhai` definition files for editor completion into DIR instead: fleet's
        /// functions, every module `import` finds and the recipes (earlier `.d.rhai` files
        /// in DIR are replaced)
        #[arg(long, value_name = "DIR")]
        definitions: Option<PathBuf>,
    },
    /// Print shell completions
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What a recipe's run is steered by; all but the last four (`recipes_rev`,
/// `require_signed` and its keys) steer `exec` too.
const RECIPE_OPTIONS: &[&str] = &[
    "limit",
    "forks",
    "max_fail",
    "check",
    "timeout",
    "lock_wait",
    "retry_failed",
    "accept_new_host_keys",
    "no_progress",
    "recap",
    "json",
    "recipes_rev",
    "require_signed",
    "allowed_signers",
    "gpg_keyring",
];

/// The options of signed recipes (`--require-signed`, its keys).
const SIGNED_OPTIONS: usize = 3;

/// What a run of hosts that is not a recipe (`exec`) is steered by: all but the last
/// four (`recipes_rev` and the signed recipes' options).
const RUN_OPTIONS: &[&str] = RECIPE_OPTIONS
    .split_at(RECIPE_OPTIONS.len() - 1 - SIGNED_OPTIONS)
    .0;

/// What a run of hosts that retries nothing is steered by (`fleet keys`, `fleet user`).
const HOSTS_RUN_OPTIONS: &[&str] = &[
    "limit",
    "forks",
    "max_fail",
    "check",
    "timeout",
    "lock_wait",
    "accept_new_host_keys",
    "no_progress",
    "recap",
    "json",
];

/// The options of fleet that `command` uses beyond the global ones (-C, -i, -v, -q):
/// its help shows only these, and the others are refused for it.
pub(crate) fn options_of(command: &str, is_recipe: bool) -> &'static [&'static str] {
    if is_recipe {
        return RECIPE_OPTIONS;
    }
    match command {
        "exec" => RUN_OPTIONS,
        "status" => &[
            "limit",
            "forks",
            "timeout",
            "lock_wait",
            "accept_new_host_keys",
            "no_progress",
            "recap",
            "json",
        ],
        "pull" => &[
            "check",
            "timeout",
            "lock_wait",
            "no_progress",
            "recap",
            "json",
            "require_signed",
            "allowed_signers",
            "gpg_keyring",
        ],
        "drift" => &[
            "limit",
            "forks",
            "max_fail",
            "timeout",
            "lock_wait",
            "accept_new_host_keys",
            "no_progress",
            "recap",
            "json",
        ],
        "test" => &["timeout", "lock_wait", "no_progress", "recap", "json"],
        "replay" => &[
            "forks",
            "max_fail",
            "check",
            "timeout",
            "lock_wait",
            "accept_new_host_keys",
            "no_progress",
            "recap",
            "json",
            "require_signed",
            "allowed_signers",
            "gpg_keyring",
        ],
        "restore" => &[
            "check",
            "timeout",
            "lock_wait",
            "accept_new_host_keys",
            "no_progress",
            "recap",
            "json",
        ],
        "connect" => &["accept_new_host_keys"],
        "keys" | "user" => HOSTS_RUN_OPTIONS,
        // The guests or the node are named (no --limit); nodes are the hosts of the run.
        "guest" | "image" => &[
            "forks",
            "max_fail",
            "check",
            "timeout",
            "lock_wait",
            "accept_new_host_keys",
            "no_progress",
            "recap",
            "json",
        ],
        "hosts" | "list" | "show" | "backups" => &["limit", "json"],
        "catalog" => &["json", "require_signed", "allowed_signers", "gpg_keyring"],
        "history" | "recipes" | "api" | "check" => &["json"],
        _ => &[],
    }
}

/// The full command line: built-ins plus a subcommand for every recipe. fleet's own
/// options may come before the command (`fleet --check update`) or after it.
pub(crate) fn command(recipes: &RecipeIndex, retrying: bool) -> clap::Command {
    let mut cmd = Cli::command();
    let required = !retrying && !crate::recipe::args::on_terminal();
    for recipe in recipes.recipes.values() {
        cmd = cmd.subcommand(recipe_command(recipe, required));
    }
    let mut broken: Vec<&str> = recipes.broken_names().collect();
    broken.sort();
    broken.dedup();
    for name in broken {
        let taken = cmd
            .get_subcommands()
            .any(|s| s.get_name() == name || s.get_all_aliases().any(|a| a == name));
        if !taken {
            cmd = cmd.subcommand(broken_command(name));
        }
    }
    let own: Vec<clap::Arg> = cmd.get_arguments().cloned().collect();
    let names: Vec<(String, bool)> = cmd
        .get_subcommands()
        .map(|s| {
            let name = s.get_name().to_string();
            let is_recipe = recipes.get(&name).is_some();
            (name, is_recipe)
        })
        .collect();
    for (name, is_recipe) in names {
        let wanted = options_of(&name, is_recipe);
        let args: Vec<clap::Arg> = own
            .iter()
            .filter(|a| wanted.contains(&a.get_id().as_str()))
            .cloned()
            .collect();
        cmd = cmd.mut_subcommand(&name, |sub| sub.args(args));
    }
    cmd
}

/// fleet's options as given before and after the command: an option after it wins; one
/// before it that the command does not use is a usage error.
pub(crate) fn scoped_options(
    top: &clap::ArgMatches,
    command: &str,
    is_recipe: bool,
    sub: &clap::ArgMatches,
) -> crate::error::Result<GlobalArgs> {
    use clap::parser::ValueSource::CommandLine;
    let mut global = GlobalArgs::from_arg_matches(top)
        .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
    let wanted = options_of(command, is_recipe);
    let before = Cli::command();
    for arg in before.get_arguments().filter(|a| !a.is_global_set()) {
        let id = arg.get_id().as_str();
        if top.value_source(id) == Some(CommandLine) && !wanted.contains(&id) {
            return Err(crate::error::Error::usage_with_help(
                format!(
                    "--{} does not apply to `fleet {command}`",
                    arg.get_long().unwrap_or(id)
                ),
                format!("`fleet {command} --help` lists its options"),
            ));
        }
    }
    let given = |id: &str| wanted.contains(&id) && sub.value_source(id) == Some(CommandLine);
    let text = |id: &str| sub.get_one::<String>(id).cloned();
    if given("limit") {
        global.limit = text("limit");
    }
    if given("forks") {
        global.forks = sub.get_one::<usize>("forks").copied();
    }
    if given("max_fail") {
        global.max_fail = text("max_fail");
    }
    if given("timeout") {
        global.timeout = sub.get_one::<std::time::Duration>("timeout").copied();
    }
    if given("lock_wait") {
        global.lock_wait = sub.get_one::<u64>("lock_wait").copied().unwrap_or(0);
    }
    if given("retry_failed") {
        global.retry_failed = text("retry_failed");
    }
    if given("recipes_rev") {
        global.recipes_rev = text("recipes_rev");
    }
    let path = |id: &str| sub.get_one::<PathBuf>(id).cloned();
    if given("allowed_signers") {
        global.allowed_signers = path("allowed_signers");
    }
    if given("gpg_keyring") {
        global.gpg_keyring = path("gpg_keyring");
    }
    global.require_signed |= given("require_signed");
    global.check |= given("check");
    global.accept_new_host_keys |= given("accept_new_host_keys");
    global.no_progress |= given("no_progress");
    if given("recap")
        && let Some(mode) = sub.get_one::<RecapMode>("recap")
    {
        global.recap = *mode;
    }
    global.json |= given("json");
    Ok(global)
}

/// One recipe's subcommand: its arguments from its signature, its help from its doc
/// comment. `required`: arguments without a default must be given.
pub(crate) fn recipe_command(
    recipe: &crate::recipe::index::Recipe,
    required: bool,
) -> clap::Command {
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
    sub
}

/// The command of a recipe whose file is broken: it takes any arguments, and running it
/// shows the file's error.
fn broken_command(name: &str) -> clap::Command {
    let mut sub = clap::Command::new(name.to_string())
        .about("BROKEN: its recipe file has an error (`fleet check` shows it)")
        .arg(
            clap::Arg::new("args")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true),
        );
    if name.contains('_') {
        sub = sub.visible_alias(name.replace('_', "-"));
    }
    sub
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
