//! Small text helpers shared by messages.

pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A value as an error message quotes it: control characters escaped (so it stays one
/// line and cannot steer a terminal), cut after 80 characters.
pub(crate) fn shown(value: &str) -> String {
    let escaped: String = value
        .chars()
        .flat_map(|c| {
            let e: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            e
        })
        .collect();
    match escaped.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &escaped[..i]),
        None => escaped,
    }
}

/// `text` cut to `width` characters, the last of them `…` when it was cut.
pub(crate) fn truncate_display(text: &str, width: usize) -> String {
    match text.char_indices().nth(width.saturating_sub(1)) {
        Some((i, _)) if text.chars().count() > width => format!("{}…", &text[..i]),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_to_its_width() {
        assert_eq!(truncate_display("short", 10), "short");
        assert_eq!(truncate_display("exactly-10", 10), "exactly-10");
        assert_eq!(truncate_display("all -- apt-get update", 10), "all -- ap…");
        assert_eq!(truncate_display("äöüäöüäöüäöü", 4), "äöü…");
    }

    #[test]
    fn shown_values_stay_on_one_line() {
        assert_eq!(shown("Bad_Name!"), "Bad_Name!");
        assert_eq!(shown("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
        assert_eq!(shown(&"x".repeat(90)), format!("{}…", "x".repeat(80)));
    }
}
