//! What every glue file shares: registration with signature and doc (for `fleet api`),
//! and turning failures into Rhai errors at the call's position.

use crate::outcome::HostError;
use rhai::{Dynamic, EvalAltResult, NativeCallContext, Position};

/// Registers a function with its signature and doc comment for `fleet api`.
macro_rules! function {
    ($module:expr, $name:expr, [$($param:expr),*], $doc:expr, $f:expr) => {
        FuncRegistration::new($name)
            .with_params_info([$($param),*])
            .with_comments([concat!("/// ", $doc)])
            .in_global_namespace()
            .set_into_module($module, $f)
    };
}
pub(crate) use function;

/// Like `function!`, for a static module (`git::head(…)`): the function stays in the
/// module's own namespace, so recipes must call it with the module's prefix.
macro_rules! module_function {
    ($module:expr, $name:expr, [$($param:expr),*], $doc:expr, $f:expr) => {
        FuncRegistration::new($name)
            .with_params_info([$($param),*])
            .with_comments([concat!("/// ", $doc)])
            .set_into_module($module, $f)
    };
}
pub(crate) use module_function;

/// Registers a property getter (`h.name`) with its type and doc for `fleet api`.
macro_rules! getter {
    ($module:expr, $ty:expr, $prop:expr, $ret:expr, $doc:expr, $f:expr) => {
        FuncRegistration::new(concat!("get$", $prop))
            .with_params_info([concat!("self: ", $ty), $ret])
            .with_comments([concat!("/// ", $doc)])
            .in_global_namespace()
            .set_into_module($module, $f)
    };
}

pub(crate) use getter;

/// Fixes the error type of infallible getters for type inference.
pub(crate) fn ok<T>(value: T) -> Result<T, Box<EvalAltResult>> {
    Ok(value)
}

pub(crate) fn raise(failure: HostError, ctx: &NativeCallContext) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(failure),
        ctx.call_position(),
    ))
}

pub(crate) fn usage_error(e: crate::error::Error, ctx: &NativeCallContext) -> Box<EvalAltResult> {
    let text = match &e {
        crate::error::Error::Usage {
            message,
            help: Some(h),
        } => format!("{message} ({h})"),
        other => other.to_string(),
    };
    Box::new(EvalAltResult::ErrorRuntime(
        text.into(),
        ctx.call_position(),
    ))
}

/// A plain error message at `pos`: any error of `ops/` (or a `String`) as it displays.
pub(crate) fn runtime_error(message: impl std::fmt::Display, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(message.to_string().into(), pos))
}
