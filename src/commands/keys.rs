//! `fleet keys plan|apply [PATTERN]`, `fleet keys who HOST`, `fleet keys where PERSON`:
//! SSH access from the project's `access.toml` (see `ops::access`). plan and apply are
//! runs over the matching hosts (journaled; apply records every key added and removed
//! with its owner); who and where answer from the data, or with `--live` from what the
//! hosts' `authorized_keys` files hold, showing keys the data does not know.

use crate::App;
use crate::error::{Error, Result};
use crate::exec::fanout::fan_out;
use crate::exec::run::Run;
use crate::inventory::ResolvedHost;
use crate::ops::access::apply::{AccountPlan, fetch_keys};
use crate::ops::access::block::owner_label;
use crate::ops::access::controller::{Prepared, Step, host_grants, host_step, login_user, prepare};
use crate::session::{RunRequest, finish_run_with, start_run};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum KeysAction {
    /// Per host and account: the keys that would be added and removed
    Plan,
    /// Write each managed account's keys (fleet's block in authorized_keys)
    Apply,
    /// Who can log in to HOST, and as which account
    Who,
    /// Where PERSON (or server) can log in
    Where,
}

/// One key an account has or should have, as `who` and `where` list it.
#[derive(Debug, Clone, Serialize)]
struct Row {
    host: String,
    account: String,
    owner: String,
    fingerprint: String,
    comment: String,
    options: Vec<String>,
    /// Data: `access.toml:LINE` of the rule. Live: `fleet` (in fleet's block), `by hand`
    /// (outside it), `missing` (granted but not on the host).
    source: String,
    /// Live only: the data does not know this key.
    drift: bool,
}

fn data_error(e: crate::ops::access::AccessError) -> Error {
    Error::usage_with_help(
        e.to_string(),
        "fix access.toml or keys/*.pub (README, section Access, shows the format)",
    )
}

pub(crate) fn run(
    app: &App,
    action: KeysAction,
    target: Option<String>,
    live: bool,
) -> Result<i32> {
    match action {
        KeysAction::Plan | KeysAction::Apply => {
            if live {
                return Err(Error::usage(
                    "--live is for `fleet keys who` and `fleet keys where`",
                ));
            }
            let pattern = target.unwrap_or_else(|| "all".into());
            plan_or_apply(app, action == KeysAction::Apply, &pattern)
        }
        KeysAction::Who | KeysAction::Where => {
            let Some(name) = target else {
                return Err(Error::usage(match action {
                    KeysAction::Who => "fleet keys who needs a host: fleet keys who HOST",
                    _ => "fleet keys where needs a person or server: fleet keys where NAME",
                }));
            };
            who_or_where(app, action == KeysAction::Who, &name, live)
        }
    }
}

/// Reads the keys of servers that have a `host` over the run's connections.
fn fetch_servers(run: &Run, prepared: &mut Prepared) {
    prepared.fetch_servers(&|name, files| {
        let host = run
            .inventory
            .require(name)
            .map_err(|e| crate::outcome::HostError::new(name, e.to_string()))?;
        fetch_keys(&run.remote(&host), files)
    });
}

fn show_warnings(prepared: &Prepared) {
    for w in &prepared.warnings {
        eprintln!("{w}");
    }
}

#[derive(Serialize)]
struct HostPlan<'a> {
    host: &'a str,
    accounts: &'a [AccountPlan],
}

