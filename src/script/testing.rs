//! `assert(cond)`, `assert(cond, message)` and `assert_eq(left, right)`: the checks of
//! `fleet test` (registered for its runs only; recipes end a run with `throw`). A failed
//! check is an error at the call's position, which `fleet test` reports as file:line:col.

use super::glue::{function, runtime_error};
use rhai::{Dynamic, EvalAltResult, FuncRegistration, Module, NativeCallContext};

/// What a failed check says.
pub(crate) fn failure(message: Option<&str>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!("assertion failed: {m}"),
        _ => "assertion failed".to_string(),
    }
}

/// What a failed `assert_eq` says: both values, as Rhai's debug form shows them.
pub(crate) fn unequal(left: &Dynamic, right: &Dynamic) -> String {
    format!("assertion failed: left == right\n  left: {left:?}\n right: {right:?}")
}

pub(crate) fn module() -> Module {
    let mut m = Module::new();
    function!(
        &mut m,
        "assert",
        ["condition: bool", "()"],
        "Fails the test here when `condition` is false.",
        |ctx: NativeCallContext, condition: bool| -> Result<(), Box<EvalAltResult>> {
            if condition {
                Ok(())
            } else {
                Err(runtime_error(failure(None), ctx.call_position()))
            }
        }
    );
    function!(
        &mut m,
        "assert",
        ["condition: bool", "message: &str", "()"],
        "Fails the test here with `message` when `condition` is false.",
        |ctx: NativeCallContext,
         condition: bool,
         message: &str|
         -> Result<(), Box<EvalAltResult>> {
            if condition {
                Ok(())
            } else {
                Err(runtime_error(failure(Some(message)), ctx.call_position()))
            }
        }
    );
    function!(
        &mut m,
        "assert_eq",
        ["left: ?", "right: ?", "()"],
        "Fails the test here, showing both values, unless `left == right`.",
        |ctx: NativeCallContext, left: Dynamic, right: Dynamic| -> Result<(), Box<EvalAltResult>> {
            // Rhai's own `==`: values of different types are unequal, not an error.
            let same = left.type_id() == right.type_id()
                && ctx
                    .call_native_fn::<bool>("==", (left.clone(), right.clone()))
                    .unwrap_or(false);
            if same {
                Ok(())
            } else {
                Err(runtime_error(unequal(&left, &right), ctx.call_position()))
            }
        }
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> rhai::Engine {
        let mut e = rhai::Engine::new();
        e.register_global_module(module().into());
        e
    }

    fn error_of(script: &str) -> (String, Option<usize>, Option<usize>) {
        let err = engine().run(script).expect_err("fails");
        let pos = err.position();
        match *err {
            EvalAltResult::ErrorRuntime(v, _) => (v.to_string(), pos.line(), pos.position()),
            other => panic!("not a runtime error: {other}"),
        }
    }

    #[test]
    fn passing_checks_pass() {
        engine()
            .run(r#"assert(true); assert(1 < 2, "order"); assert_eq([1, "a"], [1, "a"]); assert_eq(#{a: 1}, #{a: 1});"#)
            .unwrap();
    }

    #[test]
    fn a_failed_check_says_what_and_where() {
        assert_eq!(
            error_of("let x = 1;\n  assert(x == 2);"),
            ("assertion failed".to_string(), Some(2), Some(3))
        );
        assert_eq!(
            error_of(r#"assert(false, "the site answers")"#).0,
            "assertion failed: the site answers"
        );
        let (text, line, _) = error_of("\nassert_eq(\"ok\", 1)");
        assert_eq!(
            text,
            "assertion failed: left == right\n  left: \"ok\"\n right: 1"
        );
        assert_eq!(line, Some(2));
        assert!(error_of("assert_eq(1, 1.0)").0.contains("left: 1"));
    }
}
