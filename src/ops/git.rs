//! Git repositories through libgit2 (`git2`): what a run records about the recipe
//! repository, commits to the state repository, reading history back, and fleet's own
//! checkouts of other repositories. Only local paths and `file://` URLs are reachable:
//! fleet is built without git's network transports.

use git2::{
    Commit, DiffFormat, DiffOptions, ErrorCode, FetchOptions, FetchPrune, Index, IndexEntry,
    ObjectType, Oid, Repository, Signature, Sort, StatusOptions, Tree,
};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

crate::error::message_error!(
    /// Why a git repository could not be opened, read, committed to or synced; the
    /// message names the repository and, where there is one, what to do.
    GitError
);

/// What a run records about the repository it ran from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeadInfo {
    /// The full id of the commit checked out; empty before the first commit.
    pub(crate) commit: String,
    /// True when the work tree differs from it (untracked files count, ignored don't).
    pub(crate) dirty: bool,
}

/// The outcome of [`sync`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyncOutcome {
    /// The full id of the commit now checked out.
    pub(crate) commit: String,
    /// False when the fetch failed and the last good checkout was kept.
    pub(crate) fetched: bool,
    /// Why the last good checkout was used, for the user.
    pub(crate) warning: Option<String>,
}

/// The commit checked out in the repository containing `path` (discovered upward) and
/// whether the work tree has changes (untracked files count, ignored ones don't), so a
/// run can say which version of the recipes it used. None when `path` is in no
/// repository; a repository with no commit yet has an empty `commit`.
pub(crate) fn head_info(path: &Path) -> Result<Option<HeadInfo>, GitError> {
    if !path.exists() {
        return Err(format!(
            "cannot look for a git repository at {}: it does not exist",
            path.display()
        )
        .into());
    }
    let Some(repo) = discover(path, path)? else {
        return Ok(None);
    };
    let shown = repo_name(&repo);
    let commit = head_commit(&repo)
        .map_err(|e| format!("cannot read HEAD of {shown}: {}", e.message()))?
        .map(|c| c.id().to_string())
        .unwrap_or_default();
    let dirty = if repo.is_bare() {
        false
    } else {
        let mut opts = StatusOptions::new();
        opts.include_untracked(true)
            .include_ignored(false)
            .recurse_untracked_dirs(false);
        let statuses = repo.statuses(Some(&mut opts)).map_err(|e| {
            format!(
                "cannot read the status of {shown}: {}; check that `git status` works there",
                e.message()
            )
        })?;
        !statuses.is_empty()
    };
    Ok(Some(HeadInfo { commit, dirty }))
}

/// Opens the repository at `path`, creating the directory and a new repository
/// (non-bare) when missing, so the state repository needs no setup.
pub(crate) fn open_or_init(path: &Path) -> Result<Repository, GitError> {
    match Repository::open(path) {
        Ok(r) => return Ok(r),
        Err(e) if e.code() == ErrorCode::NotFound => {}
        Err(e) => {
            return Err(format!(
                "cannot open the git repository at {}: {}",
                path.display(),
                e.message()
            )
            .into());
        }
    }
    std::fs::create_dir_all(path).map_err(|e| {
        format!(
            "cannot create {} for a git repository: {e}; check the permissions of its parent",
            path.display()
        )
    })?;
    Repository::init(path).map_err(|e| {
        GitError(format!(
            "cannot create a git repository at {}: {}",
            path.display(),
            e.message()
        ))
    })
}

/// The repository containing `at` (searched upward), None when there is none; `shown`
/// names the path in the error.
fn discover(at: &Path, shown: &Path) -> Result<Option<Repository>, GitError> {
    match Repository::discover(at) {
        Ok(r) => Ok(Some(r)),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(format!(
            "cannot open the git repository containing {}: {}",
            shown.display(),
            e.message()
        )
        .into()),
    }
}

/// The work tree of a repository that `path` lies inside (without being its root)
/// and that already tracks files under `path`, so that a caller about to make `path`
/// a repository of its own can refuse to split the files of another one.
pub(crate) fn tracked_by_enclosing(path: &Path) -> Result<Option<PathBuf>, GitError> {
    let Ok(real) = path.canonicalize() else {
        return Ok(None);
    };
    let Some(repo) = discover(&real, path)? else {
        return Ok(None);
    };
    let Some(workdir) = repo.workdir().and_then(|w| w.canonicalize().ok()) else {
        return Ok(None);
    };
    let Ok(rel) = real.strip_prefix(&workdir) else {
        return Ok(None);
    };
    if rel.as_os_str().is_empty() {
        return Ok(None);
    }
    let index = repo.index().map_err(|e| {
        format!(
            "cannot read the index of {}: {}",
            workdir.display(),
            e.message()
        )
    })?;
    let prefix = format!("{}/", rel.to_string_lossy());
    let tracked = index.iter().any(|e| e.path.starts_with(prefix.as_bytes()));
    Ok(tracked.then_some(workdir))
}