fn plan_or_apply(app: &App, apply: bool, pattern: &str) -> Result<i32> {
    let word = if apply { "apply" } else { "plan" };
    let request = RunRequest {
        recipe: "keys".into(),
        args: vec![word.into(), pattern.to_string()],
        params: Default::default(),
        limit: app.global.limit.clone(),
        replays: None,
    };
    let run = start_run(app, request)?;
    let mut prepared = prepare(&app.project.root, &run.inventory).map_err(data_error)?;
    show_warnings(&prepared);
    let hosts = run.select(pattern)?;
    fetch_servers(&run, &mut prepared);
    let step = if apply { Step::Apply } else { Step::Plan };
    let results = fan_out(&run, &hosts, |host| {
        let r = run.remote(host);
        Ok(host_step(&r, &prepared, host, &run.options.ssh, step)?)
    });
    let own_json = app.global.json && !apply;
    if own_json {
        let list: Vec<HostPlan> = hosts
            .iter()
            .zip(&results)
            .filter_map(|(h, p)| {
                p.as_ref().map(|p| HostPlan {
                    host: &h.name,
                    accounts: p,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
    }
    Ok(finish_run_with(app, &run, None, !own_json))
}

fn data_rows(prepared: &Prepared, host: &ResolvedHost, login: &str) -> Result<Vec<Row>> {
    let grants = host_grants(prepared, host, login).map_err(|e| Error::usage(e.to_string()))?;
    let mut rows = Vec::new();
    for (account, list) in grants {
        for g in list {
            rows.push(Row {
                host: host.name.clone(),
                account: account.clone(),
                owner: owner_label(&g),
                fingerprint: g.key.fingerprint(),
                comment: crate::ops::text::shown(&g.key.comment),
                options: g.key.options.clone(),
                source: format!("{}:{}", crate::ops::access::ACCESS_FILE, g.rule_line),
                drift: false,
            });
        }
    }
    Ok(rows)
}

/// What the host's files hold, each key with its owner from the data; granted keys
/// that are not there are listed as `missing`.
fn live_rows(
    prepared: &Prepared,
    host: &ResolvedHost,
    plans: &[AccountPlan],
    data: &[Row],
) -> Vec<Row> {
    let mut rows = Vec::new();
    for p in plans {
        let keys = p.current_keys();
        for k in &keys {
            let known = prepared.access.owner_of(&k.key_id);
            rows.push(Row {
                host: host.name.clone(),
                account: p.account.clone(),
                owner: known
                    .map(|o| o.name.clone())
                    .or_else(|| k.owner.clone())
                    .unwrap_or_else(|| "unknown".into()),
                fingerprint: k.fingerprint.clone(),
                comment: k.comment.clone(),
                options: k.options.clone(),
                source: if k.managed { "fleet" } else { "by hand" }.into(),
                drift: known.is_none(),
            });
        }
        for d in data.iter().filter(|d| d.account == p.account) {
            if !keys.iter().any(|k| k.fingerprint == d.fingerprint) {
                rows.push(Row {
                    source: "missing".into(),
                    ..d.clone()
                });
            }
        }
    }
    rows
}

fn who_or_where(app: &App, who: bool, name: &str, live: bool) -> Result<i32> {
    let inventory = super::load_inventory(app)?;
    let mut prepared = prepare(&app.project.root, &inventory).map_err(data_error)?;
    show_warnings(&prepared);
    let ssh = super::ssh_defaults(app);
    if !who && !prepared.access.owners.contains_key(name) {
        return Err(Error::usage_with_help(
            format!(
                "access.toml has no person or server `{}`",
                crate::ops::text::shown(name)
            ),
            "its [people.NAME] and [servers.NAME] tables list them",
        ));
    }
    let hosts: Vec<ResolvedHost> = if who {
        vec![inventory.require(name)?]
    } else {
        inventory
            .host_names()
            .filter_map(|h| inventory.resolve(h))
            .collect()
    };
    let data_of = |prepared: &Prepared| -> Result<Vec<Row>> {
        let mut data = Vec::new();
        for h in &hosts {
            data.extend(data_rows(prepared, h, &login_user(h, &ssh))?);
        }
        Ok(data)
    };
    let mut code = 0;
    let rows = if live || prepared.has_fetches() {
        // A connection is needed: to read the hosts, or servers' keys from theirs.
        let request = RunRequest {
            recipe: "keys".into(),
            args: [if who { "who" } else { "where" }, name]
                .iter()
                .map(|s| s.to_string())
                .chain(live.then(|| "--live".to_string()))
                .collect(),
            params: Default::default(),
            limit: app.global.limit.clone(),
            replays: None,
        };
        let run = start_run(app, request)?;
        fetch_servers(&run, &mut prepared);
        for (owner, why) in &prepared.fetch_errors {
            eprintln!("warning: the keys of server {owner} could not be fetched: {why}");
        }
        let data = data_of(&prepared)?;
        let rows = if live {
            let pattern = if who { name.to_string() } else { "all".into() };
            let selected = run.select(&pattern)?;
            let results = fan_out(&run, &selected, |host| {
                let r = run.remote(host);
                Ok(host_step(
                    &r,
                    &prepared,
                    host,
                    &run.options.ssh,
                    Step::Read,
                )?)
            });
            let mut rows = Vec::new();
            for (h, plans) in selected.iter().zip(&results) {
                let host_data: Vec<Row> =
                    data.iter().filter(|d| d.host == h.name).cloned().collect();
                if let Some(plans) = plans {
                    rows.extend(live_rows(&prepared, h, plans, &host_data));
                }
            }
            rows
        } else {
            data
        };
        code = finish_run_with(app, &run, None, !app.global.json);
        rows
    } else {
        data_of(&prepared)?
    };
    let mut rows = rows;
    if !who {
        let ids: Vec<String> = prepared.access.owners[name]
            .keys
            .iter()
            .map(|k| k.key.fingerprint())
            .collect();
        rows.retain(|r| ids.contains(&r.fingerprint));
    }
    if app.global.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    } else {
        print!("{}", render(&rows, live));
    }
    Ok(code)
}

fn render(rows: &[Row], live: bool) -> String {
    if rows.is_empty() {
        return "no access\n".into();
    }
    let mut table = vec![vec![
        "HOST".to_string(),
        "ACCOUNT".into(),
        "OWNER".into(),
        "KEY".into(),
        "OPTIONS".into(),
        "SOURCE".into(),
    ]];
    for r in rows {
        let owner = if live && r.drift {
            format!("{} (not in access.toml)", r.owner)
        } else {
            r.owner.clone()
        };
        table.push(vec![
            r.host.clone(),
            r.account.clone(),
            owner,
            format!("{} {}", r.fingerprint, r.comment)
                .trim_end()
                .to_string(),
            crate::ops::text::shown(&r.options.join(",")),
            r.source.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            table
                .iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
