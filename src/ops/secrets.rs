//! Secrets for recipes, and the redactor that keeps them out of every output.
//!
//! A secret comes from `FLEET_SECRET_<NAME>` or from a secrets file outside the recipes
//! (its path is `secrets_file` in fleet.toml; refused unless only its owner can read it).
//! Every value handed to a recipe is first [`register`]ed: from then on [`redact`]
//! replaces it with `***` wherever fleet prints, logs or records text. Redaction merges
//! the matches of all values before replacing, so a secret that is a substring of
//! another, or overlaps it, leaks nothing of either (Ansible's no_log leaked the rest of
//! the longer one: ansible #86930).
//!
//! Every *configured* secret is registered before a run prints anything, read by a
//! recipe or not: the `FLEET_SECRET_*` variables when fleet starts ([`take_env`], which
//! also takes them out of the environment so no child process inherits them) and every
//! value of the secrets file when a run starts ([`register_file`]). What redaction cannot
//! catch: a value a command splits, encodes or transforms (`tr`, base64, one character
//! per line), and values that are not configured secrets (a rotated, old password still
//! on a host).

use memchr::memmem::Finder;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, PoisonError, RwLock, RwLockReadGuard};

/// What a secret's value is replaced with.
pub(crate) const MASK: &str = "***";

/// Prefix of the environment variables that hold secrets.
pub(crate) const ENV_PREFIX: &str = "FLEET_SECRET_";

/// Lines of a multi-line value shorter than this (after trimming) are not redacted on
/// their own; see [`register`].
pub(crate) const MIN_LINE_CHARS: usize = 4;

crate::error::message_error!(
    /// Why the secrets file cannot be used: missing, unreadable, open to others, or not
    /// a table of strings (the message never quotes a value from it).
    SecretsFileError
);

crate::error::message_error!(
    /// Why `secret(name)` has no value: where fleet looked and how to give it one.
    NoSecret
);

/// Reads a secrets file: top-level `name = "value"` pairs of TOML.
///
/// Refused when its group or others have any permission bit, like ssh refuses a private
/// key others can read. A missing file is an error: callers only call this when
/// fleet.toml names one.
pub(crate) fn load_file(path: &Path) -> Result<BTreeMap<String, String>, SecretsFileError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    // Opening a FIFO blocks until a writer comes (deaf to Ctrl-C and SIGTERM, with the
    // project lock held): refuse anything but a regular file before opening, and open
    // without blocking in case the path changes in between (checked again below).
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
    {
        return Err(format!(
            "secrets file {shown} is not a regular file (a FIFO, device or directory)"
        )
        .into());
    }
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    let mut file = opened.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("secrets file {shown} does not exist (fleet.toml names it as `secrets_file`)")
        }
        _ => format!("secrets file {shown} cannot be read: {e}"),
    })?;
    // The mode of the file we opened, not of whatever the path names a moment later.
    let meta = file
        .metadata()
        .map_err(|e| format!("secrets file {shown} cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err(format!("secrets file {shown} is not a file").into());
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "secrets file {shown} has mode {mode:04o}; it must be readable only by its owner \
             (0600 or 0400): run `chmod 600 {shown}`"
        )
        .into());
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| format!("secrets file {shown} cannot be read: {e}"))?;
    parse(&shown.to_string(), &text)
}

/// Parses the text of a secrets file; `file` names it in messages.
pub(crate) fn parse(file: &str, text: &str) -> Result<BTreeMap<String, String>, SecretsFileError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        // toml's own rendering quotes the offending line, which may hold a secret that
        // was never registered: say only where the problem is and what it is.
        let at = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
        let before = text.get(..at).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        let what = e.message().lines().next().unwrap_or("invalid TOML");
        format!("secrets file {file}: invalid TOML at line {line}, column {column}: {what}")
    })?;
    let mut secrets = BTreeMap::new();
    for (key, value) in table {
        match value {
            toml::Value::String(s) => {
                secrets.insert(key, s);
            }
            toml::Value::Table(_) => {
                return Err(format!(
                    "secrets file {file}: `{key}` is a table; nested tables are not allowed, \
                     every secret is a top-level string (`name = \"value\"`)"
                )
                .into());
            }
            other => {
                return Err(format!(
                    "secrets file {file}: `{key}` must be a string, not {} (quote it: \
                     `{key} = \"...\"`)",
                    other.type_str()
                )
                .into());
            }
        }
    }
    Ok(secrets)
}