/// Stages exactly `paths` (relative to the repository root; files or directories, a
/// path that no longer exists is removed) and commits them on HEAD with `message`, so
/// fleet records its own files without sweeping up whatever else is staged or changed.
/// Files in a directory that .gitignore ignores are left out; a file named explicitly
/// is committed even when ignored. Other staged changes stay staged and are not part
/// of the commit. The author is user.name/user.email from git's config, else
/// "fleet" <fleet@HOSTNAME>. Returns the new commit's id, or None when the commit
/// would not change HEAD's tree (or there is no commit yet and nothing to commit).
pub(crate) fn commit_paths(
    repo: &Path,
    paths: &[PathBuf],
    message: &str,
) -> Result<Option<String>, GitError> {
    let r = open(repo)?;
    let shown = repo.display();
    let Some(workdir) = r.workdir().map(Path::to_path_buf) else {
        return Err(format!(
            "cannot commit files in {shown}: it is a bare repository; use a repository with a work tree"
        ).into());
    };
    let rels = paths
        .iter()
        .map(|p| relative(p).map_err(|e| format!("cannot commit {} in {shown}: {e}", p.display())))
        .collect::<Result<Vec<_>, _>>()?;
    let head =
        head_commit(&r).map_err(|e| format!("cannot read HEAD of {shown}: {}", e.message()))?;
    let git = |what: &str, e: git2::Error| format!("cannot {what} in {shown}: {}", e.message());

    // The index of the repository gets the paths' new state (so `git status` is clean
    // afterwards); the commit's tree is HEAD's tree with only those paths replaced.
    let mut index = r.index().map_err(|e| git("read the index", e))?;
    let mut tree_index = Index::new().map_err(|e| git("build a tree", e))?;
    if let Some(h) = &head {
        let tree = h.tree().map_err(|e| git("read HEAD's tree", e))?;
        tree_index
            .read_tree(&tree)
            .map_err(|e| git("read HEAD's tree", e))?;
    }
    for rel in &rels {
        remove_under(&mut index, rel).map_err(|e| git("update the index", e))?;
        remove_under(&mut tree_index, rel).map_err(|e| git("build a tree", e))?;
        let full = workdir.join(rel);
        let mut files = Vec::new();
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() => collect_files(&r, &workdir, rel, &mut files)
                .map_err(|e| format!("cannot commit {} in {shown}: {e}", rel.display()))?,
            Ok(_) => files.push(rel.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot commit {} in {shown}: {e}", rel.display()).into()),
        }
        for file in files {
            index
                .add_path(&file)
                .map_err(|e| git(&format!("stage {}", file.display()), e))?;
            let entry = index.get_path(&file, 0).ok_or_else(|| {
                format!(
                    "cannot stage {} in {shown}: it vanished from the index",
                    file.display()
                )
            })?;
            tree_index.add(&entry).map_err(|e| git("build a tree", e))?;
        }
    }
    index.write().map_err(|e| git("write the index", e))?;
    let tree_id = tree_index
        .write_tree_to(&r)
        .map_err(|e| git("write the tree", e))?;
    match &head {
        Some(h) if h.tree_id() == tree_id => return Ok(None),
        None if tree_index.is_empty() => return Ok(None),
        _ => {}
    }
    let tree = r
        .find_tree(tree_id)
        .map_err(|e| git("read the new tree", e))?;
    let sig = signature(&r).map_err(|e| git("make a commit signature", e))?;
    let parents: Vec<&Commit> = head.iter().collect();
    let id = r
        .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .map_err(|e| git("commit", e))?;
    Ok(Some(id.to_string()))
}

/// Puts the index entries of `paths` (relative to `repo`, files or folders) back to
/// HEAD's, like `git reset -- PATHS`: what a failed [`commit_paths`] staged is no longer
/// staged, so a later `git commit` in the repository does not pick it up.
pub(crate) fn unstage(repo: &Path, paths: &[PathBuf]) -> Result<(), GitError> {
    let r = open(repo)?;
    let shown = repo.display();
    let git = |what: &str, e: git2::Error| format!("cannot {what} in {shown}: {}", e.message());
    let head = head_commit(&r).map_err(|e| git("read HEAD", e))?;
    let mut specs = Vec::new();
    for p in paths {
        let rel = relative(p).map_err(|e| format!("cannot unstage {}: {e}", p.display()))?;
        specs.push(rel.to_string_lossy().replace('\\', "/"));
    }
    if specs.is_empty() {
        return Ok(());
    }
    r.reset_default(head.as_ref().map(|c| c.as_object()), specs)
        .map_err(|e| git("unstage", e).into())
}

/// How git sees a file that should never be committed (a secrets file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exposure {
    /// In the index of the repository at `repo` (its work tree): committed, or about to be.
    Tracked { repo: PathBuf },
    /// Inside the work tree at `repo`, not tracked, not ignored: `git add .` takes it.
    NotIgnored { repo: PathBuf },
}

/// Whether the git repository around `file` tracks it or would pick it up; None when
/// no repository holds it, it is ignored, or it does not exist.
pub(crate) fn exposure(file: &Path) -> Option<Exposure> {
    let real = file.canonicalize().ok()?;
    let repo = Repository::discover(real.parent()?).ok()?;
    let workdir = repo.workdir()?.canonicalize().ok()?;
    let rel = real.strip_prefix(&workdir).ok()?;
    if repo.index().ok()?.get_path(rel, 0).is_some() {
        return Some(Exposure::Tracked { repo: workdir });
    }
    match repo.is_path_ignored(rel) {
        Ok(false) => Some(Exposure::NotIgnored { repo: workdir }),
        _ => None,
    }
}

/// Full commit id of a revision (`HEAD`, a tag, a branch, a short id), to record the
/// exact version a name stood for.
pub(crate) fn resolve_rev(repo: &Path, rev: &str) -> Result<String, GitError> {
    let r = open(repo)?;
    Ok(commit_at(&r, repo, rev)?.id().to_string())
}

/// The content of `file` at `rev`, None when it is not there, to read a recorded
/// version without checking it out.
pub(crate) fn read_file_at(
    repo: &Path,
    rev: &str,
    file: &Path,
) -> Result<Option<Vec<u8>>, GitError> {
    let r = open(repo)?;
    let rel = relative(file)
        .map_err(|e| format!("cannot read {} in {}: {e}", file.display(), repo.display()))?;
    let tree = tree_at(&r, repo, rev)?;
    let entry = match tree.get_path(&rel) {
        Ok(e) => e,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot read {} at {rev} in {}: {}",
                rel.display(),
                repo.display(),
                e.message()
            )
            .into());
        }
    };
    if entry.kind() != Some(ObjectType::Blob) {
        return Err(format!(
            "cannot read {} at {rev} in {}: it is a directory, not a file; use list_dir_at",
            rel.display(),
            repo.display()
        )
        .into());
    }
    let blob = r.find_blob(entry.id()).map_err(|e| {
        format!(
            "cannot read {} at {rev} in {}: {}",
            rel.display(),
            repo.display(),
            e.message()
        )
    })?;
    Ok(Some(blob.content().to_vec()))
}

