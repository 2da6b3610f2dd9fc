//! The `git` module of recipes: `git::head`, `git::commit`, `git::checkout` (Rust's
//! `ops::git::sync`: `sync` is a reserved word in Rhai). Paths are
//! relative to the project root; the work is done by `ops::git`.

use super::glue::module_function;
use super::glue::runtime_error;
use super::values::read_options;
use crate::exec::current;
use crate::ops::git;
use crate::recipe::engine::ScriptCtx;
use rhai::{Array, Dynamic, EvalAltResult, FuncRegistration, Map, Module, NativeCallContext};
use std::path::{Path, PathBuf};

/// A local path from a recipe: relative to the project root (`.` is the root itself).
fn local_path(c: &ScriptCtx, path: &str) -> Result<PathBuf, Box<EvalAltResult>> {
    let rel: PathBuf = Path::new(path)
        .components()
        .filter(|c| *c != std::path::Component::CurDir)
        .collect();
    Ok(c.run()?.options.root.join(rel))
}

/// A repository URL from a recipe: a relative local path is relative to the project
/// root, like every other path; URLs (`file://…`) are left as they are.
fn local_url(c: &ScriptCtx, url: &str) -> Result<String, Box<EvalAltResult>> {
    Ok(git::url_under(&c.run()?.options.root, url))
}

fn head(c: &ScriptCtx, ctx: &NativeCallContext, path: &str) -> Result<Map, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    let dir = local_path(c, path)?;
    let info = git::head_info(&dir)
        .map_err(|e| runtime_error(e.to_string(), pos))?
        .ok_or_else(|| {
            runtime_error(
                format!(
                    "{} is not in a git repository; run `git init` there or pass a path inside one",
                    dir.display()
                ),
                pos,
            )
        })?;
    let mut m = Map::new();
    m.insert("commit".into(), info.commit.into());
    m.insert("dirty".into(), info.dirty.into());
    Ok(m)
}

fn checkout(
    c: &ScriptCtx,
    ctx: &NativeCallContext,
    url: &str,
    dir: &str,
    options: &Map,
) -> Result<Map, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    let o: git::CheckoutOpts = read_options(options, "git::checkout", pos)?;
    let (branch, rev) = (o.branch, o.rev);
    let url = local_url(c, url)?;
    let dir = local_path(c, dir)?;
    // --require-signed: the revision is checked in the source, then pinned.
    let verified = match &c.run()?.options.signed {
        Some(keys) => Some(
            crate::commands::signed::verified_commit(
                &url,
                branch.as_deref().or(rev.as_deref()),
                keys,
            )
            .map_err(|e| runtime_error(e.to_string(), pos))?,
        ),
        None => None,
    };
    let (branch, rev) = match verified {
        Some(commit) => (None, Some(commit)),
        None => (branch, rev),
    };
    let out = git::sync(&url, &dir, branch.as_deref(), rev.as_deref())
        .map_err(|e| runtime_error(e.to_string(), pos))?;
    if let Some(w) = &out.warning {
        c.run()?.ui.event(None, &format!("warning: {w}"));
    }
    let mut m = Map::new();
    m.insert("commit".into(), out.commit.into());
    m.insert("fetched".into(), out.fetched.into());
    m.insert(
        "warning".into(),
        out.warning.map_or(Dynamic::UNIT, Dynamic::from),
    );
    Ok(m)
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    m.set_doc("/// Git repositories: the version a recipe runs from, commits, checkouts of other repositories.");
    register_head(&mut m, ctx);
    register_commit(&mut m, ctx);
    register_checkout(&mut m, ctx);
    m
}

/// `git::head`.
fn register_head(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "head",
        ["path: &str", "Map"],
        "The repository containing `path` (relative to the project; found upward): #{ commit, dirty }. `commit` is the full id checked out (\"\" before the first commit); `dirty` is true when files differ from it (untracked files count, ignored ones don't). An error when `path` is in no repository.",
        move |ctx: NativeCallContext, path: &str| -> Result<Map, Box<EvalAltResult>> {
            head(&c, &ctx, path)
        }
    );
}

/// `git::commit`.
fn register_commit(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "commit",
        ["path: &str", "files: Array", "message: &str", "String"],
        "Commits exactly `files` (paths relative to the repository at `path`, itself relative to the project; a directory that is no repository yet becomes one; a directory means everything in it that is not ignored; a deleted file is removed) with `message`, leaving anything else staged or changed alone. Returns the commit id, or \"\" when those files did not change. In --check it only prints what it would commit.",
        move |ctx: NativeCallContext,
              path: &str,
              files: Array,
              message: &str|
              -> Result<String, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let run = c.run()?;
            let repo = local_path(&c, path)?;
            let files = files
                .into_iter()
                .map(|f| {
                    let t = f.type_name().to_string();
                    f.into_string().map(PathBuf::from).map_err(|_| {
                        runtime_error(
                            format!("git::commit() takes file paths as strings, not {t}"),
                            pos,
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if run.options.check {
                let list = files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                run.ui.out(
                    current::host().as_deref(),
                    &format!("would commit {list} in {}: {message}", repo.display()),
                );
                return Ok(String::new());
            }
            // A directory that is no repository yet becomes one, unless another
            // repository already tracks files in it (`recipes` of the project's own).
            if let Some(outer) =
                git::tracked_by_enclosing(&repo).map_err(|e| runtime_error(e.to_string(), pos))?
            {
                return Err(runtime_error(
                    format!(
                        "{} is part of the git repository {}; commit there, with file paths relative to it",
                        repo.display(),
                        outer.display()
                    ),
                    pos,
                ));
            }
            git::open_or_init(&repo).map_err(|e| runtime_error(e.to_string(), pos))?;
            let id = git::commit_paths(&repo, &files, message)
                .map_err(|e| runtime_error(e.to_string(), pos))?;
            Ok(id.unwrap_or_default())
        }
    );
}

/// `git::checkout`, with and without options.
fn register_checkout(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "checkout",
        ["url: &str", "dir: &str", "options: Map", "Map"],
        "Makes `dir` (relative to the project) fleet's checkout of the repository at `url` (a local path, relative to the project, or a file:// URL): cloned when missing, else fetched and checked out — local edits in `dir` are overwritten. Options: branch (default: the remote's HEAD), rev (a commit, tag or branch to pin). Returns #{ commit, fetched, warning }. When the remote cannot be reached, the last good checkout is used: fetched is false and the warning (also printed) says why; with no earlier checkout it is an error. Under --require-signed (or fleet.toml's require_signed) the revision must be a commit or annotated tag signed by an allowed key: it is checked in the source, then exactly that commit is checked out, else an error. Runs in --check too.",
        move |ctx: NativeCallContext,
              url: &str,
              dir: &str,
              options: Map|
              -> Result<Map, Box<EvalAltResult>> { checkout(&c, &ctx, url, dir, &options) }
    );
    let c = ctx.clone();
    module_function!(
        m,
        "checkout",
        ["url: &str", "dir: &str", "Map"],
        "git::checkout(url, dir, #{}): the remote's default branch.",
        move |ctx: NativeCallContext, url: &str, dir: &str| -> Result<Map, Box<EvalAltResult>> {
            checkout(&c, &ctx, url, dir, &Map::new())
        }
    );
}