/// `db-password` -> `FLEET_SECRET_DB_PASSWORD`: uppercase ASCII letters and digits, every
/// other character `_`. (So `db-password` and `db_password` share one variable.)
pub(crate) fn env_name(name: &str) -> String {
    let mut var = String::from(ENV_PREFIX);
    var.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    var
}

/// The `FLEET_SECRET_*` variables fleet started with, taken out of its environment.
static ENV_SECRETS: OnceLock<BTreeMap<String, String>> = OnceLock::new();

/// The `FLEET_SECRET_*` variables among `vars`, by name; those whose name or value is not
/// UTF-8 are left out (no recipe could read them).
pub(crate) fn secret_vars(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> BTreeMap<String, String> {
    vars.into_iter()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .collect()
}

/// Takes every `FLEET_SECRET_*` variable out of this process's environment, keeps the
/// values for [`env_value`] and registers them with the redactor. After this, no child
/// fleet starts (a local host's `sh`, ssh, rsync, git, a login shell) inherits a secret,
/// and a secret shows as `***` from the first line, whether a recipe reads it or not.
///
/// Call it first thing in `main`, before any thread exists: changing the environment
/// while another thread reads it is undefined behaviour.
pub fn take_env() {
    let names: Vec<OsString> = std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| name.as_encoded_bytes().starts_with(ENV_PREFIX.as_bytes()))
        .collect();
    let values = ENV_SECRETS.get_or_init(|| secret_vars(std::env::vars_os()));
    for name in names {
        // SAFETY: called at the start of main, before fleet starts any thread.
        unsafe { std::env::remove_var(name) };
    }
    for value in values.values() {
        register(value);
    }
}

/// The value of environment variable `var` (a `FLEET_SECRET_*` name) as fleet started
/// with it. Without [`take_env`] (fleet used as a library, unit tests), the environment
/// as it is now.
pub(crate) fn env_value(var: &str) -> Option<String> {
    match ENV_SECRETS.get() {
        Some(taken) => taken.get(var).cloned(),
        None => std::env::var(var).ok(),
    }
}

/// Every `FLEET_SECRET_*` variable fleet started with, for a fleet it starts itself to run
/// a recipe (`fleet serve`): that run reads the same secrets as one typed in this shell.
pub(crate) fn env_secrets() -> Vec<(String, String)> {
    match ENV_SECRETS.get() {
        Some(taken) => taken.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        None => secret_vars(std::env::vars_os()).into_iter().collect(),
    }
}

/// Registers every value of the secrets file at `path`, so each is masked from the start
/// of a run whether or not a recipe reads it. A missing file registers nothing (secret()
/// says so when a recipe needs one); a file that cannot be used is an error, because
/// its values could not be masked.
pub(crate) fn register_file(path: &Path) -> Result<(), SecretsFileError> {
    if !path.exists() {
        return Ok(());
    }
    for value in load_file(path)?.values() {
        register(value);
    }
    Ok(())
}

fn is_blank(value: &str) -> bool {
    value.trim().is_empty()
}