/// The files directly in `dir` at `rev` (not recursive), as (file name, content),
/// sorted by name; empty when `dir` is not there. Reads a recorded set of files (a
/// host's configuration) without checking it out.
pub(crate) fn list_dir_at(
    repo: &Path,
    rev: &str,
    dir: &Path,
) -> Result<Vec<(String, Vec<u8>)>, GitError> {
    let r = open(repo)?;
    let shown = repo.display();
    let rel =
        relative(dir).map_err(|e| format!("cannot list {} in {shown}: {e}", dir.display()))?;
    let root = tree_at(&r, repo, rev)?;
    let tree = if rel.as_os_str().is_empty() {
        root
    } else {
        let entry = match root.get_path(&rel) {
            Ok(e) => e,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(format!(
                    "cannot list {} at {rev} in {shown}: {}",
                    rel.display(),
                    e.message()
                )
                .into());
            }
        };
        if entry.kind() != Some(ObjectType::Tree) {
            return Err(format!(
                "cannot list {} at {rev} in {shown}: it is a file, not a directory; use read_file_at",
                rel.display()
            ).into());
        }
        r.find_tree(entry.id()).map_err(|e| {
            format!(
                "cannot list {} at {rev} in {shown}: {}",
                rel.display(),
                e.message()
            )
        })?
    };
    let mut files = Vec::new();
    for entry in tree.iter() {
        if entry.kind() != Some(ObjectType::Blob) {
            continue;
        }
        let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
        let blob = r
            .find_blob(entry.id())
            .map_err(|e| format!("cannot read {name} at {rev} in {shown}: {}", e.message()))?;
        files.push((name, blob.content().to_vec()));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// Commits (newest first) whose change touches anything under `prefix` (a directory or
/// a file; empty: the whole tree), as (id, summary, unix time): the history of one
/// host's records. A merge is listed only when it differs there from every parent.
pub(crate) fn commits_touching(
    repo: &Path,
    prefix: &Path,
) -> Result<Vec<(String, String, i64)>, GitError> {
    let r = open(repo)?;
    let shown = repo.display();
    let rel = relative(prefix).map_err(|e| {
        format!(
            "cannot read the history of {} in {shown}: {e}",
            prefix.display()
        )
    })?;
    let git = |e: git2::Error| format!("cannot read the history of {shown}: {}", e.message());
    let Some(head) = head_commit(&r).map_err(git)? else {
        return Ok(Vec::new());
    };
    let mut walk = r.revwalk().map_err(git)?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)
        .map_err(git)?;
    walk.push(head.id()).map_err(git)?;
    let at = |c: &Commit| -> Result<Option<(Oid, i32)>, GitError> {
        let tree = c.tree().map_err(git)?;
        if rel.as_os_str().is_empty() {
            return Ok(Some((tree.id(), 0o040000)));
        }
        match tree.get_path(&rel) {
            Ok(e) => Ok(Some((e.id(), e.filemode()))),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(git(e).into()),
        }
    };
    let mut out = Vec::new();
    for id in walk {
        let c = r.find_commit(id.map_err(git)?).map_err(git)?;
        let mine = at(&c)?;
        let touched = if c.parent_count() == 0 {
            mine.is_some()
        } else {
            let mut differs_from_all = true;
            for p in c.parents() {
                if at(&p)? == mine {
                    differs_from_all = false;
                    break;
                }
            }
            differs_from_all
        };
        if touched {
            out.push((
                c.id().to_string(),
                c.summary_bytes()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .unwrap_or_default(),
                c.time().seconds(),
            ));
        }
    }
    Ok(out)
}

/// Unified diff (git's patch format, with file headers) of everything under `prefix`
/// (empty: the whole tree) between two commits: what changed on a host between runs.
pub(crate) fn diff_between(
    repo: &Path,
    from: &str,
    to: &str,
    prefix: &Path,
) -> Result<String, GitError> {
    let r = open(repo)?;
    let shown = repo.display();
    let rel = relative(prefix)
        .map_err(|e| format!("cannot diff {} in {shown}: {e}", prefix.display()))?;
    let old = tree_at(&r, repo, from)?;
    let new = tree_at(&r, repo, to)?;
    let mut opts = DiffOptions::new();
    if !rel.as_os_str().is_empty() {
        opts.pathspec(&rel).disable_pathspec_match(true);
    }
    let git = |e: git2::Error| format!("cannot diff {from}..{to} in {shown}: {}", e.message());
    let diff = r
        .diff_tree_to_tree(Some(&old), Some(&new), Some(&mut opts))
        .map_err(git)?;
    let mut out = Vec::new();
    diff.print(DiffFormat::Patch, |_, _, line| {
        if matches!(line.origin(), '+' | '-' | ' ') {
            out.push(line.origin() as u8);
        }
        out.extend_from_slice(line.content());
        true
    })
    .map_err(git)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// One sync at a time in this process: two hosts' closures syncing the same checkout
/// must not interleave their fetches and checkouts.
static SYNC_LOCK: Mutex<()> = Mutex::new(());

/// Makes `dir` fleet's checkout of `url` (a local path or `file://` URL) at `branch`
/// (default: the remote's HEAD) or at the pinned revision `rev` (a commit id, tag or
/// branch, which must be reachable from the remote's branches or tags), so recipes can
/// use another repository's files at a known version. Clones when `dir` is missing,
/// else fetches (deleted remote branches are pruned) and checks out the commit with
/// a detached HEAD. The checkout is fleet's: local edits and untracked files in `dir`
/// are overwritten or removed (ignored files are kept). When the fetch fails (remote
/// gone, unreachable) and a previous checkout exists, it is kept as it is: `fetched`
/// is false and `warning` says why. With no previous checkout that is an error.
pub(crate) fn sync(
    url: &str,
    dir: &Path,
    branch: Option<&str>,
    rev: Option<&str>,
) -> Result<SyncOutcome, GitError> {
    let _guard = SYNC_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let shown = dir.display();
    if branch.is_some() && rev.is_some() {
        return Err(format!(
            "cannot sync {shown} from {url}: give a branch or a pinned rev, not both"
        )
        .into());
    }
    let local = local_source(url).ok_or_else(|| {
        format!(
            "cannot sync {shown} from {url}: fleet reaches only local repositories (a path or a file:// URL); clone it somewhere on this machine and sync from there"
        )
    })?;
    let existed = dir.exists();
    let mut created = false;
    let repo = match Repository::open(dir) {
        Ok(r) => r,
        Err(e) if e.code() == ErrorCode::NotFound => {
            if existed && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
                return Err(format!(
                    "cannot sync {shown} from {url}: the directory exists and is not a git checkout; remove it or choose another directory"
                ).into());
            }
            created = true;
            open_or_init(dir)?
        }
        Err(e) => {
            return Err(format!(
                "cannot open the checkout {shown}: {}; remove it to clone it again",
                e.message()
            )
            .into());
        }
    };
    let previous = head_commit(&repo).ok().flatten().map(|c| c.id());
    let result = if local.exists() {
        fetch_and_checkout(&repo, url, branch, rev)
    } else {
        Err(SyncError::Fetch(format!(
            "cannot fetch {url}: {} does not exist; check the path",
            local.display()
        )))
    };
    match result {
        Ok(commit) => Ok(SyncOutcome {
            commit,
            fetched: true,
            warning: None,
        }),
        Err(SyncError::Fetch(e)) => match previous {
            Some(id) => Ok(SyncOutcome {
                commit: id.to_string(),
                fetched: false,
                warning: Some(format!("using the last good checkout at {id}: {e}")),
            }),
            None => {
                // Leave nothing half-made behind for the next attempt to trip on.
                drop(repo);
                if !existed {
                    let _ = std::fs::remove_dir_all(dir);
                } else if created {
                    let _ = std::fs::remove_dir_all(dir.join(".git"));
                }
                Err(format!("cannot clone into {shown}: {e}").into())
            }
        },
        Err(SyncError::Other(e)) => Err(format!("cannot sync {shown}: {e}").into()),
    }
}

