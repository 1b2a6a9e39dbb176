//! Control characters made visible in the human formats, as git and ripgrep show them: a
//! list line, a checks-file entry or a server's certificate must not move the cursor,
//! retitle the terminal or split a result over two lines. JSON stays exact.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every C0 and C1 control character and DEL (`char::is_control`) written as `\xNN`.
pub(crate) fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(shown, "\\x{:02x}", u32::from(c));
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_the_rest_kept() {
        assert_eq!(visible("http://a.test/"), "http://a.test/");
        assert_eq!(
            visible("x\r\x1b[2KOK 200\n\u{7f}\u{9b}ü"),
            "x\\x0d\\x1b[2KOK 200\\x0a\\x7f\\x9bü"
        );
    }
}