/// The value of secret `name`. The environment variable wins over the file, so CI or a
/// cron job can override one secret without touching the file.
///
/// A value that is empty or only whitespace counts as not set: an empty
/// `FLEET_SECRET_X` (what CI systems substitute for an undefined secret) falls through
/// to the file, and an empty value in the file is an error, never an empty password
/// passed on silently. `file` is the secrets file's path and contents, when fleet.toml
/// names one; `env` reads an environment variable.
pub(crate) fn lookup(
    name: &str,
    file: Option<(&Path, &BTreeMap<String, String>)>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, NoSecret> {
    if is_blank(name) {
        return Err("secret() needs a name, e.g. secret(\"db_password\")".into());
    }
    let var = env_name(name);
    let from_env = env(&var);
    if let Some(value) = &from_env
        && !is_blank(value)
    {
        return Ok(value.clone());
    }
    let empty_env = if from_env.is_some() {
        format!(" ({var} is set but empty)")
    } else {
        String::new()
    };
    match file {
        Some((path, secrets)) => match secrets.get(name) {
            Some(value) if !is_blank(value) => Ok(value.clone()),
            Some(_) => Err(format!(
                "secret `{name}` is empty in {}: give it a value there or set {var}{empty_env}",
                path.display()
            )
            .into()),
            None => Err(format!(
                "secret `{name}` is not set: add it to {} or set {var}{empty_env}",
                path.display()
            )
            .into()),
        },
        None => Err(format!(
            "secret `{name}` is not set: set {var}{empty_env}; no secrets file is configured \
             in fleet.toml (`secrets_file = \"...\"`)"
        )
        .into()),
    }
}

/// Every registered form of every secret, each with its own searcher.
static NEEDLES: RwLock<Vec<Finder<'static>>> = RwLock::new(Vec::new());
/// Set once the first secret is registered: until then redaction costs one atomic load.
static ANY: AtomicBool = AtomicBool::new(false);

/// A panic elsewhere must not switch redaction off: the list itself is always whole.
fn needles() -> RwLockReadGuard<'static, Vec<Finder<'static>>> {
    NEEDLES.read().unwrap_or_else(PoisonError::into_inner)
}

/// `"` -> `\"`, newline -> `\n`: a value as it appears inside a JSON string (the run log).
fn json_escaped(value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    quoted
        .get(1..quoted.len().saturating_sub(1))
        .unwrap_or("")
        .to_string()
}

/// The texts that give a value away: the value itself; without surrounding whitespace;
/// each line of a multi-line value; and how these look quoted for a shell (a command
/// line in an error message) or escaped in JSON (the run log), where that differs.
fn forms(value: &str) -> Vec<String> {
    if is_blank(value) {
        return Vec::new();
    }
    let mut plain = vec![value.to_string(), value.trim().to_string()];
    plain.extend(
        value
            .lines()
            .map(str::trim)
            .filter(|line| line.chars().count() >= MIN_LINE_CHARS)
            .map(str::to_string),
    );
    let mut forms = plain.clone();
    let quoted = super::shell::quote(value);
    if !quoted.contains(value) {
        forms.push(quoted);
    }
    forms.extend(
        plain
            .iter()
            .map(|p| json_escaped(p))
            .filter(|j| !j.is_empty()),
    );
    forms.sort();
    forms.dedup();
    forms
}

/// From now on, [`redact`] replaces `value` wherever it appears.
///
/// Also registered: each line of a multi-line value (a key, a certificate) so the value
/// stays hidden when it is printed line by line, and its shell-quoted and JSON-escaped
/// forms. Lines shorter than [`MIN_LINE_CHARS`] after trimming are not registered on
/// their own: a PEM key or a config blob has lines like `}` or `==`, and masking every
/// brace in every later line of output would make it unreadable while hiding almost
/// nothing (the whole value is still masked, and such a line gives away at most three
/// characters). A value that is empty or only whitespace registers nothing: it would
/// match at every position, or mask every space.
///
/// Registering the same value again is cheap and changes nothing.
pub(crate) fn register(value: &str) {
    let forms = forms(value);
    if forms.is_empty() {
        return;
    }
    let known =
        |list: &[Finder<'static>], form: &str| list.iter().any(|f| f.needle() == form.as_bytes());
    {
        let list = needles();
        if forms.iter().all(|form| known(&list, form)) {
            return;
        }
    }
    let mut list = NEEDLES.write().unwrap_or_else(PoisonError::into_inner);
    for form in forms {
        if !known(&list, &form) {
            list.push(Finder::new(form.as_bytes()).into_owned());
        }
    }
    ANY.store(true, Ordering::Release);
}

/// The byte ranges to mask in `haystack`: every match of every registered form,
/// overlapping ones included, merged where they overlap or touch. Sorted.
fn spans(haystack: &[u8]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    for finder in needles().iter() {
        let len = finder.needle().len();
        let mut from = 0;
        while let Some(i) = finder.find(&haystack[from..]) {
            let start = from + i;
            found.push((start, start + len));
            from = start + 1;
        }
    }
    found.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
    for (start, end) in found {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Whether `data` holds a registered secret (any configured one, from the start of a
/// run): such content gets a private mode and no check-mode diff.
pub(crate) fn holds_secret(data: &[u8]) -> bool {
    ANY.load(Ordering::Acquire) && !spans(data).is_empty()
}

/// `text` with every registered secret replaced by `***`; one `***` for each run of
/// overlapping or adjacent matches. Borrowed when nothing matched (or nothing is
/// registered, which costs no scan at all).
///
/// Redact whole lines or whole buffers: a value split between two separately redacted
/// chunks of a stream is not found.
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    if !ANY.load(Ordering::Acquire) {
        return Cow::Borrowed(text);
    }
    let spans = spans(text.as_bytes());
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    // Forms are valid UTF-8, so in valid UTF-8 every match starts and ends on a
    // character boundary, and so does every merged span.
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in spans {
        out.push_str(&text[at..start]);
        out.push_str(MASK);
        at = end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// [`redact`] for an owned string: no copy when nothing matched.
#[cfg(test)]
pub(crate) fn redact_owned(text: String) -> String {
    match redact(&text) {
        Cow::Borrowed(_) => None,
        Cow::Owned(redacted) => Some(redacted),
    }
    .unwrap_or(text)
}

/// [`redact`] for bytes (command output that need not be UTF-8).
pub(crate) fn redact_bytes(data: &[u8]) -> Cow<'_, [u8]> {
    if !ANY.load(Ordering::Acquire) {
        return Cow::Borrowed(data);
    }
    let spans = spans(data);
    if spans.is_empty() {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len());
    let mut at = 0;
    for (start, end) in spans {
        out.extend_from_slice(&data[at..start]);
        out.extend_from_slice(MASK.as_bytes());
        at = end;
    }
    out.extend_from_slice(&data[at..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    //! The redactor is process-wide and tests run in parallel: every test registers
    //! values of its own that no other test's text contains.

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn a_secret_inside_another_leaks_nothing_of_either() {
        // ansible #86930: masking the short one first left the rest of the long one.
        register("Qz1abc");
        register("Qz1abcdef");
        assert_eq!(redact("x Qz1abcdef y Qz1abc"), "x *** y ***");
        register("Qz2abcdef");
        register("Qz2abc");
        assert_eq!(redact("x Qz2abcdef y Qz2abc"), "x *** y ***");
    }

    #[test]
    fn overlapping_and_adjacent_secrets_become_one_mask() {
        register("Qo1abcd");
        register("cdefQo1");
        assert_eq!(redact("[Qo1abcdefQo1]"), "[***]");
        register("Qo2left");
        register("Qo2right");
        assert_eq!(redact("Qo2leftQo2right!"), "***!");
    }

    #[test]
    fn a_secret_that_overlaps_itself_is_masked_whole() {
        register("QsQsQs");
        assert_eq!(redact("<QsQsQsQs>"), "<***>");
    }

    #[test]
    fn every_occurrence_is_masked() {
        register("Qt1-twice");
        assert_eq!(
            redact("a Qt1-twice b Qt1-twice c\nQt1-twice"),
            "a *** b *** c\n***"
        );
    }

    #[test]
    fn a_multi_line_secret_is_masked_whole_and_line_by_line() {
        let key =
            "-----BEGIN QM1 KEY-----\nQm1AAAAB3Nza\n  Qm1C1yc2EA  \n==\n-----END QM1 KEY-----\n";
        register(key);
        assert_eq!(redact(&format!("key: {key}done")), "key: ***done");
        // Printed one line at a time, each line on its own is still masked.
        let lines: Vec<String> = key.lines().map(|l| redact(l).into_owned()).collect();
        assert_eq!(lines, ["***", "***", "  ***  ", "==", "***"]);
        // Short lines are not secrets of their own.
        assert_eq!(redact("a == b"), "a == b");
    }

    #[test]
    fn shell_quoted_and_json_escaped_forms_are_masked() {
        register("Qq1it's\"x\"");
        let quoted = crate::ops::shell::quote("Qq1it's\"x\"");
        assert_eq!(redact(&format!("echo {quoted}")), "echo ***");
        let json = serde_json::to_string("pw=Qq1it's\"x\"").unwrap();
        assert_eq!(redact(&json), r#""pw=***""#);
        register("Qq2line one\nQq2line two");
        let json = serde_json::to_string("got Qq2line one\nQq2line two.").unwrap();
        assert_eq!(redact(&json), r#""got ***.""#);
    }

    #[test]
    fn empty_and_blank_values_register_nothing() {
        register("");
        register("  \n\t ");
        assert_eq!(redact("Qe1 keeps  its spaces\n"), "Qe1 keeps  its spaces\n");
    }

    #[test]
    fn short_values_are_still_masked() {
        register("Qw1");
        assert_eq!(redact("aQw1b"), "a***b");
    }

    #[test]
    fn text_without_secrets_is_borrowed() {
        let text = "nothing secret here: Qn1";
        assert!(matches!(redact(text), Cow::Borrowed(_)));
        assert!(matches!(redact_bytes(text.as_bytes()), Cow::Borrowed(_)));
        let owned = String::from("still nothing: Qn1");
        let ptr = owned.as_ptr();
        let back = redact_owned(owned);
        assert_eq!(back.as_ptr(), ptr);
    }

    #[test]
    fn bytes_and_owned_strings_are_redacted_too() {
        register("Qb1-bytes");
        assert_eq!(
            redact_bytes(b"\xff Qb1-bytes \xfe").as_ref(),
            b"\xff *** \xfe".as_slice()
        );
        assert_eq!(redact_owned("x Qb1-bytes".to_string()), "x ***");
    }

    #[test]
    fn non_ascii_text_around_secrets_stays_whole() {
        register("Qü1-pässwörd");
        assert_eq!(redact("é Qü1-pässwörd ü"), "é *** ü");
    }

    #[test]
    fn registering_from_many_threads_at_once() {
        std::thread::scope(|s| {
            for i in 0..8 {
                s.spawn(move || {
                    let value = format!("Qc1-thread-{i}");
                    for _ in 0..50 {
                        register(&value);
                        assert_eq!(redact(&format!("<{value}>")), "<***>");
                    }
                });
            }
        });
        let count = needles()
            .iter()
            .filter(|f| f.needle().starts_with(b"Qc1-thread-"))
            .count();
        assert_eq!(count, 8);
    }

    #[test]
    fn only_fleet_secret_variables_are_taken() {
        let vars = [
            ("FLEET_SECRET_DB", "Qv1-db"),
            ("FLEET_SECRETS", "not-one"),
            ("PATH", "/bin"),
            ("FLEET_SECRET_EMPTY", ""),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let taken = secret_vars(vars);
        assert_eq!(
            taken.keys().collect::<Vec<_>>(),
            ["FLEET_SECRET_DB", "FLEET_SECRET_EMPTY"]
        );
    }

    #[test]
    fn every_value_of_the_secrets_file_is_registered_unread() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        std::fs::write(&path, "a = \"Qr1-never-read\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!holds_secret(b"x Qr1-never-read"));
        register_file(&path).unwrap();
        assert_eq!(redact("x Qr1-never-read"), "x ***");
        assert!(holds_secret(b"x Qr1-never-read"));
        assert!(!holds_secret(b"x Qr1-never"));
        // A missing file holds nothing to mask; one others can read cannot be used.
        register_file(&dir.path().join("none.toml")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            register_file(&path)
                .unwrap_err()
                .0
                .contains("has mode 0644")
        );
    }

    #[test]
    fn env_names() {
        assert_eq!(env_name("db-password"), "FLEET_SECRET_DB_PASSWORD");
        assert_eq!(env_name("api.token2"), "FLEET_SECRET_API_TOKEN2");
        assert_eq!(env_name("ünï"), "FLEET_SECRET__N_");
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let path = Path::new("/etc/fleet/secrets.toml");
        let file = BTreeMap::from([("db".to_string(), "from-file".to_string())]);
        let env = env_of(&[("FLEET_SECRET_DB", "from-env")]);
        assert_eq!(lookup("db", Some((path, &file)), &env).unwrap(), "from-env");
        assert_eq!(
            lookup("db", Some((path, &file)), env_of(&[])).unwrap(),
            "from-file"
        );
        assert_eq!(lookup("db", None, &env).unwrap(), "from-env");
        // An empty variable (CI's stand-in for an undefined secret) is not an override.
        let empty = env_of(&[("FLEET_SECRET_DB", "")]);
        assert_eq!(
            lookup("db", Some((path, &file)), &empty).unwrap(),
            "from-file"
        );
    }

    #[test]
    fn a_missing_secret_is_named() {
        let path = Path::new("/etc/fleet/secrets.toml");
        let file = BTreeMap::from([("blank".to_string(), " ".to_string())]);
        assert_eq!(
            lookup("db-password", Some((path, &file)), env_of(&[]))
                .unwrap_err()
                .0,
            "secret `db-password` is not set: add it to /etc/fleet/secrets.toml or set \
             FLEET_SECRET_DB_PASSWORD"
        );
        assert_eq!(
            lookup("db-password", None, env_of(&[])).unwrap_err().0,
            "secret `db-password` is not set: set FLEET_SECRET_DB_PASSWORD; no secrets file \
             is configured in fleet.toml (`secrets_file = \"...\"`)"
        );
        assert_eq!(
            lookup("db", None, env_of(&[("FLEET_SECRET_DB", "")]))
                .unwrap_err()
                .0,
            "secret `db` is not set: set FLEET_SECRET_DB (FLEET_SECRET_DB is set but empty); \
             no secrets file is configured in fleet.toml (`secrets_file = \"...\"`)"
        );
        assert_eq!(
            lookup("blank", Some((path, &file)), env_of(&[]))
                .unwrap_err()
                .0,
            "secret `blank` is empty in /etc/fleet/secrets.toml: give it a value there or set \
             FLEET_SECRET_BLANK"
        );
        assert_eq!(
            lookup(" ", None, env_of(&[])).unwrap_err().0,
            "secret() needs a name, e.g. secret(\"db_password\")"
        );
    }

    #[test]
    fn secrets_files_hold_top_level_strings() {
        let ok = parse(
            "s.toml",
            "db_password = \"s3cr3t\"\n\"api key\" = '''x\ny'''\n",
        )
        .unwrap();
        assert_eq!(ok["db_password"], "s3cr3t");
        assert_eq!(ok["api key"], "x\ny");
        assert_eq!(
            parse("s.toml", "[db]\npassword = \"x\"\n").unwrap_err().0,
            "secrets file s.toml: `db` is a table; nested tables are not allowed, every \
             secret is a top-level string (`name = \"value\"`)"
        );
        assert_eq!(
            parse("s.toml", "pin = 1234\n").unwrap_err().0,
            "secrets file s.toml: `pin` must be a string, not integer (quote it: \
             `pin = \"...\"`)"
        );
    }

    #[test]
    fn a_broken_secrets_file_does_not_echo_its_lines() {
        for text in [
            "a = \"ok\"\ndb_password = hunter2-unquoted\n",
            "db_password = \"hunter2-unclosed\n",
            "db_password = \"hunter2-dup\"\ndb_password = \"hunter2-dup\"\n",
        ] {
            let e = parse("s.toml", text).unwrap_err().0;
            assert!(
                e.starts_with("secrets file s.toml: invalid TOML at line "),
                "{e}"
            );
            assert!(!e.contains("hunter2"), "{e}");
        }
        let e = parse("s.toml", "a = \"ok\"\ndb_password = hunter2\n")
            .unwrap_err()
            .0;
        assert!(e.contains("line 2, column 15"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn secrets_files_others_can_read_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        std::fs::write(&path, "db = \"x\"\n").unwrap();
        let shown = path.display();
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(load_file(&path).unwrap()["db"], "x", "mode {mode:o}");
        }
        for mode in [0o644, 0o640, 0o604] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(
                load_file(&path).unwrap_err().0,
                format!(
                    "secrets file {shown} has mode {mode:04o}; it must be readable only by its \
                     owner (0600 or 0400): run `chmod 600 {shown}`"
                )
            );
        }
        let missing = dir.path().join("nope.toml");
        assert_eq!(
            load_file(&missing).unwrap_err().0,
            format!(
                "secrets file {} does not exist (fleet.toml names it as `secrets_file`)",
                missing.display()
            )
        );
    }
}
