//! "Did you mean …?" for mistyped recipe, host and group names.

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// For Rhai's "Function not found: uplod (Host, &str, …)": the closest function a recipe
/// can call and its signatures (`signatures` as `Engine::gen_fn_signatures` writes them,
/// `git::head(path: &str) -> Map`). When the name is right but the arguments are not,
/// the signatures it takes.
pub(crate) fn function_hint(call: &str, signatures: &[String]) -> Option<String> {
    let name = call
        .split(|c: char| c == '(' || c.is_whitespace())
        .next()
        .unwrap_or_default();
    if name.is_empty() {
        return None;
    }
    let name_of = |s: &'_ str| s.split('(').next().unwrap_or_default().to_string();
    // Only names of the same namespace: `pkg::instal` is not a typo of `apt::install`.
    let namespace = |n: &str| n.rfind("::").map(|i| n[..i].to_string());
    let names: Vec<String> = signatures
        .iter()
        .map(|s| name_of(s))
        .filter(|n| !n.contains('$') && !n.is_empty() && namespace(n) == namespace(name))
        .collect();
    let best = closest(name, names.iter().map(String::as_str))?;
    let mut matching: Vec<&str> = signatures
        .iter()
        .filter(|s| name_of(s) == best)
        .map(String::as_str)
        .collect();
    matching.sort();
    matching.dedup();
    let list = matching.join("; ");
    Some(if best == name {
        format!("`{best}` takes other arguments: {list}")
    } else {
        format!("did you mean `{best}`? {list}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistyped_function_names_the_closest_and_its_signature() {
        let sigs: Vec<String> = [
            "upload(h: Host, local: &str, remote: &str) -> ()",
            "upload(h: Host, local: &str, remote: &str, options: Map) -> ()",
            "get$name(self: Host) -> String",
            "git::head(path: &str) -> Map",
        ]
        .map(String::from)
        .to_vec();
        let hint =
            function_hint("uplod (Host, &str | ImmutableString | String, ...)", &sigs).unwrap();
        assert_eq!(
            hint,
            "did you mean `upload`? upload(h: Host, local: &str, remote: &str) -> (); upload(h: Host, local: &str, remote: &str, options: Map) -> ()"
        );
        assert!(
            function_hint("upload (i64)", &sigs)
                .unwrap()
                .starts_with("`upload` takes other arguments: ")
        );
        assert!(
            function_hint("git::haed (&str)", &sigs)
                .unwrap()
                .contains("git::head(path: &str) -> Map")
        );
        assert_eq!(function_hint("zzzzzz ()", &sigs), None);
        assert_eq!(function_hint("gut::head (&str)", &sigs), None);
        assert_eq!(function_hint("head (&str)", &sigs), None);
    }

    #[test]
    fn suggests_near_misses_only() {
        let names = ["provision", "terminate", "hosts"];
        assert_eq!(closest("provison", names), Some("provision"));
        assert_eq!(closest("zzz", names), None);
    }
}
