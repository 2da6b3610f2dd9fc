//! The `samba` module of recipes: shares with one system user each, their password
//! from a secret. The work is in `ops::samba`; here the password is read (and
//! registered with the redactor) from the secret the options name.

use super::glue::{module_function, raise, runtime_error};
use super::host::HostRef;
use super::values::read_options;
use crate::ops::samba;
use crate::ops::secrets;
use crate::recipe::engine::ScriptCtx;
use rhai::{Dynamic, EvalAltResult, FuncRegistration, Map, Module, NativeCallContext, Position};

/// The share's password: given (`password`, from `secret(...)`), the secret
/// `password_secret`, or derived from the secret `password_key` and the share name.
/// Registered as a secret before anything else sees it.
fn password(
    c: &ScriptCtx,
    name: &str,
    o: &samba::ShareOptions,
    pos: Position,
) -> Result<String, Box<EvalAltResult>> {
    let value = match (&o.password, &o.password_secret, &o.password_key) {
        (Some(p), None, None) => p.clone(),
        (None, Some(s), None) => super::secret::read(c, s, pos)?,
        (None, None, Some(k)) => samba::derive_password(&super::secret::read(c, k, pos)?, name),
        _ => {
            return Err(runtime_error(
                "samba::share: give exactly one of `password_secret` (a secret's name), `password_key` (a secret the password is derived from with the share name) or `password` (from secret(...))",
                pos,
            ));
        }
    };
    if value.is_empty() || value.contains(['\n', '\r', '\0']) {
        return Err(runtime_error(
            "samba::share: the password is empty or holds a line break",
            pos,
        ));
    }
    secrets::register(&value);
    Ok(value)
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    module_function!(
        &mut m,
        "share",
        ["h: Host", "name: &str", "options: Map", "Map"],
        "Makes the samba share `name` exist: a section in the fleet-managed /etc/samba/smb.shares.conf (included from smb.conf, the line added once), its folder `path` (relative to `base`, default \"/srv/shares\", or absolute below it; a path outside is refused; default: the share name) owned by its user with mode 0770, the user `user` (default `user_prefix` (\"smb-\") + name; it must start with the prefix, and an existing user must have no login shell) as a system account with no login shell, and its samba password set with `smbpasswd -s` on stdin, never on a command line: from the secret named by `password_secret`, derived from the secret `password_key` and the share name, or `password` (a `secret(...)` value); it is masked everywhere from then on. `read_only` (default false), `valid_users` (more samba users let in). One user and one folder per share: a second share for either is refused. `testparm -s` checks the configuration before smbd reloads it (started when not running). Returns #{ changed, changes }.",
        move |ctx: NativeCallContext,
              h: HostRef,
              name: &str,
              options: Map|
              -> Result<Map, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let o: samba::ShareOptions = read_options(&options, "samba::share", pos)?;
            let pw = password(&c, name, &o, pos)?;
            let wanted = samba::Wanted::from_options(name, &o)
                .map_err(|e| runtime_error(format!("samba::share: {e}"), pos))?;
            let changes =
                samba::share(&c.run()?.remote(&h.0), &wanted, &pw).map_err(|f| raise(f, &ctx))?;
            let mut out = Map::new();
            out.insert("changed".into(), (!changes.is_empty()).into());
            out.insert(
                "changes".into(),
                Dynamic::from_array(changes.into_iter().map(Dynamic::from).collect()),
            );
            Ok(out)
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "shares",
        ["h: Host", "Map"],
        "The shares fleet manages on the host (from /etc/samba/smb.shares.conf): #{ NAME: #{ path, user, read_only, valid_users } }.",
        move |ctx: NativeCallContext, h: HostRef| -> Result<Map, Box<EvalAltResult>> {
            let shares = samba::list(&c.run()?.remote(&h.0)).map_err(|f| raise(f, &ctx))?;
            let mut out = Map::new();
            for (name, s) in shares {
                let mut m = Map::new();
                m.insert("path".into(), s.path.into());
                m.insert("user".into(), s.user.into());
                m.insert("read_only".into(), s.read_only.into());
                m.insert(
                    "valid_users".into(),
                    Dynamic::from_array(s.valid_users.into_iter().map(Dynamic::from).collect()),
                );
                out.insert(name.into(), m.into());
            }
            Ok(out)
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "remove",
        ["h: Host", "name: &str", "bool"],
        "Removes the share from smb.shares.conf (checked by `testparm -s`, smbd reloaded) and its system user and samba account; the folder and its files stay. True when there was such a share.",
        move |ctx: NativeCallContext, h: HostRef, name: &str| -> Result<bool, Box<EvalAltResult>> {
            samba::remove(&c.run()?.remote(&h.0), name).map_err(|f| raise(f, &ctx))
        }
    );
    m
}