/// A repository URL as an operator gives it: a relative local path is relative to the
/// project `root`, like every other path; URLs and absolute paths are left as they are.
pub(crate) fn url_under(root: &Path, url: &str) -> String {
    let scp_like = url
        .find(':')
        .is_some_and(|colon| !url[..colon].contains('/'));
    if url.contains("://") || scp_like || Path::new(url).is_absolute() {
        return url.to_string();
    }
    let rel: PathBuf = Path::new(url)
        .components()
        .filter(|c| *c != std::path::Component::CurDir)
        .collect();
    root.join(rel).to_string_lossy().into_owned()
}

/// The path of a local repository URL (a path or `file://`); None for other URLs,
/// which this build of libgit2 cannot reach.
pub(crate) fn local_source(url: &str) -> Option<PathBuf> {
    if let Some(path) = url.strip_prefix("file://") {
        return Some(PathBuf::from(path));
    }
    let scp_like = url
        .find(':')
        .is_some_and(|colon| !url[..colon].contains('/'));
    (!url.contains("://") && !scp_like).then(|| PathBuf::from(url))
}

enum SyncError {
    /// The remote could not be reached or read: a previous checkout may stand in.
    Fetch(String),
    /// Anything else (unknown branch or rev, a broken checkout): always an error.
    Other(String),
}

fn fetch_and_checkout(
    repo: &Repository,
    url: &str,
    branch: Option<&str>,
    rev: Option<&str>,
) -> Result<String, SyncError> {
    let other =
        |what: &str, e: git2::Error| SyncError::Other(format!("cannot {what}: {}", e.message()));
    let mut remote = match repo.find_remote("origin") {
        Ok(r) if r.url().ok() == Some(url) => r,
        Ok(_) => {
            repo.remote_set_url("origin", url)
                .map_err(|e| other("set the remote's URL", e))?;
            repo.find_remote("origin")
                .map_err(|e| other("read the remote", e))?
        }
        Err(_) => repo
            .remote("origin", url)
            .map_err(|e| other("add the remote", e))?,
    };
    let mut opts = FetchOptions::new();
    opts.prune(FetchPrune::On)
        .download_tags(git2::AutotagOption::None);
    remote
        .fetch(
            &[
                "+refs/heads/*:refs/remotes/origin/*",
                "+refs/tags/*:refs/tags/*",
                "+HEAD:refs/remotes/origin/HEAD",
            ],
            Some(&mut opts),
            Some("fleet sync"),
        )
        .map_err(|e| {
            SyncError::Fetch(format!(
                "cannot fetch {url}: {}; check that the repository exists and is readable",
                e.message()
            ))
        })?;
    let target = match (branch, rev) {
        (Some(b), _) => repo
            .find_reference(&format!("refs/remotes/origin/{b}"))
            .and_then(|r| r.peel_to_commit())
            .map_err(|_| SyncError::Other(format!("{url} has no branch `{b}`; check the branch name")))?,
        (None, Some(v)) => ["refs/remotes/origin/", "refs/tags/"]
            .iter()
            .find_map(|p| repo.find_reference(&format!("{p}{v}")).ok())
            .and_then(|r| r.peel_to_commit().ok())
            .or_else(|| repo.revparse_single(v).and_then(|o| o.peel_to_commit()).ok())
            .ok_or_else(|| {
                SyncError::Other(format!(
                    "{url} has no commit, tag or branch `{v}` (a pinned commit must be on one of its branches or tags); check the rev"
                ))
            })?,
        (None, None) => repo
            .find_reference("refs/remotes/origin/HEAD")
            .and_then(|r| r.peel_to_commit())
            .map_err(|_| SyncError::Other(format!("{url} has no commit yet; push one first")))?,
    };
    let mut checkout = git2::build::CheckoutBuilder::new();
    checkout.force().remove_untracked(true);
    repo.checkout_tree(target.as_object(), Some(&mut checkout))
        .map_err(|e| other(&format!("check out {}", target.id()), e))?;
    repo.set_head_detached(target.id())
        .map_err(|e| other(&format!("check out {}", target.id()), e))?;
    Ok(target.id().to_string())
}

