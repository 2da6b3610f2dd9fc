//! `fleet guest start|stop|shutdown|reboot NAME...` and `fleet guest set NAME... --cores
//! N --memory MiB --disk +GiB`: the Proxmox guests behind inventory hosts (host vars
//! `proxmox_node`, `vmid`, and `kind = "ct"` for containers), acted on from their nodes
//! in one run (`ops::proxmox::guest`). Every name and value is checked before the run
//! starts; `--check` prints the `qm`/`pct` commands.

use crate::App;
use crate::error::{Error, Result};
use crate::exec::fanout::fan_out;
use crate::inventory::{Inventory, ResolvedHost};
use crate::ops::proxmox::guest::{self, Action, Kind, Settings};
use crate::ops::remote::Remote;
use crate::session::{RunRequest, finish_run_with, start_run};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum GuestAction {
    /// Start the guests
    Start,
    /// Stop the guests at once
    Stop,
    /// Shut the guests down cleanly (stopped hard after 60 s)
    Shutdown,
    /// Reboot running guests (applies changes that wait for a restart)
    Reboot,
    /// Change cores, memory or grow the boot disk (--cores, --memory, --disk)
    Set,
    /// Show one guest's root password (derived from fleet.toml's password_secret) on a
    /// terminal, after a confirmation
    Password,
}

/// The arguments of `fleet guest`.
#[derive(Debug, Clone)]
pub(crate) struct GuestArgs {
    pub(crate) action: GuestAction,
    pub(crate) names: Vec<String>,
    pub(crate) cores: Option<i64>,
    pub(crate) memory: Option<i64>,
    pub(crate) disk: Option<String>,
}

/// One guest, found from its inventory host.
struct Guest {
    name: String,
    node: String,
    vmid: u64,
    kind: Kind,
}

const SHUTDOWN_TIMEOUT_S: u64 = 60;

fn guest_of(inventory: &Inventory, name: &str) -> Result<Guest> {
    let host = inventory.require(name)?;
    let shown = crate::ops::text::shown(name);
    let help = "fleet provision records them; for another guest set the host vars proxmox_node (the node's inventory name) and vmid";
    let node = match host.vars.get("proxmox_node") {
        Some(serde_json::Value::String(n)) => n.clone(),
        Some(_) => {
            return Err(Error::usage_with_help(
                format!("{shown}: host var proxmox_node must be a string"),
                help,
            ));
        }
        None => {
            return Err(Error::usage_with_help(
                format!("{shown} is not a Proxmox guest: it has no host var proxmox_node"),
                help,
            ));
        }
    };
    inventory.require(&node).map_err(|_| {
        Error::usage_with_help(
            format!(
                "{shown}: its node `{}` (host var proxmox_node) is not in the inventory",
                crate::ops::text::shown(&node)
            ),
            "add the node as a host fleet reaches as root",
        )
    })?;
    let vmid = host
        .vars
        .get("vmid")
        .and_then(|v| v.as_i64())
        .ok_or_else(|| {
            Error::usage_with_help(
                format!("{shown}: host var vmid is missing or not a number"),
                help,
            )
        })
        .and_then(|id| guest::check_vmid(id).map_err(|e| Error::usage(format!("{shown}: {e}"))))?;
    let kind = Kind::from_var(host.vars.get("kind").and_then(|v| v.as_str()))
        .map_err(|e| Error::usage(format!("{shown}: {e}")))?;
    Ok(Guest {
        name: name.to_string(),
        node,
        vmid,
        kind,
    })
}

