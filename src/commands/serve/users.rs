//! The users of `fleet serve`: a TOML file outside git (default `.fleet/users.toml`,
//! or `serve_users` in fleet.toml) of names, roles and argon2id password hashes.
//!
//! ```toml
//! [users.alice]
//! role = "operator"
//! hash = "$argon2id$v=19$m=19456,t=2,p=1$..."
//! ```
//!
//! Like the secrets file, it is refused when its group or others have any permission
//! bit, and it is written 0600 (atomically: a reader never sees half a file).

use super::auth::Role;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The longest user name and password accepted (a password longer than this is not
/// needed and only makes hashing cost more).
const MAX_NAME: usize = 64;
pub(crate) const MIN_PASSWORD: usize = 8;
pub(crate) const MAX_PASSWORD: usize = 1024;
/// The largest users file read: a few hundred bytes a user.
const MAX_FILE: u64 = 1 << 20;
/// The costliest stored hash verified (memory in KiB, passes, lanes): a file with a
/// hash of 4 GiB memory would make every sign-in exhaust the server.
const MAX_M_COST: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 8;

/// One user as the server uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub(crate) role: Role,
    /// The argon2id hash in PHC form: also tells a changed password from the old one.
    pub(crate) hash: String,
}

pub(crate) type Users = BTreeMap<String, User>;

#[derive(Debug, thiserror::Error)]
pub(crate) enum UsersError {
    #[error(
        "users file {} has mode {mode:04o}; it must be readable only by its owner: run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Mode { path: PathBuf, mode: u32 },
    #[error("users file {} is not a regular file", path.display())]
    NotFile { path: PathBuf },
    #[error("users file {} is larger than 1 MiB", path.display())]
    TooLarge { path: PathBuf },
    #[error("users file {} cannot be read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("users file {} cannot be written: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("users file {} is not valid: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error(
        "user name {0:?} is not valid: use 1 to 64 letters, digits, `-`, `_` or `.`, starting with a letter or digit (and not `local`, the name of the loopback operator)"
    )]
    Name(String),
    #[error("the password is too short: use at least {MIN_PASSWORD} characters")]
    ShortPassword,
    #[error("the password is longer than {MAX_PASSWORD} bytes")]
    LongPassword,
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

/// Letters, digits, `-_.`; starts with a letter or digit; not `local` (the journal's
/// `web:local` is the loopback operator without users).
pub(crate) fn valid_name(name: &str) -> Result<(), UsersError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name != "local";
    if ok {
        Ok(())
    } else {
        Err(UsersError::Name(name.chars().take(80).collect()))
    }
}

pub(crate) fn valid_password(password: &str) -> Result<(), UsersError> {
    if password.len() > MAX_PASSWORD {
        Err(UsersError::LongPassword)
    } else if password.chars().count() < MIN_PASSWORD {
        Err(UsersError::ShortPassword)
    } else {
        Ok(())
    }
}

/// An argon2id hash (the crate's defaults: 19 MiB, 2 passes, 1 lane) with a random salt.
pub(crate) fn hash_password(password: &str) -> Result<String, UsersError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| UsersError::Hash(e.to_string()))
}

/// Whether `password` is the one `hash` was made from. A hash that is not a usable
/// argon2id hash never verifies.
pub(crate) fn verify_password(hash: &str, password: &str) -> bool {
    check_hash(hash).is_ok()
        && Argon2::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok()
}

/// Why a stored hash is not used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HashProblem {
    #[error("not a PHC hash ({0})")]
    NotPhc(String),
    #[error("{0} is not argon2id")]
    NotArgon2id(String),
    #[error("bad parameters ({0})")]
    Parameters(String),
    #[error("its costs m={m} t={t} p={p} exceed m={MAX_M_COST} t={MAX_T_COST} p={MAX_P_COST}")]
    TooCostly { m: u32, t: u32, p: u32 },
}

/// An argon2id PHC string whose costs stay within what a server can afford per sign-in.
fn check_hash(hash: &str) -> Result<(), HashProblem> {
    let parsed = argon2::PasswordHash::new(hash).map_err(|e| HashProblem::NotPhc(e.to_string()))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(HashProblem::NotArgon2id(
            parsed.algorithm.as_str().escape_debug().to_string(),
        ));
    }
    let params =
        argon2::Params::try_from(&parsed).map_err(|e| HashProblem::Parameters(e.to_string()))?;
    if params.m_cost() > MAX_M_COST || params.t_cost() > MAX_T_COST || params.p_cost() > MAX_P_COST
    {
        return Err(HashProblem::TooCostly {
            m: params.m_cost(),
            t: params.t_cost(),
            p: params.p_cost(),
        });
    }
    Ok(())
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileData {
    #[serde(default)]
    users: BTreeMap<String, FileUser>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    role: String,
    hash: String,
}

