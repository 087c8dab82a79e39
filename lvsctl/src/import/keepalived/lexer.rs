//! The lexer: keepalived.conf lines to words, braces and line ends, with `include` lines
//! expanded in place (nested, globbed, cycles refused) and the lines keepalived evaluates
//! (`$NAME=...`, `@ID ...`) warned about and left out.

use std::io;
use std::path::{Path, PathBuf};

use super::error::{Error, Problem};
use super::glob::{expand, has_glob};
use super::source::{lexical, Pos, Source};

/// Includes nested deeper than this are refused.
const MAX_INCLUDE_DEPTH: usize = 32;
/// Files opened in one import, includes counted.
const MAX_FILES: usize = 1000;

#[derive(Debug, PartialEq)]
pub(super) enum Tok {
    Word(String),
    Open,
    Close,
    Eol,
}

/// The tokens of a file and its includes, with the names of the files read and the warnings.
pub(super) struct Lexer<'a> {
    src: &'a dyn Source,
    pub files: Vec<String>,
    /// Canonical paths of the files being read, outermost first.
    stack: Vec<PathBuf>,
    pub toks: Vec<(Tok, Pos)>,
    pub warnings: Vec<String>,
}

/// keepalived's include keywords; this importer reads them all alike.
const INCLUDES: [&str; 6] = [
    "include", "includer", "includem", "includew", "includeb", "includea",
];

