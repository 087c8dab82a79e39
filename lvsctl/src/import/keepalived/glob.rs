//! Shell patterns in `include` lines: which files of a [`Source`] a pattern matches.

use std::io;
use std::path::{Component, Path, PathBuf};

use super::error::ListError;
use super::source::Source;

pub(super) fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The files a glob pattern matches, sorted; `*` and `?` do not match a leading `.`.
pub(super) fn expand(src: &dyn Source, pattern: &Path) -> Result<Vec<PathBuf>, ListError> {
    let parts: Vec<Component> = pattern.components().collect();
    let mut found = vec![PathBuf::new()];
    for (i, c) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let Component::Normal(name) = c else {
            for f in &mut found {
                f.push(c.as_os_str());
            }
            continue;
        };
        let name = name.to_string_lossy();
        if !has_glob(&name) {
            for f in &mut found {
                f.push(name.as_ref());
            }
            continue;
        }
        let mut next = Vec::new();
        for f in &found {
            let entries = match src.list(f) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => {
                    return Err(ListError {
                        dir: f.clone(),
                        err,
                    })
                }
            };
            let mut names: Vec<String> = entries
                .into_iter()
                .filter(|(n, is_dir)| {
                    (last || *is_dir)
                        && (!n.starts_with('.') || name.starts_with('.'))
                        && fnmatch(&name, n)
                })
                .map(|(n, _)| n)
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| f.join(n)));
        }
        found = next;
    }
    Ok(found)
}

/// Shell pattern matching of one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`, `\x`.
fn fnmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => Some(pi + 1),
                '[' => class(&p, pi, n[ni]),
                '\\' if pi + 1 < p.len() => (p[pi + 1] == n[ni]).then_some(pi + 2),
                c => (c == n[ni]).then_some(pi + 1),
            }
        } else {
            None
        };
        match step {
            Some(next) => {
                pi = next;
                ni += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches `c` against the bracket expression at `p[start]`; the index after it on a match. An
/// unterminated `[` is a literal.
fn class(p: &[char], start: usize, c: char) -> Option<usize> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() && (first || p[i] != ']') {
        first = false;
        let lo = p[i];
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if lo <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if lo == c {
                matched = true;
            }
            i += 1;
        }
    }
    if i >= p.len() {
        return ('[' == c).then_some(start + 1);
    }
    (matched != negate).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_the_shell() {
        let cases = [
            ("*.conf", "web.conf", true),
            ("*.conf", "web.conf.disabled", false),
            ("[0-9]?-*.conf", "10-web.conf", true),
            ("[!0-9]*", "10-web.conf", false),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("*", "", true),
            ("[", "[", true),
            ("*a*b", "xaxxb", true),
            ("*a*b", "xaxxc", false),
        ];
        for (pattern, name, matches) in cases {
            assert_eq!(
                fnmatch(pattern, name),
                matches,
                "{pattern:?} against {name:?}"
            );
        }
    }
}