fn open(path: &Path) -> Result<Repository, GitError> {
    Repository::open(path).map_err(|e| {
        GitError(if e.code() == ErrorCode::NotFound {
            format!(
                "{} is not a git repository; create one there with `git init`",
                path.display()
            )
        } else {
            format!(
                "cannot open the git repository at {}: {}",
                path.display(),
                e.message()
            )
        })
    })
}

/// How errors name a repository: its work tree, else its git directory.
fn repo_name(repo: &Repository) -> String {
    repo.workdir()
        .unwrap_or_else(|| repo.path())
        .display()
        .to_string()
}

/// The commit HEAD points at; None before the first commit.
fn head_commit(repo: &Repository) -> Result<Option<Commit<'_>>, git2::Error> {
    match repo.head() {
        Ok(h) => h.peel_to_commit().map(Some),
        Err(e) if matches!(e.code(), ErrorCode::UnbornBranch | ErrorCode::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

fn commit_at<'r>(r: &'r Repository, repo: &Path, rev: &str) -> Result<Commit<'r>, GitError> {
    r.revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| {
            GitError(format!(
                "cannot find the commit `{rev}` in {}: {}; give a branch, a tag or a commit id",
                repo.display(),
                e.message()
            ))
        })
}

fn tree_at<'r>(r: &'r Repository, repo: &Path, rev: &str) -> Result<Tree<'r>, GitError> {
    commit_at(r, repo, rev)?.tree().map_err(|e| {
        GitError(format!(
            "cannot read the files of `{rev}` in {}: {}",
            repo.display(),
            e.message()
        ))
    })
}

/// A path inside the repository, without `.` components; refuses absolute paths and
/// `..`, which would reach outside it. Empty means the whole tree.
fn relative(path: &Path) -> Result<PathBuf, GitError> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => {
                return Err(
                    "the path must be relative to the repository root, without `..`".into(),
                );
            }
        }
    }
    Ok(out)
}

/// Removes `rel` and everything under it from an index (everything when it is empty).
fn remove_under(index: &mut Index, rel: &Path) -> Result<(), git2::Error> {
    let prefix = rel.to_string_lossy().replace('\\', "/");
    let doomed: Vec<Vec<u8>> = index
        .iter()
        .map(|e: IndexEntry| e.path)
        .filter(|p| {
            prefix.is_empty()
                || p.as_slice() == prefix.as_bytes()
                || (p.starts_with(prefix.as_bytes()) && p.get(prefix.len()) == Some(&b'/'))
        })
        .collect();
    for p in doomed {
        index.remove_path(Path::new(&*String::from_utf8_lossy(&p)))?;
    }
    Ok(())
}

