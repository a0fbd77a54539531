//! Text that arrived from the network, made safe to show: a peer must not be able to forge
//! log lines (a newline) or drive a terminal (an escape sequence) through a message type, an
//! object name or an error message.

use std::borrow::Cow;

/// For one log line: every control character escaped as Rust writes it (`\n`, `\u{1b}`);
/// everything else, Unicode included, unchanged.
pub fn log_safe(s: &str) -> Cow<'_, str> {
    escape(s, |_| true)
}

/// For a terminal: control characters escaped, except newlines and tabs, which multi-line
/// messages (tracebacks) keep.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    escape(s, |c| c != '\n' && c != '\t')
}

fn escape(s: &str, escaped: impl Fn(char) -> bool) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() && escaped(c);
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        let evil = "ok\nFAKE line\r\u{1b}[2J\tdone é ✓";
        assert_eq!(log_safe(evil), "ok\\nFAKE line\\r\\u{1b}[2J\\tdone é ✓");
        assert_eq!(terminal_safe(evil), "ok\nFAKE line\\r\\u{1b}[2J\tdone é ✓");
        assert!(matches!(log_safe("plain text"), Cow::Borrowed(_)));
        assert!(!log_safe("\u{7f}\u{9b}").chars().any(char::is_control));
    }
}
