//! Config files from minijinja templates. Undefined variables are errors, not empty
//! strings: a typo in a template must not ship a broken config.

use serde_json::Value;

/// The variables a template sees: each of the host's inventory vars and the recipe's
/// vars by name (`{{ port }}`, the recipe's win), the same in `vars` (`{{ vars.port }}`),
/// and `host` (name, address, groups and its own inventory `vars`).
pub(crate) fn context(host: &crate::inventory::ResolvedHost, extra: Value) -> Value {
    let mut ctx = serde_json::Map::new();
    for (k, v) in &host.vars {
        ctx.insert(k.clone(), v.clone());
    }
    let extra = match extra {
        Value::Object(extra) => extra,
        _ => serde_json::Map::new(),
    };
    let mut vars = ctx.clone();
    vars.extend(extra.clone());
    ctx.insert("vars".into(), Value::Object(vars));
    ctx.insert(
        "host".into(),
        serde_json::json!({
            "name": host.name,
            "address": host.address,
            "groups": host.groups,
            "vars": host.vars,
        }),
    );
    ctx.extend(extra);
    Value::Object(ctx)
}

/// A template that minijinja cannot parse or render (an undefined variable, a syntax
/// error); its message names the template line.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(.0, .1.as_deref()))]
pub(crate) struct TemplateError(minijinja::Error, Option<String>);

impl From<minijinja::Error> for TemplateError {
    fn from(e: minijinja::Error) -> Self {
        TemplateError(e, None)
    }
}

pub(crate) fn render(name: &str, source: &str, context: &Value) -> Result<String, TemplateError> {
    render_inner(name, source, context).map_err(|e| {
        // minijinja says "undefined value"; the expression it points at names it.
        let undefined = (e.kind() == minijinja::ErrorKind::UndefinedError)
            .then(|| e.range())
            .flatten()
            .and_then(|r| source.get(r))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && s.len() <= 200 && !s.contains('\n'));
        TemplateError(e, undefined)
    })
}

fn render_inner(name: &str, source: &str, context: &Value) -> Result<String, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()?,
    );
    env.add_template(name, source)?;
    let template = env.get_template(name)?;
    template.render(to_jinja(context))
}

pub(crate) fn to_jinja(v: &Value) -> minijinja::Value {
    match v {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => minijinja::Value::from(i),
            None => minijinja::Value::from(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => minijinja::Value::from(s.as_str()),
        Value::Array(a) => minijinja::Value::from(a.iter().map(to_jinja).collect::<Vec<_>>()),
        Value::Object(o) => minijinja::Value::from(
            o.iter()
                .map(|(k, v)| (k.clone(), to_jinja(v)))
                .collect::<std::collections::BTreeMap<_, _>>(),
        ),
    }
}

/// minijinja's message (naming the undefined expression) plus the template line.
fn describe(e: &minijinja::Error, undefined: Option<&str>) -> String {
    let mut text = match undefined {
        Some(expr) => format!(
            "`{}` is undefined: the template sees the host's vars and the recipe's vars by name and in `vars`, and `host`",
            crate::ops::terminal::neutralise(expr)
        ),
        None => e.to_string(),
    };
    if let (Some(name), Some(line)) = (e.name(), e.line()) {
        let at = format!("{name}:{line}");
        if !text.contains(&at) {
            text.push_str(&format!(" (at {at})"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> crate::inventory::ResolvedHost {
        crate::inventory::ResolvedHost {
            name: "web-1".into(),
            address: "10.0.0.1".into(),
            port: None,
            user: None,
            identity_file: None,
            connection: crate::inventory::Connection::Ssh,
            groups: vec!["web".into()],
            vars: [("port".to_string(), serde_json::json!(80))]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn host_vars_and_recipe_vars_reach_the_template() {
        let ctx = context(&host(), serde_json::json!({ "port": 8080, "motd": "hi" }));
        let out = render(
            "t",
            "{{ host.name }} {{ port }} {{ motd }} {{ host.vars.port }} {{ vars.port }} {{ vars.motd }}\n",
            &ctx,
        )
        .unwrap();
        assert_eq!(out, "web-1 8080 hi 80 8080 hi\n");
    }

    #[test]
    fn an_undefined_variable_is_an_error_with_its_line() {
        let ctx = context(&host(), serde_json::json!({}));
        let err = render("motd.j2", "ok\n{{ nosuch }}\n", &ctx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`nosuch` is undefined"), "{err}");
        assert!(err.contains("motd.j2:2"), "{err}");
        let err = render("motd.j2", "{{ vars.prot }}\n", &ctx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`vars.prot` is undefined"), "{err}");
    }
}