/// Files under the directory `rel` of the work tree, leaving out ignored ones, `.git`
/// and nested repositories.
fn collect_files(
    repo: &Repository,
    workdir: &Path,
    rel: &Path,
    out: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let dir = workdir.join(rel);
    if !rel.as_os_str().is_empty() && dir.join(".git").exists() {
        return Ok(());
    }
    let mut entries = std::fs::read_dir(&dir)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_name() == ".git" {
            continue;
        }
        let child = rel.join(entry.file_name());
        if repo.is_path_ignored(&child).unwrap_or(false) {
            continue;
        }
        if entry.file_type()?.is_dir() {
            collect_files(repo, workdir, &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}

/// user.name/user.email from git's config, else "fleet" <fleet@HOSTNAME>.
fn signature(repo: &Repository) -> Result<Signature<'static>, git2::Error> {
    repo.signature()
        .or_else(|_| Signature::now("fleet", &format!("fleet@{}", hostname())))
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates or fails.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// The options map of `git::checkout`: a branch to follow or a revision to pin.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckoutOpts {
    pub(crate) branch: Option<String>,
    pub(crate) rev: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    /// A repository in a temp dir with user.name/email set locally.
    fn repo() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("repo");
        let r = open_or_init(&dir).unwrap();
        let mut cfg = r.config().unwrap();
        cfg.set_str("user.name", "Tester").unwrap();
        cfg.set_str("user.email", "tester@example.org").unwrap();
        (t, dir)
    }

    fn commit_files(dir: &Path, files: &[(&str, &str)], message: &str) -> String {
        for (f, text) in files {
            write(dir, f, text);
        }
        let list: Vec<&str> = files.iter().map(|(f, _)| *f).collect();
        commit_paths(dir, &paths(&list), message).unwrap().unwrap()
    }

    fn tree_files(dir: &Path, rev: &str) -> Vec<String> {
        let r = Repository::open(dir).unwrap();
        let tree = r.revparse_single(rev).unwrap().peel_to_tree().unwrap();
        let mut out = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |root, e| {
            if e.kind() == Some(ObjectType::Blob) {
                out.push(format!("{root}{}", e.name().unwrap()));
            }
            git2::TreeWalkResult::Ok
        })
        .unwrap();
        out
    }

    #[test]
    fn head_info_clean_dirty_and_none() {
        let (t, dir) = repo();
        let fresh = head_info(&dir).unwrap().unwrap();
        assert_eq!(
            fresh,
            HeadInfo {
                commit: String::new(),
                dirty: false
            }
        );
        write(&dir, "a.txt", "a");
        assert_eq!(head_info(&dir).unwrap().unwrap().commit, "");
        assert!(head_info(&dir).unwrap().unwrap().dirty, "untracked counts");

        let id = commit_files(&dir, &[("a.txt", "a"), (".gitignore", "*.log\n")], "first");
        write(&dir, "sub/deep/x.rhai", "");
        fs::remove_file(dir.join("sub/deep/x.rhai")).unwrap();
        let clean = head_info(&dir.join("sub/deep")).unwrap().unwrap();
        assert_eq!(
            clean,
            HeadInfo {
                commit: id.clone(),
                dirty: false
            }
        );
        write(&dir, "debug.log", "ignored");
        assert!(
            !head_info(&dir).unwrap().unwrap().dirty,
            "ignored files don't count"
        );
        write(&dir, "a.txt", "changed");
        assert!(head_info(&dir).unwrap().unwrap().dirty);

        let outside = t.path().join("plain");
        fs::create_dir(&outside).unwrap();
        assert_eq!(head_info(&outside).unwrap(), None);
        assert!(
            head_info(&t.path().join("missing"))
                .unwrap_err()
                .0
                .contains("does not exist")
        );
    }

    #[test]
    fn open_or_init_creates_and_reopens() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("state/repo");
        let r = open_or_init(&dir).unwrap();
        assert!(!r.is_bare());
        assert!(dir.join(".git").is_dir());
        drop(r);
        write(&dir, "keep.txt", "x");
        open_or_init(&dir).unwrap();
        assert!(dir.join("keep.txt").exists());
    }

    #[test]
    fn tracked_by_enclosing_finds_files_of_an_outer_repository() {
        let (t, dir) = repo();
        commit_files(&dir, &[("recipes/a.rhai", "")], "one");
        let root = dir.canonicalize().unwrap();
        assert_eq!(
            tracked_by_enclosing(&dir.join("recipes")).unwrap(),
            Some(root)
        );
        fs::create_dir(dir.join("state")).unwrap();
        assert_eq!(tracked_by_enclosing(&dir.join("state")).unwrap(), None);
        assert_eq!(tracked_by_enclosing(&dir.join("missing")).unwrap(), None);
        assert_eq!(tracked_by_enclosing(&dir).unwrap(), None);
        assert_eq!(tracked_by_enclosing(t.path()).unwrap(), None);
    }

    #[test]
    fn commit_paths_commits_only_the_given_paths() {
        let (_t, dir) = repo();
        write(&dir, "other.txt", "not mine");
        let first = commit_files(&dir, &[("hosts/web-1/a.conf", "a1")], "web-1");
        assert_eq!(tree_files(&dir, "HEAD"), ["hosts/web-1/a.conf"]);
        let r = Repository::open(&dir).unwrap();
        let c = r.find_commit(Oid::from_str(&first).unwrap()).unwrap();
        assert_eq!(c.parent_count(), 0);
        assert_eq!(c.author().name().unwrap(), "Tester");
        assert_eq!(c.message().unwrap(), "web-1");

        // Something else staged by hand stays out of fleet's commit.
        write(&dir, "staged.txt", "staged");
        let mut idx = r.index().unwrap();
        idx.add_path(Path::new("staged.txt")).unwrap();
        idx.write().unwrap();
        write(&dir, "hosts/web-1/b.conf", "b1");
        let second = commit_paths(&dir, &paths(&["hosts/web-1"]), "dir")
            .unwrap()
            .unwrap();
        assert_eq!(
            tree_files(&dir, "HEAD"),
            ["hosts/web-1/a.conf", "hosts/web-1/b.conf"]
        );
        let c = r.find_commit(Oid::from_str(&second).unwrap()).unwrap();
        assert_eq!(c.parent_id(0).unwrap().to_string(), first);
        let mut idx = r.index().unwrap();
        idx.read(true).unwrap();
        assert!(
            idx.get_path(Path::new("staged.txt"), 0).is_some(),
            "still staged"
        );

        assert_eq!(
            commit_paths(&dir, &paths(&["hosts/web-1"]), "again").unwrap(),
            None
        );
        assert_eq!(
            commit_paths(&dir, &paths(&["hosts/web-1/a.conf"]), "again").unwrap(),
            None
        );
        assert_eq!(
            commit_paths(&dir, &paths(&["nothing/here"]), "again").unwrap(),
            None
        );
    }

    #[test]
    fn commit_paths_removes_deleted_files_and_skips_ignored_ones() {
        let (_t, dir) = repo();
        commit_files(
            &dir,
            &[
                ("h/a", "a"),
                ("h/b", "b"),
                ("h/sub/c", "c"),
                ("keep", "k"),
                (".gitignore", "*.tmp\n"),
            ],
            "all",
        );
        fs::remove_file(dir.join("h/a")).unwrap();
        let id = commit_paths(&dir, &paths(&["h/a"]), "rm a").unwrap();
        assert!(id.is_some());
        assert_eq!(
            tree_files(&dir, "HEAD"),
            [".gitignore", "h/b", "h/sub/c", "keep"]
        );

        fs::remove_dir_all(dir.join("h/sub")).unwrap();
        write(&dir, "h/new", "n");
        write(&dir, "h/junk.tmp", "ignored");
        commit_paths(&dir, &paths(&["./h"]), "sync h")
            .unwrap()
            .unwrap();
        assert_eq!(
            tree_files(&dir, "HEAD"),
            [".gitignore", "h/b", "h/new", "keep"]
        );
        assert!(
            !head_info(&dir).unwrap().unwrap().dirty,
            "index matches the commit"
        );

        fs::remove_dir_all(dir.join("h")).unwrap();
        commit_paths(&dir, &paths(&["h"]), "rm h").unwrap().unwrap();
        assert_eq!(tree_files(&dir, "HEAD"), [".gitignore", "keep"]);

        let err = commit_paths(&dir, &paths(&["../x"]), "bad").unwrap_err().0;
        assert!(err.contains("relative to the repository root"), "{err}");
        let err = commit_paths(&dir.join("nope"), &paths(&["x"]), "bad")
            .unwrap_err()
            .0;
        assert!(err.contains("is not a git repository"), "{err}");
    }

    #[test]
    fn resolve_rev_names_tags_branches_and_short_ids() {
        let (_t, dir) = repo();
        let first = commit_files(&dir, &[("f", "1")], "one");
        let r = Repository::open(&dir).unwrap();
        r.tag_lightweight("v1", &r.revparse_single("HEAD").unwrap(), false)
            .unwrap();
        let sig = r.signature().unwrap();
        r.tag(
            "v1-annotated",
            &r.revparse_single("HEAD").unwrap(),
            &sig,
            "v1",
            false,
        )
        .unwrap();
        let second = commit_files(&dir, &[("f", "2")], "two");
        assert_eq!(resolve_rev(&dir, "v1").unwrap(), first);
        assert_eq!(resolve_rev(&dir, "v1-annotated").unwrap(), first);
        assert_eq!(resolve_rev(&dir, "HEAD").unwrap(), second);
        assert_eq!(resolve_rev(&dir, &first[..8]).unwrap(), first);
        assert_eq!(resolve_rev(&dir, "HEAD~1").unwrap(), first);
        let err = resolve_rev(&dir, "v9").unwrap_err().0;
        assert!(
            err.contains("`v9`") && err.contains(&dir.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn reading_at_an_old_rev_sees_old_content() {
        let (_t, dir) = repo();
        let old = commit_files(
            &dir,
            &[("h/a", "a1"), ("h/b", "b1"), ("h/sub/x", "x")],
            "one",
        );
        write(&dir, "h/a", "a2");
        fs::remove_file(dir.join("h/b")).unwrap();
        write(&dir, "h/c", "c2");
        commit_paths(&dir, &paths(&["h"]), "two").unwrap().unwrap();

        let read = |rev: &str, f: &str| read_file_at(&dir, rev, Path::new(f)).unwrap();
        assert_eq!(read(&old, "h/a"), Some(b"a1".to_vec()));
        assert_eq!(read("HEAD", "h/a"), Some(b"a2".to_vec()));
        assert_eq!(read("HEAD", "h/b"), None);
        assert_eq!(read(&old, "h/c"), None);
        assert_eq!(read(&old, "missing/dir/file"), None);
        assert!(
            read_file_at(&dir, "HEAD", Path::new("h"))
                .unwrap_err()
                .0
                .contains("directory")
        );

        let names = |rev: &str, d: &str| -> Vec<(String, String)> {
            list_dir_at(&dir, rev, Path::new(d))
                .unwrap()
                .into_iter()
                .map(|(n, c)| (n, String::from_utf8(c).unwrap()))
                .collect()
        };
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(names(&old, "h"), [pair("a", "a1"), pair("b", "b1")]);
        assert_eq!(names("HEAD", "h"), [pair("a", "a2"), pair("c", "c2")]);
        assert_eq!(names("HEAD", "h/sub"), [pair("x", "x")]);
        assert!(names("HEAD", "nowhere").is_empty());
        assert!(
            names(&old, "").is_empty(),
            "the root holds only a directory"
        );
    }

    #[test]
    fn history_and_diffs_of_a_prefix() {
        let (_t, dir) = repo();
        let one = commit_files(&dir, &[("web/a", "1\n"), ("db/a", "1\n")], "one");
        let two = commit_files(&dir, &[("db/a", "2\n")], "two");
        let three = commit_files(&dir, &[("web/a", "3\n"), ("web/b", "new\n")], "three");

        let ids = |p: &str| -> Vec<String> {
            commits_touching(&dir, Path::new(p))
                .unwrap()
                .into_iter()
                .map(|(id, _, _)| id)
                .collect()
        };
        assert_eq!(ids("web"), [three.clone(), one.clone()]);
        assert_eq!(ids("db"), [two.clone(), one.clone()]);
        assert_eq!(ids("db/a"), [two.clone(), one.clone()]);
        assert_eq!(ids(""), [three.clone(), two.clone(), one.clone()]);
        assert!(ids("nothing").is_empty());
        let all = commits_touching(&dir, Path::new("web")).unwrap();
        assert_eq!(all[0].1, "three");
        assert!(all[0].2 > 1_600_000_000);

        let d = diff_between(&dir, &one, &three, Path::new("web")).unwrap();
        assert!(d.contains("diff --git a/web/a b/web/a"), "{d}");
        assert!(d.contains("--- a/web/a\n+++ b/web/a\n"), "{d}");
        assert!(d.contains("-1\n+3\n"), "{d}");
        assert!(d.contains("+++ b/web/b\n@@ -0,0 +1 @@\n+new\n"), "{d}");
        assert!(!d.contains("db/a"), "{d}");
        assert_eq!(
            diff_between(&dir, &two, &three, Path::new("db")).unwrap(),
            ""
        );
        // A prefix is a path, not a pattern: `we` does not match `web`.
        assert_eq!(
            diff_between(&dir, &one, &three, Path::new("we")).unwrap(),
            ""
        );
        let whole = diff_between(&dir, &one, "HEAD", Path::new("")).unwrap();
        assert!(
            whole.contains("b/db/a") && whole.contains("b/web/b"),
            "{whole}"
        );
        assert!(diff_between(&dir, "nope", "HEAD", Path::new("")).is_err());
    }

    /// A bare "remote" with a work repo that pushes to it.
    struct Remote {
        _t: tempfile::TempDir,
        bare: PathBuf,
        work: PathBuf,
        checkout: PathBuf,
    }

    impl Remote {
        fn new() -> Remote {
            let (t, work) = repo();
            let bare = t.path().join("remote.git");
            Repository::init_bare(&bare).unwrap();
            let r = Repository::open(&work).unwrap();
            r.remote("origin", bare.to_str().unwrap()).unwrap();
            let checkout = t.path().join("checkouts/lib");
            Remote {
                _t: t,
                bare,
                work,
                checkout,
            }
        }

        /// Commits `text` in file `f` on the current branch and pushes every branch.
        fn push(&self, f: &str, text: &str) -> String {
            let id = commit_files(&self.work, &[(f, text)], text);
            let r = Repository::open(&self.work).unwrap();
            let mut remote = r.find_remote("origin").unwrap();
            let refspecs: Vec<String> = r
                .branches(Some(git2::BranchType::Local))
                .unwrap()
                .map(|b| {
                    let name = b.unwrap().0.name().unwrap().unwrap().to_string();
                    format!("+refs/heads/{name}:refs/heads/{name}")
                })
                .collect();
            remote.push(&refspecs, None).unwrap();
            id
        }

        fn url(&self) -> &str {
            self.bare.to_str().unwrap()
        }

        fn read(&self, f: &str) -> String {
            fs::read_to_string(self.checkout.join(f)).unwrap()
        }
    }

    #[test]
    fn sync_clones_updates_and_pins() {
        let remote = Remote::new();
        let v1 = remote.push("lib.rhai", "v1");
        // The bare repository's HEAD names the work repo's default branch.
        let branch = Repository::open(&remote.work)
            .unwrap()
            .head()
            .unwrap()
            .shorthand()
            .unwrap()
            .to_string();
        Repository::open(&remote.bare)
            .unwrap()
            .set_head(&format!("refs/heads/{branch}"))
            .unwrap();

        let out = sync(remote.url(), &remote.checkout, None, None).unwrap();
        assert_eq!(
            out,
            SyncOutcome {
                commit: v1.clone(),
                fetched: true,
                warning: None
            }
        );
        assert_eq!(remote.read("lib.rhai"), "v1");

        let v2 = remote.push("lib.rhai", "v2");
        write(&remote.checkout, "lib.rhai", "local edit");
        write(&remote.checkout, "stray", "untracked");
        let out = sync(remote.url(), &remote.checkout, None, None).unwrap();
        assert_eq!(out.commit, v2);
        assert_eq!(remote.read("lib.rhai"), "v2");
        assert!(!remote.checkout.join("stray").exists());

        // Pinned to an older commit, by id, short id and tag; a file URL works too.
        let out = sync(remote.url(), &remote.checkout, None, Some(&v1)).unwrap();
        assert_eq!(out.commit, v1);
        assert_eq!(remote.read("lib.rhai"), "v1");
        let file_url = format!("file://{}", remote.url());
        assert_eq!(
            sync(&file_url, &remote.checkout, None, Some(&v2[..10]))
                .unwrap()
                .commit,
            v2
        );
        let r = Repository::open(&remote.bare).unwrap();
        r.tag_lightweight("v1.0", &r.revparse_single(&v1).unwrap(), false)
            .unwrap();
        assert_eq!(
            sync(remote.url(), &remote.checkout, None, Some("v1.0"))
                .unwrap()
                .commit,
            v1
        );
        assert_eq!(remote.read("lib.rhai"), "v1");
        assert_eq!(
            head_info(&remote.checkout).unwrap().unwrap(),
            HeadInfo {
                commit: v1.clone(),
                dirty: false
            }
        );

        let err = sync(remote.url(), &remote.checkout, None, Some("nope"))
            .unwrap_err()
            .0;
        assert!(err.contains("`nope`"), "{err}");
        for url in ["https://example.org/lib.git", "git@example.org:lib.git"] {
            let err = sync(url, &remote.checkout, None, None).unwrap_err().0;
            assert!(err.contains("only local repositories"), "{err}");
        }
        let err = sync(remote.url(), &remote.checkout, Some("x"), Some("y"))
            .unwrap_err()
            .0;
        assert!(err.contains("not both"), "{err}");
    }

    #[test]
    fn sync_selects_a_branch() {
        let remote = Remote::new();
        let main = remote.push("f", "main");
        let w = Repository::open(&remote.work).unwrap();
        let head = w.head().unwrap().peel_to_commit().unwrap();
        w.branch("next", &head, false).unwrap();
        let main_branch = w.head().unwrap().name().unwrap().to_string();
        w.set_head("refs/heads/next").unwrap();
        let next = remote.push("f", "next");
        Repository::open(&remote.bare)
            .unwrap()
            .set_head(&main_branch)
            .unwrap();

        assert_eq!(
            sync(remote.url(), &remote.checkout, Some("next"), None)
                .unwrap()
                .commit,
            next
        );
        assert_eq!(remote.read("f"), "next");
        assert_eq!(
            sync(remote.url(), &remote.checkout, None, None)
                .unwrap()
                .commit,
            main
        );
        assert_eq!(remote.read("f"), "main");
        let err = sync(remote.url(), &remote.checkout, Some("gone"), None)
            .unwrap_err()
            .0;
        assert!(err.contains("no branch `gone`"), "{err}");
    }

    #[test]
    fn sync_keeps_the_last_good_checkout_when_the_remote_is_gone() {
        let remote = Remote::new();
        let v1 = remote.push("f", "v1");
        sync(remote.url(), &remote.checkout, None, None).unwrap();
        fs::rename(&remote.bare, remote.bare.with_extension("moved")).unwrap();

        let out = sync(remote.url(), &remote.checkout, None, None).unwrap();
        assert_eq!(out.commit, v1);
        assert!(!out.fetched);
        let w = out.warning.unwrap();
        assert_eq!(
            w,
            format!(
                "using the last good checkout at {v1}: cannot fetch {url}: {url} does not exist; check the path",
                url = remote.url()
            )
        );
        assert_eq!(remote.read("f"), "v1");

        // A path that is there but no repository: libgit2's own fetch error.
        fs::create_dir(&remote.bare).unwrap();
        let out = sync(remote.url(), &remote.checkout, None, None).unwrap();
        assert_eq!((out.commit.as_str(), out.fetched), (v1.as_str(), false));
        let w = out.warning.unwrap();
        assert!(
            w.contains(&format!("{v1}: cannot fetch {}: ", remote.url())),
            "{w}"
        );
        let err = sync(
            remote.url(),
            &remote.checkout.with_file_name("x"),
            None,
            None,
        )
        .unwrap_err()
        .0;
        assert!(err.contains("cannot clone into"), "{err}");
        fs::remove_dir(&remote.bare).unwrap();

        // Never cloned: an error, and no half-made directory left behind.
        let fresh = remote.checkout.with_file_name("other");
        let err = sync(remote.url(), &fresh, None, None).unwrap_err().0;
        assert!(
            err.contains("cannot clone into") && err.contains(remote.url()),
            "{err}"
        );
        assert!(!fresh.exists());
        fs::create_dir_all(&fresh).unwrap();
        assert!(sync(remote.url(), &fresh, None, None).is_err());
        assert_eq!(
            fs::read_dir(&fresh).unwrap().count(),
            0,
            "an empty directory stays empty"
        );

        // A directory that is something else is not overwritten.
        write(&fresh, "mine.txt", "x");
        fs::rename(remote.bare.with_extension("moved"), &remote.bare).unwrap();
        let err = sync(remote.url(), &fresh, None, None).unwrap_err().0;
        assert!(err.contains("not a git checkout"), "{err}");
    }
}
