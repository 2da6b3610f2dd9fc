//! `fleet init [DIR]`: a new project with settings, a local inventory, an example
//! recipe, a .gitignore for logs, an example pre-commit hook and CI job that run
//! `fleet check`, and a git repository with a first commit.

use crate::error::{Error, Result};
use std::path::Path;

const FILES: &[(&str, &str)] = &[
    ("fleet.toml", include_str!("init_files/fleet.toml")),
    ("inventory.toml", include_str!("init_files/inventory.toml")),
    (
        "recipes/example.rhai",
        include_str!("init_files/example.rhai"),
    ),
    (".gitignore", include_str!("init_files/gitignore")),
    ("hooks/pre-commit", include_str!("init_files/pre-commit")),
    (
        "ci/fleet-check.yml",
        include_str!("init_files/fleet-check.yml"),
    ),
];

pub(crate) fn run(dir: &Path) -> Result<i32> {
    if dir.join(crate::project::CONFIG_FILE).exists() {
        return Err(Error::usage(format!(
            "{} is already a fleet project (it has a fleet.toml); nothing was changed",
            dir.display()
        )));
    }
    for (name, _) in FILES {
        if dir.join(name).exists() {
            return Err(Error::usage(format!(
                "{} already exists; fleet init only creates new files, so nothing was changed",
                dir.join(name).display()
            )));
        }
    }
    for (name, text) in FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(Error::write(parent))?;
        }
        std::fs::write(&path, text).map_err(Error::write(&path))?;
        if name.starts_with("hooks/") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(Error::write(&path))?;
        }
    }
    let committed = commit_all(dir).map_err(|e| {
        Error::Internal(format!(
            "created the files but could not make the git repository: {e}"
        ))
    })?;
    println!(
        "Created a fleet project in {}{}.\nTry: fleet -C {} hello",
        dir.display(),
        if committed {
            " (git repository with a first commit)"
        } else {
            " (inside an existing git repository)"
        },
        dir.display()
    );
    Ok(0)
}

/// A new repository with one commit, unless DIR is already inside a repository.
fn commit_all(dir: &Path) -> std::result::Result<bool, git2::Error> {
    if git2::Repository::discover(dir).is_ok() {
        return Ok(false);
    }
    let repo = git2::Repository::init(dir)?;
    let mut index = repo.index()?;
    for (name, _) in FILES {
        index.add_path(Path::new(name))?;
    }
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let signature = repo
        .signature()
        .or_else(|_| git2::Signature::now("fleet", "fleet@localhost"))?;
    repo.commit(
        Some("HEAD"),
        &signature,
        &signature,
        "New fleet project",
        &tree,
        &[],
    )?;
    Ok(true)
}