impl<'a> Lexer<'a> {
    /// A lexer reading through `src`; `path` (if the text is a file) starts the include chain.
    pub fn new(src: &'a dyn Source, path: Option<&Path>) -> Self {
        Lexer {
            src,
            files: Vec::new(),
            stack: path.map(|p| src.canonical(p)).into_iter().collect(),
            toks: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn at(&self, pos: Pos) -> String {
        pos.at(&self.files)
    }

    fn error(&self, pos: Pos, problem: Problem) -> Error {
        pos.error(&self.files, problem)
    }

    /// Reads `text` (named `name`, includes relative to `dir`) at include depth `depth`.
    pub fn file(
        &mut self,
        name: String,
        dir: &Path,
        text: &str,
        depth: usize,
    ) -> Result<(), Error> {
        if self.files.len() >= MAX_FILES {
            return Err(Error::TooManyFiles {
                name,
                limit: MAX_FILES,
            });
        }
        let file = self.files.len();
        self.files.push(name);
        for (i, raw) in text.lines().enumerate() {
            let pos = Pos { file, line: i + 1 };
            let words = split_line(raw).map_err(|p| self.error(pos, p))?;
            let Some((first, _)) = words.first() else {
                continue;
            };
            if INCLUDES.contains(&first.as_str()) {
                self.include(pos, &words, dir, depth)?;
                continue;
            }
            if first.starts_with('$') && first.contains('=') {
                let at = self.at(pos);
                self.warnings.push(format!(
                    "{at}: parameter definitions ({first}) are not supported; line left out"
                ));
                continue;
            }
            if let Some(id) = first.strip_prefix('@') {
                let at = self.at(pos);
                if words.iter().any(|(_, brace)| *brace) {
                    return Err(self.error(pos, Problem::ConditionalBrace(id.to_string())));
                }
                self.warnings.push(format!(
                    "{at}: conditional configuration (@{id}) is not supported; line left out"
                ));
                continue;
            }
            for (w, brace) in words {
                let t = match (brace, w.as_str()) {
                    (true, "{") => Tok::Open,
                    (true, _) => Tok::Close,
                    (false, _) => Tok::Word(w),
                };
                self.toks.push((t, pos));
            }
            self.toks.push((Tok::Eol, pos));
        }
        Ok(())
    }

    fn include(
        &mut self,
        pos: Pos,
        words: &[(String, bool)],
        dir: &Path,
        depth: usize,
    ) -> Result<(), Error> {
        let at = self.at(pos);
        let kw = words[0].0.clone();
        if words.iter().any(|(_, brace)| *brace) {
            return Err(self.error(pos, Problem::IncludeBrace { kw }));
        }
        let pattern = match words {
            [_, p] => p.0.clone(),
            [_] => return Err(self.error(pos, Problem::IncludeWithoutPattern { kw })),
            [_, p, ..] => {
                self.warnings.push(format!(
                    "{at}: {kw}: only one pattern is read; {:?} left out",
                    words[2..]
                        .iter()
                        .map(|w| w.0.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
                p.0.clone()
            }
            [] => unreachable!("the keyword is there"),
        };
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(self.error(
                pos,
                Problem::IncludeTooDeep {
                    kw,
                    pattern,
                    limit: MAX_INCLUDE_DEPTH,
                },
            ));
        }
        let full = dir.join(&pattern);
        let paths = if has_glob(&pattern) {
            expand(self.src, &full).map_err(|err| {
                let (kw, pattern) = (kw.clone(), pattern.clone());
                self.error(pos, Problem::IncludeList { kw, pattern, err })
            })?
        } else {
            vec![full]
        };
        let mut any = false;
        for p in paths {
            let canon = self.src.canonical(&p);
            if let Some(i) = self.stack.iter().position(|c| *c == canon) {
                let mut chain: Vec<String> = self.stack[i..]
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect();
                chain.push(canon.display().to_string());
                return Err(self.error(pos, Problem::IncludeCycle { kw, pattern, chain }));
            }
            let text = match self.src.read(&p) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => {
                    let path = p.display().to_string();
                    return Err(self.error(
                        pos,
                        Problem::IncludeRead {
                            kw,
                            pattern,
                            path,
                            err,
                        },
                    ));
                }
            };
            any = true;
            self.stack.push(canon);
            let sub = p.parent().unwrap_or(Path::new("")).to_path_buf();
            self.file(lexical(&p).display().to_string(), &sub, &text, depth + 1)?;
            self.stack.pop();
        }
        if !any {
            self.warnings.push(format!(
                "{at}: {kw} {pattern}: no file matches; nothing included"
            ));
        }
        Ok(())
    }
}

/// One line's words (`true` marks `{` and `}`), comments removed and quotes resolved.
fn split_line(raw: &str) -> Result<Vec<(String, bool)>, Problem> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' | '!' => break,
            '{' | '}' => {
                if in_word {
                    out.push((std::mem::take(&mut cur), false));
                    in_word = false;
                }
                out.push((c.to_string(), true));
            }
            '"' | '\'' => {
                in_word = true;
                let mut closed = false;
                while let Some(q) = chars.next() {
                    if q == c {
                        closed = true;
                        break;
                    }
                    if q == '\\' {
                        escape(&mut chars, &mut cur);
                    } else {
                        cur.push(q);
                    }
                }
                if !closed {
                    return Err(Problem::UnterminatedQuote(c));
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push((std::mem::take(&mut cur), false));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push((cur, false));
    }
    Ok(out)
}

/// A backslash escape inside quotes, as keepalived reads them.
fn escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String) {
    let Some(c) = chars.next() else {
        out.push('\\');
        return;
    };
    let simple = match c {
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'E' => Some('\x1b'),
        'f' => Some('\x0c'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0b'),
        _ => None,
    };
    if let Some(s) = simple {
        out.push(s);
        return;
    }
    match c {
        'x' => {
            let mut v = 0u32;
            let mut n = 0;
            while n < 2 {
                match chars.peek().and_then(|d| d.to_digit(16)) {
                    Some(d) => {
                        v = v * 16 + d;
                        chars.next();
                        n += 1;
                    }
                    None => break,
                }
            }
            if n == 0 {
                out.push('x');
            } else {
                out.push(char::from_u32(v).unwrap_or('?'));
            }
        }
        '0'..='7' => {
            let mut v = c.to_digit(8).unwrap_or(0);
            let mut n = 1;
            while n < 3 {
                match chars.peek().and_then(|d| d.to_digit(8)) {
                    Some(d) => {
                        v = v * 8 + d;
                        chars.next();
                        n += 1;
                    }
                    None => break,
                }
            }
            out.push(char::from_u32(v).unwrap_or('?'));
        }
        'c' => match chars.next() {
            Some(k) => {
                out.push(char::from_u32((k.to_ascii_uppercase() as u32) ^ 0x40).unwrap_or('?'))
            }
            None => out.push('c'),
        },
        other => out.push(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_comments_quotes_and_braces() {
        assert_eq!(
            split_line(r#"  real_server 10.0.0.1 80{ # comment"#).unwrap(),
            vec![
                ("real_server".into(), false),
                ("10.0.0.1".into(), false),
                ("80".into(), false),
                ("{".into(), true)
            ]
        );
        assert_eq!(
            split_line(r#"misc_path "/bin/check 'a b'" ! rest"#).unwrap(),
            vec![
                ("misc_path".into(), false),
                ("/bin/check 'a b'".into(), false)
            ]
        );
        assert_eq!(
            split_line(r#"x ab"c d"e "\x41\t\"" '#'"#).unwrap(),
            vec![
                ("x".into(), false),
                ("abc de".into(), false),
                ("A\t\"".into(), false),
                ("#".into(), false)
            ]
        );
        assert!(split_line(r#"path "/x"#)
            .unwrap_err()
            .to_string()
            .contains("unterminated"));
    }
}
