//! `passwords::guest(name)`: the derived password of a new guest (fleet.toml's
//! `password_secret`), registered with the redactor before the recipe sees it.
//! Derivation lives in ops/passwords.rs.

use super::glue::{module_function, runtime_error};
use crate::ops::{passwords, secrets};
use crate::recipe::engine::ScriptCtx;
use rhai::{Dynamic, EvalAltResult, FuncRegistration, Map, Module, NativeCallContext};

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    module_function!(
        &mut m,
        "guest",
        ["name: &str", "Dynamic"],
        "The root (and login user) password of guest `name`, derived from the secret that fleet.toml's `password_secret` names (HMAC-SHA256 of the secret and the name: 20 characters, the same every run): #{ password, hash } with its SHA-512 crypt hash for cloud-init's chpasswd; () when fleet.toml has no `password_secret`. The password (and the secret) show as *** in terminal output, logs, the journal and error messages from then on. `fleet guest password NAME` shows it on a terminal.",
        move |ctx: NativeCallContext, name: &str| -> Result<Dynamic, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let run = c.run()?;
            let Some(secret_name) = run.options.password_secret.clone() else {
                return Ok(Dynamic::UNIT);
            };
            let secret = super::secret::read(&c, &secret_name, pos)
                .map_err(|e| runtime_error(format!("password_secret (fleet.toml): {e}"), pos))?;
            let password = passwords::derive(&secret, name)
                .map_err(|e| runtime_error(format!("passwords::guest: {e}"), pos))?;
            secrets::register(&password);
            let hash = passwords::shadow_hash(&secret, name, &password);
            let mut out = Map::new();
            out.insert("password".into(), password.into());
            out.insert("hash".into(), hash.into());
            Ok(out.into())
        }
    );
    m
}