const HEADER: &str = "# Users of `fleet serve`, written by `fleet serve --add-user NAME` and \
`--remove-user NAME`.\n# Password hashes: keep this file out of git and readable only by its \
owner (chmod 600).\n\n";

/// The users of `path`; a missing file has none. Refused when not 0600 (or stricter),
/// not a regular file, too large, or not valid.
pub(crate) fn load(path: &Path) -> Result<Users, UsersError> {
    match read_private(path)? {
        None => Ok(Users::new()),
        Some(text) => parse(path, &text),
    }
}

fn read_private(path: &Path) -> Result<Option<String>, UsersError> {
    use std::io::Read;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let owned = || path.to_path_buf();
    // Not a FIFO or a device: checked before opening (without blocking) and again on
    // what was opened.
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(UsersError::Read {
                path: owned(),
                source,
            });
        }
        Ok(meta) if !meta.is_file() => return Err(UsersError::NotFile { path: owned() }),
        Ok(_) => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| UsersError::Read {
            path: owned(),
            source,
        })?;
    let meta = file.metadata().map_err(|source| UsersError::Read {
        path: owned(),
        source,
    })?;
    if !meta.is_file() {
        return Err(UsersError::NotFile { path: owned() });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(UsersError::Mode {
            path: owned(),
            mode,
        });
    }
    let mut text = String::new();
    file.by_ref()
        .take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|source| UsersError::Read {
            path: owned(),
            source,
        })?;
    if text.len() as u64 > MAX_FILE {
        return Err(UsersError::TooLarge { path: owned() });
    }
    Ok(Some(text))
}

fn parse(path: &Path, text: &str) -> Result<Users, UsersError> {
    let invalid = |message: String| UsersError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let data: FileData = toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
    let mut users = Users::new();
    for (name, user) in data.users {
        valid_name(&name).map_err(|e| invalid(e.to_string()))?;
        let role = Role::parse(&user.role).ok_or_else(|| {
            invalid(format!(
                "user {name}: role {:?} is neither \"viewer\" nor \"operator\"",
                user.role.escape_debug().to_string()
            ))
        })?;
        check_hash(&user.hash).map_err(|why| {
            invalid(format!(
                "user {name}: the hash is not usable: {why}; set the password again with \
                 `fleet serve --add-user {name}`"
            ))
        })?;
        users.insert(
            name,
            User {
                role,
                hash: user.hash,
            },
        );
    }
    Ok(users)
}

fn render(users: &Users) -> String {
    let data = FileData {
        users: users
            .iter()
            .map(|(name, u)| {
                (
                    name.clone(),
                    FileUser {
                        role: u.role.as_str().into(),
                        hash: u.hash.clone(),
                    },
                )
            })
            .collect(),
    };
    let body = toml::to_string(&data).expect("users serialize to TOML");
    format!("{HEADER}{body}")
}

fn save(path: &Path, users: &Users) -> Result<(), UsersError> {
    crate::ops::localfs::write_private(path, render(users).as_bytes()).map_err(|source| {
        UsersError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// What `add` did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Added {
    New(Role),
    /// The password (and role) of an existing user changed: their sessions end.
    Changed(Role),
}

/// Adds `name` with `password`, or sets an existing user's password (and role when
/// given). A new user without a role is a viewer.
pub(crate) fn add(
    path: &Path,
    name: &str,
    role: Option<Role>,
    password: &str,
) -> Result<Added, UsersError> {
    valid_name(name)?;
    valid_password(password)?;
    let mut users = load(path)?;
    let hash = hash_password(password)?;
    let added = match users.get(name) {
        Some(old) => Added::Changed(role.unwrap_or(old.role)),
        None => Added::New(role.unwrap_or(Role::Viewer)),
    };
    let role = match added {
        Added::New(r) | Added::Changed(r) => r,
    };
    users.insert(name.to_string(), User { role, hash });
    save(path, &users)?;
    Ok(added)
}

/// Removes `name`; false when there was no such user.
pub(crate) fn remove(path: &Path, name: &str) -> Result<bool, UsersError> {
    let mut users = load(path)?;
    if users.remove(name).is_none() {
        return Ok(false);
    }
    save(path, &users)?;
    Ok(true)
}

/// The users file as the server sees it while it runs: read again whenever the file
/// changes (its size, time, inode or mode), so `--remove-user` and a new password take
/// effect on the next request without a restart.
pub(crate) struct Store {
    path: PathBuf,
    cached: std::sync::Mutex<Cached>,
}

struct Cached {
    stamp: Option<Stamp>,
    users: std::sync::Arc<Result<Users, UsersError>>,
}

type Stamp = (std::time::SystemTime, u64, u64, u32);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino(), m.mode()))
}

