//! A Lua 5.4 tokenizer that knows just enough to find functions in source text: names,
//! keywords, strings, numbers, comments and long brackets, with the byte span and line of
//! each token. It never fails: text Lua would reject still yields tokens (the compiler, not
//! this, reports syntax errors).

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An identifier (`sq`, `_ENV`).
    Name,
    /// A reserved word (`function`, `end`, ...).
    Keyword,
    /// A string literal, short or long.
    Str,
    Number,
    /// An operator or punctuation (`(`, `..`, `==`, `::`).
    Symbol,
}

/// One token of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    /// Byte offsets of the token in the source.
    pub start: usize,
    pub end: usize,
    /// Line (1-based) where the token starts.
    pub line: u32,
}

impl Token {
    /// The token's text.
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        &src[self.start..self.end]
    }

    /// Whether this is the keyword or symbol `s`.
    pub fn is(&self, src: &str, s: &str) -> bool {
        matches!(self.kind, Kind::Keyword | Kind::Symbol) && self.text(src) == s
    }
}

const KEYWORDS: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
];

/// Whether `s` is a Lua reserved word.
pub fn is_keyword(s: &str) -> bool {
    KEYWORDS.contains(&s)
}

/// Whether `s` can be used as a Lua name (an identifier that is not a reserved word).
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !is_keyword(s)
}

/// The level of a long bracket opening at `i` (`[[` is 0, `[==[` is 2), if one opens there.
fn long_bracket(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut j = i + 1;
    while b.get(j) == Some(&b'=') {
        j += 1;
    }
    (b.get(j) == Some(&b'[')).then_some(j - i - 1)
}

/// Where the long bracket of `level` that starts at `i` ends (just past its `]==]`), counting
/// the newlines it spans.
fn skip_long(b: &[u8], i: usize, level: usize, line: &mut u32) -> usize {
    let mut j = i + level + 2;
    while j < b.len() {
        match b[j] {
            b'\n' => *line += 1,
            b']' => {
                let eqs = b[j + 1..].iter().take_while(|c| **c == b'=').count();
                if eqs == level && b.get(j + 1 + eqs) == Some(&b']') {
                    return j + level + 2;
                }
            }
            _ => {}
        }
        j += 1;
    }
    b.len()
}

/// Splits `src` into tokens (comments and whitespace dropped).
pub fn tokenize(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1u32;
    // A first line starting with '#' is skipped by Lua (a shebang).
    if b.first() == Some(&b'#') {
        while i < b.len() && b[i] != b'\n' {
            i += 1;
        }
    }
    while i < b.len() {
        let c = b[i];
        let start = i;
        let start_line = line;
        let kind;
        match c {
            b'\n' => {
                line += 1;
                i += 1;
                continue;
            }
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                if let Some(level) = long_bracket(b, i + 2) {
                    i = skip_long(b, i + 2, level, &mut line);
                } else {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                continue;
            }
            b'[' if long_bracket(b, i).is_some() => {
                let level = long_bracket(b, i).unwrap_or(0);
                i = skip_long(b, i, level, &mut line);
                kind = Kind::Str;
            }
            b'"' | b'\'' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    match b[i] {
                        b'\\' => {
                            // `\` then a newline continues the string on the next line; `\z`
                            // skips whitespace (newlines included).
                            if b.get(i + 1) == Some(&b'\n') {
                                line += 1;
                            }
                            i += 2;
                            continue;
                        }
                        b'\n' => break, // unfinished string: Lua rejects it anyway
                        _ => i += 1,
                    }
                }
                i = (i + 1).min(b.len());
                kind = Kind::Str;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80)
                {
                    i += 1;
                }
                kind = if is_keyword(&src[start..i]) {
                    Kind::Keyword
                } else {
                    Kind::Name
                };
            }
            c if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let hex = c == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X'));
                i += 1;
                while i < b.len() {
                    let d = b[i];
                    let exponent = if hex {
                        matches!(b[i - 1], b'p' | b'P')
                    } else {
                        matches!(b[i - 1], b'e' | b'E')
                    };
                    if d.is_ascii_alphanumeric()
                        || d == b'.'
                        || (exponent && (d == b'+' || d == b'-'))
                    {
                        i += 1;
                    } else {
                        break;
                    }
                }
                kind = Kind::Number;
            }
            _ => {
                const THREE: &[&str] = &["..."];
                const TWO: &[&str] = &["..", "==", "~=", "<=", ">=", "//", "::", "<<", ">>"];
                let rest = &src[i..];
                let n = if THREE.iter().any(|s| rest.starts_with(s)) {
                    3
                } else if TWO.iter().any(|s| rest.starts_with(s)) {
                    2
                } else {
                    rest.chars().next().map(char::len_utf8).unwrap_or(1)
                };
                i += n;
                kind = Kind::Symbol;
            }
        }
        out.push(Token {
            kind,
            start,
            end: i,
            line: start_line,
        });
    }
    out
}

/// The index of the `end` that closes the block opened by the `function` at `open`.
pub fn matching_end(src: &str, toks: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.kind != Kind::Keyword {
            continue;
        }
        match t.text(src) {
            // `while ... do` and `for ... do` open their block at `do`.
            "function" | "if" | "do" => depth += 1,
            "end" => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<&str> {
        tokenize(src).iter().map(|t| t.text(src)).collect()
    }

    #[test]
    fn strings_comments_and_long_brackets_are_single_tokens() {
        let src = "local s = 'a\\'b' -- note\nlocal t = [==[x]]\n]==] --[[ long\ncomment ]] x = 0x1p4 .. 1e-3";
        assert_eq!(
            texts(src),
            vec![
                "local",
                "s",
                "=",
                "'a\\'b'",
                "local",
                "t",
                "=",
                "[==[x]]\n]==]",
                "x",
                "=",
                "0x1p4",
                "..",
                "1e-3"
            ]
        );
        let toks = tokenize(src);
        assert_eq!(toks[4].line, 2);
        assert_eq!(
            toks[8].line, 4,
            "lines count inside long strings and comments"
        );
    }

    #[test]
    fn blocks_match_their_end() {
        let src = "function f(x) if x then for i = 1, 2 do end end while true do end return function() end end x = 1";
        let toks = tokenize(src);
        let end = matching_end(src, &toks, 0).unwrap();
        assert_eq!(toks[end + 1].text(src), "x");
        let inner = toks
            .iter()
            .rposition(|t| t.text(src) == "function")
            .unwrap();
        assert_eq!(matching_end(src, &toks, inner), Some(end - 1));
    }

    #[test]
    fn names_and_keywords() {
        assert!(is_name("sq") && is_name("_ENV") && is_name("x1"));
        assert!(!is_name("end") && !is_name("1x") && !is_name("a-b") && !is_name(""));
    }
}