/// `fleet guest password NAME`: made again from the secret, shown on a terminal only
/// (never to a pipe or file, where it would outlive the screen), not journaled: no run
/// is started.
fn password(app: &App, args: &GuestArgs) -> Result<i32> {
    use std::io::IsTerminal;
    let [name] = args.names.as_slice() else {
        return Err(Error::usage("fleet guest password takes one NAME"));
    };
    if args.cores.is_some() || args.memory.is_some() || args.disk.is_some() {
        return Err(Error::usage(
            "--cores, --memory and --disk are for `fleet guest set`",
        ));
    }
    if !(std::io::stdin().is_terminal()
        && std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal())
    {
        return Err(Error::usage_with_help(
            "fleet guest password prints a password only on a terminal, and this is not one (a pipe, file or cron); nothing was shown",
            "run it in an interactive terminal",
        ));
    }
    let config = &app.project.config;
    let Some(secret_name) = &config.password_secret else {
        return Err(Error::usage_with_help(
            "fleet.toml has no password_secret: guests get no password",
            "set password_secret = \"NAME\" in fleet.toml, NAME a secret of the secrets file",
        ));
    };
    let inventory = super::load_inventory(app)?;
    inventory.require(name)?;
    let file = config
        .secrets_file
        .as_deref()
        .map(|p| crate::ops::ssh::resolve_path(&app.project.root, p));
    let values = match &file {
        Some(path) if path.exists() => {
            Some(crate::ops::secrets::load_file(path).map_err(|e| Error::usage(e.to_string()))?)
        }
        _ => None,
    };
    let secret = crate::ops::secrets::lookup(
        secret_name,
        file.as_deref().zip(values.as_ref()),
        crate::ops::secrets::env_value,
    )
    .map_err(|e| Error::usage(format!("password_secret (fleet.toml): {e}")))?;
    crate::ops::secrets::register(&secret);
    let password =
        crate::ops::passwords::derive(&secret, name).map_err(|e| Error::usage(e.to_string()))?;
    let ui = crate::exec::ui::Ui::new(crate::exec::ui::UiOptions::detect(
        true,
        app.global.verbosity(),
        false,
    ));
    let question = format!(
        "show the root password of {} on this terminal? [y/N] ",
        crate::ops::text::shown(name)
    );
    if !ui.confirm(&crate::ops::terminal::neutralise(&question)) {
        return Err(Error::usage("not confirmed; nothing was shown"));
    }
    // Straight to the terminal: fleet's printers would mask it.
    println!("{password}");
    Ok(0)
}

pub(crate) fn run(app: &App, args: &GuestArgs) -> Result<i32> {
    if args.action == GuestAction::Password {
        return password(app, args);
    }
    let settings = if args.action == GuestAction::Set {
        let s = Settings {
            cores: args.cores,
            memory: args.memory,
            disk: args
                .disk
                .as_deref()
                .map(guest::parse_disk_add)
                .transpose()
                .map_err(|e| Error::usage(e.to_string()))?,
        };
        s.check().map_err(|e| {
            Error::usage_with_help(
                format!("{e}; nothing was sent"),
                "fleet guest set NAME --cores N --memory MiB --disk +GiB",
            )
        })?;
        Some(s)
    } else {
        if args.cores.is_some() || args.memory.is_some() || args.disk.is_some() {
            return Err(Error::usage(
                "--cores, --memory and --disk are for `fleet guest set`",
            ));
        }
        None
    };
    let inventory = super::load_inventory(app)?;
    let guests = args
        .names
        .iter()
        .map(|n| guest_of(&inventory, n))
        .collect::<Result<Vec<_>>>()?;

    let mut cmdline = vec![format!("{:?}", args.action).to_lowercase()];
    cmdline.extend(args.names.iter().cloned());
    for (flag, v) in [
        ("--cores", args.cores.map(|c| c.to_string())),
        ("--memory", args.memory.map(|m| m.to_string())),
        ("--disk", args.disk.clone()),
    ] {
        if let Some(v) = v {
            cmdline.extend([flag.to_string(), v]);
        }
    }
    let request = RunRequest {
        recipe: "guest".into(),
        args: cmdline,
        params: Default::default(),
        limit: None,
        replays: None,
    };
    let run = start_run(app, request)?;
    let mut nodes: Vec<ResolvedHost> = Vec::new();
    for g in &guests {
        if !nodes.iter().any(|n| n.name == g.node) {
            nodes.push(run.inventory.require(&g.node)?);
        }
    }
    fan_out(&run, &nodes, |node| {
        let r = run.remote(node);
        for g in guests.iter().filter(|g| g.node == node.name) {
            match settings {
                None => {
                    let action = match args.action {
                        GuestAction::Start => Action::Start,
                        GuestAction::Stop => Action::Stop,
                        GuestAction::Shutdown => Action::Shutdown {
                            timeout_s: SHUTDOWN_TIMEOUT_S,
                        },
                        _ => Action::Reboot,
                    };
                    guest::power(&r, g.kind, g.vmid, &g.name, action)?;
                }
                Some(s) => {
                    let done = guest::set(&r, g.kind, g.vmid, &s)?;
                    for line in done.describe(
                        &g.name,
                        &format!("fleet guest reboot {}", g.name),
                        r.check_mode(),
                    ) {
                        r.out(&line);
                    }
                }
            }
        }
        Ok(())
    });
    Ok(finish_run_with(app, &run, None, true))
}
