//! `table(rows)`: recipes print aligned tables of what they gathered.

use super::glue::function;
use rhai::{Array, Dynamic, EvalAltResult, FuncRegistration, Map, Module};

fn cell(v: Option<&Dynamic>) -> String {
    match v {
        None => String::new(),
        Some(v) if v.is_unit() => String::new(),
        Some(v) => v.to_string(),
    }
}

fn render(rows: Array, columns: Vec<String>) -> Result<String, Box<EvalAltResult>> {
    let maps: Vec<Map> = rows
        .into_iter()
        .filter(|r| !r.is_unit())
        .map(|r| {
            let t = r.type_name().to_string();
            r.try_cast::<Map>()
                .ok_or_else(|| format!("table() rows must be object maps, not {t}").into())
        })
        .collect::<Result<_, Box<EvalAltResult>>>()?;
    let body: Vec<Vec<String>> = maps
        .iter()
        .map(|m| columns.iter().map(|c| cell(m.get(c.as_str()))).collect())
        .collect();
    Ok(crate::table::render(&columns, &body).trim_end().to_string())
}

pub(crate) fn module() -> Module {
    let mut m = Module::new();
    function!(
        &mut m,
        "table",
        ["rows: Array", "columns: Array", "String"],
        "An aligned text table of object maps, with the given columns in order; `()` rows (hosts that failed) are left out.",
        |rows: Array, columns: Array| -> Result<String, Box<EvalAltResult>> {
            render(rows, columns.into_iter().map(|c| c.to_string()).collect())
        }
    );
    function!(
        &mut m,
        "table",
        ["rows: Array", "String"],
        "An aligned text table of object maps; columns are the keys of the first row, sorted.",
        |rows: Array| -> Result<String, Box<EvalAltResult>> {
            let columns = rows
                .iter()
                .find_map(|r| {
                    r.read_lock::<Map>()
                        .map(|m| m.keys().map(|k| k.to_string()).collect())
                })
                .unwrap_or_default();
            render(rows, columns)
        }
    );
    m
}
