//! `secret("name")`: a secret for a recipe, registered with the redactor before the
//! recipe sees it. Reading, lookup and redaction live in ops/secrets.rs.

use super::glue::{function, runtime_error};
use crate::exec::run::Run;
use crate::ops::secrets;
use crate::recipe::engine::ScriptCtx;
use rhai::{EvalAltResult, FuncRegistration, Module, NativeCallContext, Position};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// The run's secrets file as read: its path and values, none configured, or why it
/// cannot be used.
type Loaded = Arc<Result<Option<(PathBuf, BTreeMap<String, String>)>, secrets::SecretsFileError>>;

/// The secrets file is read once per run, however many hosts call secret() at once;
/// keyed by run id because one process may serve more than one run (the last few are
/// kept, so runs side by side do not evict each other).
struct Cache(Mutex<Vec<(String, Loaded)>>);

/// The one cache of the process (secret() and the functions that take a secret's name).
static CACHE: Cache = Cache(Mutex::new(Vec::new()));

impl Cache {
    fn get(&self, run: &Run) -> Loaded {
        let mut slots = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, loaded)) = slots.iter().find(|(id, _)| *id == run.tag.run_id) {
            return loaded.clone();
        }
        let loaded = Arc::new(match &run.options.secrets_file {
            None => Ok(None),
            Some(path) => secrets::load_file(path).map(|values| Some((path.clone(), values))),
        });
        if slots.len() >= 16 {
            slots.remove(0);
        }
        slots.push((run.tag.run_id.clone(), loaded.clone()));
        loaded
    }
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    function!(
        &mut m,
        "secret",
        ["name: &str", "String"],
        "A secret: the environment variable FLEET_SECRET_<NAME> (`db-password` -> FLEET_SECRET_DB_PASSWORD) if set, else `name` in the secrets file (`secrets_file` in fleet.toml: TOML `name = \"value\"`, mode 0600 or 0400). From then on the value shows as *** in terminal output, logs, the journal and error messages. A missing or empty secret is an error.",
        move |ctx: NativeCallContext, name: &str| -> Result<String, Box<EvalAltResult>> {
            read(&c, name, ctx.call_position())
        }
    );
    m
}

/// The secret `name` of the current run (as `secret(name)` reads it), registered with
/// the redactor before it is returned.
pub(crate) fn read(c: &ScriptCtx, name: &str, pos: Position) -> Result<String, Box<EvalAltResult>> {
    let run = c.run()?;
    let loaded = CACHE.get(&run);
    let file = match &*loaded {
        Ok(file) => file.as_ref().map(|(path, values)| (path.as_path(), values)),
        Err(e) => return Err(runtime_error(e.to_string(), pos)),
    };
    let value = secrets::lookup(name, file, secrets::env_value)
        .map_err(|e| runtime_error(e.to_string(), pos))?;
    secrets::register(&value);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::log::RunTag;
    use crate::exec::run::RunOptions;
    use crate::exec::ui::{Ui, UiOptions};
    use std::os::unix::fs::PermissionsExt;

    fn engine_with(secrets_file: Option<PathBuf>, run_id: &str) -> (rhai::Engine, ScriptCtx) {
        let ctx = ScriptCtx::default();
        let mut engine = rhai::Engine::new();
        engine.register_global_module(module(&ctx).into());
        let run = Run::new(
            RunTag {
                run_id: run_id.to_string(),
                recipe: "test".to_string(),
            },
            Default::default(),
            RunOptions {
                secrets_file,
                ..RunOptions::default()
            },
            Ui::new(UiOptions {
                progress: false,
                color: false,
                verbosity: 0,
                json: false,
            }),
        );
        ctx.set_run(Arc::new(run));
        (engine, ctx)
    }

    fn secrets_file(dir: &std::path::Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("secrets.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn secret_reads_the_file_and_registers_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = secrets_file(dir.path(), "glue_db = \"Sg1-s3cr3t\"\n", 0o600);
        let (engine, _ctx) = engine_with(Some(path), "run-1");
        let value: String = engine.eval(r#"secret("glue_db")"#).unwrap();
        assert_eq!(value, "Sg1-s3cr3t");
        assert_eq!(secrets::redact("pw=Sg1-s3cr3t"), "pw=***");
    }

    #[test]
    fn errors_carry_the_call_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = secrets_file(dir.path(), "x = \"Sg2-unused\"\n", 0o600);
        let (engine, _ctx) = engine_with(Some(path.clone()), "run-2");
        let e = *engine
            .eval::<String>("let a = 1;\nsecret(\"glue_missing\")")
            .unwrap_err();
        assert_eq!(e.position().line(), Some(2));
        let EvalAltResult::ErrorRuntime(message, _) = e else {
            panic!("{e}")
        };
        assert_eq!(
            message.to_string(),
            format!(
                "secret `glue_missing` is not set: add it to {} or set FLEET_SECRET_GLUE_MISSING",
                path.display()
            )
        );
    }

    #[test]
    fn a_readable_secrets_file_fails_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = secrets_file(dir.path(), "glue_x = \"Sg3-never\"\n", 0o644);
        let (engine, _ctx) = engine_with(Some(path), "run-3");
        let e = engine.eval::<String>(r#"secret("glue_x")"#).unwrap_err();
        assert!(e.to_string().contains("has mode 0644"), "{e}");
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn the_file_is_read_once_per_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = secrets_file(dir.path(), "glue_once = \"Sg4-first\"\n", 0o600);
        let (engine, ctx) = engine_with(Some(path.clone()), "run-4");
        assert_eq!(
            engine.eval::<String>(r#"secret("glue_once")"#).unwrap(),
            "Sg4-first"
        );
        std::fs::write(&path, "glue_once = \"Sg4-second\"\n").unwrap();
        assert_eq!(
            engine.eval::<String>(r#"secret("glue_once")"#).unwrap(),
            "Sg4-first"
        );
        // A new run reads it again.
        let (_, other) = engine_with(Some(path), "run-5");
        ctx.set_run(other.current_run().unwrap());
        assert_eq!(
            engine.eval::<String>(r#"secret("glue_once")"#).unwrap(),
            "Sg4-second"
        );
    }

    #[test]
    fn without_a_secrets_file_the_error_says_how_to_add_one() {
        let (engine, _ctx) = engine_with(None, "run-6");
        let e = engine.eval::<String>(r#"secret("glue_none")"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("no secrets file is configured in fleet.toml"),
            "{e}"
        );
    }
}
