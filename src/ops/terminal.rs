//! Untrusted text (host output, inventory and recipe values) on the operator's terminal.
//!
//! A host that prints `ESC ] 52 ; c ; … BEL` writes the operator's clipboard, `ESC ] 0 ;`
//! sets the window title, CSI sequences move the cursor or hide what was printed, and a
//! lone carriage return overwrites a line. So every control character except newline and
//! tab is shown as visible text instead: C0 characters and DEL in caret notation (`ESC`
//! becomes `^[`, `BEL` `^G`, a lone `CR` `^M`, `DEL` `^?`), C1 characters as `<U+009B>`.
//! A `CR` right before a newline (CRLF line ends) is kept: it cannot hide anything.
//! Logs and the journal keep the raw text (JSON escapes it); only terminal edges call this.

use std::borrow::Cow;

/// `text` with its control characters made visible; borrowed when there are none.
pub(crate) fn neutralise(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match visible(c, chars.peek().copied()) {
            Some(shown) => out.push_str(&shown),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Where byte `offset` of `text` lands in `neutralise(text)`, so that a position in a
/// file (an error's span) still points at the same character once the file is shown.
pub(crate) fn neutralised_offset(text: &str, offset: usize) -> usize {
    let mut shifted = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if at >= offset {
            break;
        }
        shifted += match visible(c, chars.peek().map(|(_, n)| *n)) {
            Some(shown) => shown.len(),
            None => c.len_utf8(),
        };
    }
    shifted + offset.saturating_sub(text.len())
}

fn is_control(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// The visible form of `c` (followed by `next`), or None when it is shown as it is.
fn visible(c: char, next: Option<char>) -> Option<String> {
    if !is_control(c) || (c == '\r' && next == Some('\n')) {
        return None;
    }
    Some(match c as u32 {
        0x7f => "^?".to_string(),
        n @ 0..0x20 => format!("^{}", char::from(b'@' + n as u8)),
        n => format!("<U+{n:04X}>"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_output_escape_sequences_are_neutralised() {
        let clipboard = "\x1b]52;c;ZXZpbA==\x07";
        assert_eq!(neutralise(clipboard), "^[]52;c;ZXZpbA==^G");
        assert_eq!(neutralise("\x1b]0;title\x1b\\"), "^[]0;title^[\\");
        assert_eq!(neutralise("\x1b[2J\x1b[1A"), "^[[2J^[[1A");
        // C1 controls: CSI as one character, and DEL.
        assert_eq!(neutralise("a\u{9b}31mb\x7f"), "a<U+009B>31mb^?");
        assert_eq!(neutralise("\0\x01"), "^@^A");
        assert!(!neutralise(clipboard).contains('\x1b'));
    }

    #[test]
    fn newlines_tabs_and_crlf_stay_a_lone_cr_does_not() {
        assert!(matches!(neutralise("a\tb\nc"), Cow::Borrowed(_)));
        assert_eq!(neutralise("a\r\nb\r\n"), "a\r\nb\r\n");
        assert_eq!(neutralise("secret\rfake"), "secret^Mfake");
        assert_eq!(neutralise("end\r"), "end^M");
        assert_eq!(neutralise("é ü ✓"), "é ü ✓");
    }

    #[test]
    fn offsets_follow_the_replacements() {
        let text = "a\x1bb\u{9b}c\r\nd";
        let shown = neutralise(text);
        for (at, c) in text.char_indices().filter(|(_, c)| c.is_alphabetic()) {
            let mapped = neutralised_offset(text, at);
            assert_eq!(shown[mapped..].chars().next(), Some(c), "offset {at}");
        }
        assert_eq!(neutralised_offset(text, text.len()), shown.len());
        assert_eq!(neutralised_offset("ab", 0), 0);
    }
}
