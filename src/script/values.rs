//! Converting between fleet's values (JSON variables) and Rhai's, and reading option maps.

use rhai::{Dynamic, EvalAltResult, Map, Position};

pub(crate) fn from_json(value: &serde_json::Value) -> Dynamic {
    use serde_json::Value;
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from(i),
            None => Dynamic::from(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(a) => Dynamic::from_array(a.iter().map(from_json).collect()),
        Value::Object(o) => Dynamic::from_map(
            o.iter()
                .map(|(k, v)| (k.as_str().into(), from_json(v)))
                .collect(),
        ),
    }
}

/// Rhai value -> a typed value through serde, with the field named on error.
pub(crate) fn from_rhai<T: serde::de::DeserializeOwned>(
    value: &Dynamic,
    what: &str,
    pos: Position,
) -> Result<T, Box<EvalAltResult>> {
    let json: serde_json::Value = rhai::serde::from_dynamic(value)
        .map_err(|e| super::glue::runtime_error(format!("{what}: {e}"), pos))?;
    // The path names the field: `spec.user_data.packages[1]: invalid type: …`.
    serde_path_to_error::deserialize(json).map_err(|e| {
        let at = e.path().to_string();
        let at = if at == "." {
            String::new()
        } else {
            format!(" `{at}`")
        };
        super::glue::runtime_error(format!("{what}{at}: {}", e.inner()), pos)
    })
}

/// Reads an options map into `T`, a serde struct with `deny_unknown_fields` defined in
/// ops/ next to what it fills. A key `T` does not know is refused with the known ones
/// (a typo in `allow_fial` must not silently run without the option); a bad value names
/// the function and the key.
pub(crate) fn read_options<T: serde::de::DeserializeOwned>(
    map: &Map,
    function: &str,
    pos: Position,
) -> Result<T, Box<EvalAltResult>> {
    let known = fields::<T>();
    if let Some(key) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(super::glue::runtime_error(
            format!(
                "unknown option `{key}` for {function}(); known options: {}",
                known.join(", ")
            ),
            pos,
        ));
    }
    let json: serde_json::Value = rhai::serde::from_dynamic(&Dynamic::from_map(map.clone()))
        .map_err(|e| super::glue::runtime_error(format!("{function}(): {e}"), pos))?;
    serde_path_to_error::deserialize(json).map_err(|e| {
        let message = match e.path().to_string().as_str() {
            "." => format!("{function}(): {}", e.inner()),
            key => format!("option `{key}` of {function}(): {}", e.inner()),
        };
        super::glue::runtime_error(message, pos)
    })
}

/// The field names of a serde struct, in declaration order: the struct's `Deserialize`
/// names them when it asks for a struct, which this deserializer answers with an error.
fn fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{Error, Visitor, value};
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, value::Error> {
            Err(value::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, value::Error> {
            *self.0 = fields;
            Err(value::Error::custom("probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::remote::RunOptions;

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect()
    }

    fn error(r: Result<RunOptions, Box<EvalAltResult>>) -> String {
        match *r.unwrap_err() {
            EvalAltResult::ErrorRuntime(d, _) => d.to_string(),
            other => other.to_string(),
        }
    }

    #[test]
    fn option_maps_fill_the_struct_and_refuse_unknown_keys_naming_the_known_ones() {
        let o: RunOptions = read_options(
            &map(&[("allow_fail", true.into()), ("timeout", Dynamic::from(1.5))]),
            "run",
            Position::NONE,
        )
        .unwrap();
        assert!(o.allow_fail);
        assert_eq!(o.timeout, Some(std::time::Duration::from_millis(1500)));
        let e = error(read_options(
            &map(&[("allow_fial", true.into())]),
            "run",
            Position::NONE,
        ));
        assert_eq!(
            e,
            "unknown option `allow_fial` for run(); known options: allow_fail, timeout, changed, sudo"
        );
    }

    #[test]
    fn bad_option_values_name_the_function_and_the_key() {
        let e = error(read_options(
            &map(&[("timeout", Dynamic::from(-1 as rhai::INT))]),
            "sudo",
            Position::NONE,
        ));
        assert_eq!(
            e,
            "option `timeout` of sudo(): must be a positive number of seconds"
        );
        let e = error(read_options(
            &map(&[("allow_fail", "yes".into())]),
            "run",
            Position::NONE,
        ));
        assert!(
            e.starts_with("option `allow_fail` of run(): invalid type"),
            "{e}"
        );
    }
}