impl Store {
    pub(crate) fn new(path: PathBuf, users: Users) -> Store {
        let stamp = stamp(&path);
        Store {
            path,
            cached: std::sync::Mutex::new(Cached {
                stamp,
                users: std::sync::Arc::new(Ok(users)),
            }),
        }
    }

    /// The current users, or why the file cannot be used now (the server then lets
    /// nobody in).
    pub(crate) fn current(&self) -> std::sync::Arc<Result<Users, UsersError>> {
        let now = stamp(&self.path);
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if now != cached.stamp || now.is_none() {
            let users = load(&self.path);
            if let Err(e) = &users {
                tracing::error!(error = %e, "fleet serve: the users file cannot be used; nobody can sign in");
            }
            cached.stamp = now;
            cached.users = std::sync::Arc::new(users);
        }
        cached.users.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn hashes_are_argon2id_salted_and_verify_only_their_password() {
        let a = hash_password("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, hash_password("correct horse").unwrap(), "no salt");
        assert!(verify_password(&a, "correct horse"));
        assert!(!verify_password(&a, "correct horsE"));
        assert!(!verify_password("not a hash", "correct horse"));
        // A costly hash is never computed.
        let dear = a.replace("m=19456", "m=4000000");
        assert!(
            check_hash(&dear)
                .unwrap_err()
                .to_string()
                .contains("exceed")
        );
        assert!(!verify_password(&dear, "correct horse"));
        let argon2i = a.replace("$argon2id$", "$argon2i$");
        assert!(check_hash(&argon2i).is_err());
    }

    #[test]
    fn names_and_passwords_are_checked() {
        for ok in ["alice", "a", "bob-2", "c_d.e", "9lives"] {
            assert!(valid_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-x",
            ".hidden",
            "a b",
            "a/b",
            "é",
            "a\n",
            "local",
            "x=y",
            &"a".repeat(65),
        ] {
            assert!(valid_name(bad).is_err(), "{bad:?}");
        }
        assert!(valid_password("1234567").is_err());
        assert!(valid_password("12345678").is_ok());
        assert!(valid_password(&"x".repeat(MAX_PASSWORD + 1)).is_err());
    }

    #[test]
    fn the_file_is_written_0600_and_refused_when_others_may_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/users.toml");
        assert!(
            load(&path).unwrap().is_empty(),
            "a missing file has no users"
        );
        assert_eq!(
            add(&path, "alice", Some(Role::Operator), "password-1").unwrap(),
            Added::New(Role::Operator)
        );
        assert_eq!(
            add(&path, "bob", None, "password-2").unwrap(),
            Added::New(Role::Viewer)
        );
        assert_eq!(crate::ops::localfs::mode_of(&path).unwrap(), 0o600);
        let users = load(&path).unwrap();
        assert_eq!(users["alice"].role, Role::Operator);
        assert!(verify_password(&users["bob"].hash, "password-2"));
        // A new password keeps the role unless one is given.
        assert_eq!(
            add(&path, "alice", None, "password-3").unwrap(),
            Added::Changed(Role::Operator)
        );
        assert!(verify_password(
            &load(&path).unwrap()["alice"].hash,
            "password-3"
        ));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
        assert!(e.contains("users.toml"), "{e}");
        assert!(add(&path, "carol", None, "password-4").is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(load(&path).unwrap().len(), 2);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

        assert!(remove(&path, "bob").unwrap());
        assert!(!remove(&path, "bob").unwrap());
        assert_eq!(load(&path).unwrap().keys().collect::<Vec<_>>(), ["alice"]);
    }

    #[test]
    fn bad_files_name_the_file_and_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let write = |text: &str| {
            crate::ops::localfs::write_private(&path, text.as_bytes()).unwrap();
            load(&path).unwrap_err().to_string()
        };
        let e = write("[users.alice]\nrole = \"admin\"\nhash = \"x\"\n");
        assert!(e.contains("users.toml") && e.contains("admin"), "{e}");
        let e = write("[users.\"a b\"]\nrole = \"viewer\"\nhash = \"x\"\n");
        assert!(e.contains("\"a b\""), "{e}");
        let e = write("[users.alice]\nrole = \"viewer\"\nhash = \"x\"\n");
        assert!(e.contains("alice") && e.contains("--add-user alice"), "{e}");
        let e = write("users = 3\n");
        assert!(e.contains("not valid"), "{e}");
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(
            load(&path)
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
    }

    #[test]
    fn the_store_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        add(&path, "alice", Some(Role::Operator), "password-1").unwrap();
        let store = Store::new(path.clone(), load(&path).unwrap());
        assert!(
            store
                .current()
                .as_ref()
                .as_ref()
                .unwrap()
                .contains_key("alice")
        );
        add(&path, "bob", None, "password-2").unwrap();
        assert!(
            store
                .current()
                .as_ref()
                .as_ref()
                .unwrap()
                .contains_key("bob")
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = store.current().as_ref().as_ref().unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }
}
