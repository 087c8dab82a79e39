//! `lvsctl import keepalived FILE`: turns a keepalived.conf (with its `include` files) into the
//! TOML that `lvsctl apply` takes. What cannot be mapped is reported as `FILE:LINE: ...` (the file
//! and line of the keyword, also inside included files) and left out.
//!
//! # Reading
//!
//! keepalived's syntax: `#` and `!` start a comment anywhere outside quotes; `{` and `}` are words
//! of their own and a block may open on the keyword's line or at the start of the next one; `"` and
//! `'` quote (the quotes are removed, whitespace inside is kept, `\` escapes as in keepalived);
//! `include GLOB` (and `includer`, `includea`, ...) pulls files in where it stands, relative to the
//! including file's directory, with `*`, `?` and `[...]` patterns, matches in sorted order, nested,
//! with include cycles refused. A file that cannot be read, an unterminated quote, a `{` that is
//! never closed or a `}` without a `{` is an error naming the file and line. `$NAME=...` parameter
//! definitions and `@ID` conditional lines are not evaluated (warned and left out).
//!
//! # Mapping
//!
//! * `virtual_server ADDR [PORT]` (IPv4 or IPv6) → a `tcp`/`udp`/`sctp` service after `protocol`
//!   (default TCP); `virtual_server fwmark N` → `fwmark/N`, IPv6 (`fwmark6/N`) when `ip_family
//!   inet6` says so or else the first real (or sorry) server is IPv6; `virtual_server group NAME` →
//!   one service per entry of `virtual_server_group NAME` (addresses, `A-B` / `A/nn` ranges of up
//!   to 256 addresses, `fwmark N [inet|inet6]`), all with the same settings and real servers.
//! * `lb_algo` / `lvs_sched` → scheduler; `sh-port`, `mh-port`, `flag-2` → flag `port`;
//!   `sh-fallback`, `mh-fallback`, `flag-1` → flag `fallback` (dropped with a warning under other
//!   schedulers); `ops` → `one_packet` (UDP and fwmark only).
//! * `lb_kind` / `lvs_method` NAT | DR | TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum] →
//!   each real server's `forward` (masq, dr, tunnel), keepalived's default being NAT; a
//!   real_server's own `lvs_method` wins. `sorry_server ADDR [PORT]` → `sorry_server`, forwarded
//!   by `sorry_server_lvs_method` or else the service's method.
//! * `persistence_timeout [N]` (360 without a value, none with 0) → `persistence.timeout`;
//!   `persistence_granularity` (IPv4 netmask, IPv6 prefix length) → `persistence.netmask`.
//! * `real_server ADDR [PORT]` (port defaults to the service's, 0 for fwmark) with `weight`,
//!   `uthreshold`, `lthreshold`.
//! * Checkers: `TCP_CHECK` → tcp, `HTTP_GET` → http, `SSL_GET` → https (first `url`: `path`,
//!   `status_code` (one code or range; several that join into one range are merged), `virtualhost`
//!   → host, a `regex` without regex syntax → body_contains), `DNS_CHECK` → dns (`type`, default
//!   SOA; `name`, default `.`), `MISC_CHECK` → exec (`misc_path` split into argv like keepalived
//!   does, the real server's address in it replaced by `{address}`; `misc_timeout` → timeout).
//!   `connect_port` → port, `connect_timeout` (default 5 s) → timeout, `delay_loop` (default 60 s)
//!   → interval, `retry` / `nb_get_retry` (default 1; DNS 3, MISC 0) → fall = retry + 1, rise = 1
//!   (keepalived brings a server back after one good check), `inhibit_on_failure` → on_failure
//!   quiesce, else remove (keepalived's default). Like keepalived, a setting in the virtual_server
//!   is the default for its real servers, and a real server's for its checkers.
//! * lvs-director has one health check per service, keepalived checkers per real server: the
//!   service takes the check of the first real server that has a mappable checker (its first one;
//!   further checkers of a real server are warned about). Every other real server whose check maps
//!   to something different (another kind, port, path, timer, on_failure, ...) or that has no
//!   checker gets a warning naming what differs, since the service's check applies to it as well.
//!   A check with nothing to probe (no `connect_port` while a real server has port 0, as under
//!   fwmark services) is left out with a warning, since it could only fail.
//! * `vrrp_instance`: a note that VRRP is replaced by the leader holding the VIPs; its
//!   `virtual_ipaddress` (and `_excluded`) entries `ADDR[/PREFIX] [dev IF]` become a `[[vip_group]]`
//!   named after the instance on `dev` or else the instance's `interface` (one group per interface;
//!   a bare address gets a host prefix). `vrrp_sync_group`, `vrrp_script` and the rest: notes.
//! * `global_defs { lvs_sync_daemon IF [[inst] VI] [id N] [port P] [ttl T] [group ADDR] }` →
//!   `[sync]` (multicast; the sync id defaults to the instance's virtual_router_id, as keepalived
//!   does); every other global_defs keyword is warned about.
//!
//! Anything else (quorum, hysteresis, alpha, omega, ha_suspend, notify scripts, digest, SMTP/UDP/
//! PING/BFD/FILE checkers, delay_before_retry, warmup, ...) is warned about, one warning per
//! keyword. A value that cannot be read leaves out what it belongs to (the checker, the real
//! server or the virtual server), with a warning naming the keyword and the value.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};

use cluster_core::model::{
    CheckKind, Config, FailureAction, Family, Forward, HealthCheck, Persistence, Protocol,
    RealServer, SchedFlag, Scheduler, Service, ServiceKey, SyncMode, SyncSettings, TunnelCsum,
    TunnelType, VipGroup,
};
use ipnet::IpNet;

use super::Imported;

/// Nested blocks deeper than this are refused (keepalived's own configs nest four deep).
const MAX_DEPTH: usize = 32;
/// Includes nested deeper than this are refused.
const MAX_INCLUDE_DEPTH: usize = 32;
/// Files opened in one import, includes counted.
const MAX_FILES: usize = 1000;
/// Addresses one virtual_server_group range may expand to.
const MAX_RANGE: u128 = 256;

/// Where the configuration files come from: the file system, or memory (tests, fuzzing).
pub trait Source {
    fn read(&self, path: &Path) -> io::Result<String>;
    /// The entries of a directory: name and whether it is a directory.
    fn list(&self, dir: &Path) -> io::Result<Vec<(String, bool)>>;
    /// The path that identifies the file, for cycle detection.
    fn canonical(&self, path: &Path) -> PathBuf;
}

/// The real file system.
pub struct Fs;

impl Source for Fs {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(String, bool)>> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let is_dir = std::fs::metadata(e.path())
                .map(|m| m.is_dir())
                .unwrap_or(false);
            out.push((e.file_name().to_string_lossy().into_owned(), is_dir));
        }
        Ok(out)
    }

    fn canonical(&self, path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| lexical(path))
    }
}

/// Files held in memory, keyed by path.
#[derive(Default)]
pub struct Memory {
    pub files: BTreeMap<PathBuf, String>,
}

impl Source for Memory {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(&lexical(path))
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(String, bool)>> {
        let dir = lexical(dir);
        let mut out: BTreeMap<String, bool> = BTreeMap::new();
        for p in self.files.keys() {
            if let Ok(rest) = p.strip_prefix(&dir) {
                let mut parts = rest.components();
                if let Some(Component::Normal(first)) = parts.next() {
                    let more = parts.next().is_some();
                    let e = out
                        .entry(first.to_string_lossy().into_owned())
                        .or_insert(more);
                    *e |= more;
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    fn canonical(&self, path: &Path) -> PathBuf {
        lexical(path)
    }
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Reads `path` and what it includes from the file system.
pub fn from_file(path: &Path) -> Result<Imported, String> {
    from_path(&Fs, path)
}

/// Reads `path` and what it includes through `src`.
pub fn from_path(src: &dyn Source, path: &Path) -> Result<Imported, String> {
    let name = path.display().to_string();
    let text = src
        .read(path)
        .map_err(|e| format!("{name}: cannot be read: {e}"))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    import(src, &name, Some(path), dir, &text)
}

/// Reads `text` (named `name` in messages); includes are resolved in `dir` through `src`.
pub fn from_text(src: &dyn Source, name: &str, dir: &Path, text: &str) -> Result<Imported, String> {
    import(src, name, None, dir, text)
}

/// Reads `text` without any file access (includes match nothing and are warned about).
pub fn parse(name: &str, text: &str) -> Result<Imported, String> {
    from_text(&Memory::default(), name, Path::new(""), text)
}

fn import(
    src: &dyn Source,
    name: &str,
    path: Option<&Path>,
    dir: &Path,
    text: &str,
) -> Result<Imported, String> {
    let mut lx = Lexer {
        src,
        files: Vec::new(),
        stack: Vec::new(),
        toks: Vec::new(),
        warnings: Vec::new(),
    };
    if let Some(p) = path {
        lx.stack.push(src.canonical(p));
    }
    lx.file(name.to_string(), dir, text, 0)?;
    let Lexer {
        files,
        toks,
        warnings,
        ..
    } = lx;
    let mut p = Parser {
        toks: &toks,
        i: 0,
        files: &files,
    };
    let tree = p.block(0, None)?;
    let mut m = Mapper {
        files: &files,
        warnings,
        config: Config::default(),
        groups: BTreeMap::new(),
        vrids: BTreeMap::new(),
        defined: BTreeMap::new(),
        vip_seen: BTreeMap::new(),
    };
    m.top(&tree);
    Ok(Imported {
        config: m.config,
        warnings: m.warnings,
    })
}

// ---------------------------------------------------------------------------------------------
// Lexer: words, braces and line ends, with includes expanded in place.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pos {
    file: usize,
    line: usize,
}

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Eol,
}

struct Lexer<'a> {
    src: &'a dyn Source,
    files: Vec<String>,
    /// Canonical paths of the files being read, outermost first.
    stack: Vec<PathBuf>,
    toks: Vec<(Tok, Pos)>,
    warnings: Vec<String>,
}

const INCLUDES: [&str; 6] = [
    "include", "includer", "includem", "includew", "includeb", "includea",
];

impl Lexer<'_> {
    fn at(&self, pos: Pos) -> String {
        format!("{}:{}", self.files[pos.file], pos.line)
    }

    fn file(&mut self, name: String, dir: &Path, text: &str, depth: usize) -> Result<(), String> {
        if self.files.len() >= MAX_FILES {
            return Err(format!(
                "{name}: more than {MAX_FILES} files are included; giving up"
            ));
        }
        let file = self.files.len();
        self.files.push(name);
        for (i, raw) in text.lines().enumerate() {
            let pos = Pos { file, line: i + 1 };
            let words = split_line(raw).map_err(|e| format!("{}: {e}", self.at(pos)))?;
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
                    return Err(format!(
                        "{at}: conditional line (@{id}) with a brace cannot be left out; write the configuration for one director"
                    ));
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
    ) -> Result<(), String> {
        let at = self.at(pos);
        let kw = &words[0].0;
        if words.iter().any(|(_, brace)| *brace) {
            return Err(format!(
                "{at}: {kw}: brace expansion in include patterns is not supported"
            ));
        }
        let pattern = match words {
            [_, p] => p.0.clone(),
            [_] => return Err(format!("{at}: {kw} needs a file name or pattern")),
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
            return Err(format!(
                "{at}: {kw} {pattern}: includes nested deeper than {MAX_INCLUDE_DEPTH}"
            ));
        }
        let full = dir.join(&pattern);
        let paths = if has_glob(&pattern) {
            expand(self.src, &full).map_err(|e| format!("{at}: {kw} {pattern}: {e}"))?
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
                return Err(format!(
                    "{at}: {kw} {pattern}: include cycle: {}",
                    chain.join(" -> ")
                ));
            }
            let text = match self.src.read(&p) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(format!(
                        "{at}: {kw} {pattern}: {} cannot be read: {e}",
                        p.display()
                    ))
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
fn split_line(raw: &str) -> Result<Vec<(String, bool)>, String> {
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
                    return Err(format!("unterminated quoted string (missing {c})"));
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

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The files a glob pattern matches, sorted; `*` and `?` do not match a leading `.`.
fn expand(src: &dyn Source, pattern: &Path) -> Result<Vec<PathBuf>, String> {
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
                Err(e) => return Err(format!("listing {}: {e}", f.display())),
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

// ---------------------------------------------------------------------------------------------
// Parser: statements (the words of one line) with optional blocks.

#[derive(Debug)]
struct Node {
    words: Vec<String>,
    pos: Pos,
    block: Option<Vec<Node>>,
}

impl Node {
    fn kw(&self) -> &str {
        &self.words[0]
    }

    fn args(&self) -> &[String] {
        &self.words[1..]
    }

    fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or(&[])
    }

    fn text(&self) -> String {
        self.words.join(" ")
    }
}

struct Parser<'a> {
    toks: &'a [(Tok, Pos)],
    i: usize,
    files: &'a [String],
}

impl Parser<'_> {
    fn at(&self, pos: Pos) -> String {
        format!("{}:{}", self.files[pos.file], pos.line)
    }

    fn block(&mut self, depth: usize, opener: Option<(Pos, String)>) -> Result<Vec<Node>, String> {
        let mut nodes: Vec<Node> = Vec::new();
        let mut cur: Option<Node> = None;
        // The last statement ended at its line's end, so a `{` opening the next line is its block.
        let mut attachable = false;
        let mut line_start = true;
        while self.i < self.toks.len() {
            let (tok, pos) = (&self.toks[self.i].0, self.toks[self.i].1);
            self.i += 1;
            match tok {
                Tok::Word(w) => {
                    match &mut cur {
                        Some(n) => n.words.push(w.clone()),
                        None => {
                            cur = Some(Node {
                                words: vec![w.clone()],
                                pos,
                                block: None,
                            })
                        }
                    }
                    attachable = false;
                    line_start = false;
                }
                Tok::Eol => {
                    if let Some(n) = cur.take() {
                        nodes.push(n);
                        attachable = true;
                    }
                    line_start = true;
                }
                Tok::Open => {
                    let mut node = match cur.take() {
                        Some(n) => n,
                        None if attachable && line_start => match nodes.pop() {
                            Some(n) => n,
                            None => {
                                return Err(format!(
                                    "{}: '{{' without a keyword before it",
                                    self.at(pos)
                                ))
                            }
                        },
                        None => {
                            return Err(format!(
                                "{}: '{{' without a keyword before it",
                                self.at(pos)
                            ))
                        }
                    };
                    if depth + 1 > MAX_DEPTH {
                        return Err(format!(
                            "{}: blocks nested deeper than {MAX_DEPTH}",
                            self.at(pos)
                        ));
                    }
                    let children = self.block(depth + 1, Some((node.pos, node.text())))?;
                    node.block = Some(children);
                    nodes.push(node);
                    attachable = false;
                    line_start = false;
                }
                Tok::Close => {
                    if let Some(n) = cur.take() {
                        nodes.push(n);
                    }
                    if opener.is_none() {
                        return Err(format!("{}: '}}' without a matching '{{'", self.at(pos)));
                    }
                    return Ok(nodes);
                }
            }
        }
        if let Some((pos, what)) = opener {
            let end = self
                .toks
                .last()
                .map(|t| self.at(t.1))
                .unwrap_or_else(|| self.at(pos));
            return Err(format!(
                "{}: the '{{' of `{what}` is never closed (input ends at {end})",
                self.at(pos)
            ));
        }
        if let Some(n) = cur.take() {
            nodes.push(n);
        }
        Ok(nodes)
    }
}

// ---------------------------------------------------------------------------------------------
// Mapper: the tree to the model.

/// A forwarding method with its tunnel settings.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Method {
    forward: Forward,
    tunnel_type: Option<TunnelType>,
    tunnel_port: Option<u16>,
    tunnel_csum: Option<TunnelCsum>,
}

impl Method {
    fn nat() -> Method {
        Method {
            forward: Forward::Masq,
            ..Method::default()
        }
    }

    fn apply(&self, r: &mut RealServer) {
        r.forward = self.forward;
        r.tunnel_type = self.tunnel_type;
        r.tunnel_port = self.tunnel_port;
        r.tunnel_csum = self.tunnel_csum;
    }
}

/// Checker settings that keepalived inherits virtual_server → real_server → checker.
#[derive(Clone, Debug, Default)]
struct CheckOpts {
    delay_loop_ms: Option<u32>,
    connect_timeout_ms: Option<u32>,
    retry: Option<u32>,
    inhibit: Option<bool>,
    virtualhost: Option<String>,
}

impl CheckOpts {
    /// `self` with the unset settings taken from `parent`.
    fn over(&self, parent: &CheckOpts) -> CheckOpts {
        CheckOpts {
            delay_loop_ms: self.delay_loop_ms.or(parent.delay_loop_ms),
            connect_timeout_ms: self.connect_timeout_ms.or(parent.connect_timeout_ms),
            retry: self.retry.or(parent.retry),
            inhibit: self.inhibit.or(parent.inhibit),
            virtualhost: self
                .virtualhost
                .clone()
                .or_else(|| parent.virtualhost.clone()),
        }
    }

    /// Reads one of the inherited settings; `Ok(false)` if `kw` is not one.
    fn read(&mut self, kw: &str, args: &[String]) -> Result<bool, String> {
        match kw {
            "delay_loop" => self.delay_loop_ms = Some(timer(kw, one(kw, args)?)?),
            "connect_timeout" => self.connect_timeout_ms = Some(timer(kw, one(kw, args)?)?),
            "retry" | "nb_get_retry" | "nb_sock_retry" => {
                self.retry = Some(number(kw, one(kw, args)?)?)
            }
            "inhibit_on_failure" => self.inhibit = Some(boolean(kw, args)?),
            "virtualhost" => self.virtualhost = Some(one(kw, args)?.to_string()),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// keepalived's defaults.
const DELAY_LOOP_MS: u32 = 60_000;
const CONNECT_TIMEOUT_MS: u32 = 5_000;

/// A real server as read, with the check it maps to.
struct Real {
    server: RealServer,
    /// The port as written (`None`: the service's).
    port: Option<u16>,
    pos: Pos,
    text: String,
    check: Option<(HealthCheck, Pos, String)>,
}

/// A virtual_server's settings as read.
struct Vs {
    scheduler: Scheduler,
    sched_flags: Vec<(SchedFlag, Pos, String)>,
    one_packet: Option<Pos>,
    method: Method,
    persistence_timeout: Option<u32>,
    granularity: Option<(String, Pos)>,
    protocol: Protocol,
    ip_family: Option<Family>,
    sorry: Option<(IpAddr, Option<u16>)>,
    sorry_method: Option<Method>,
    opts: CheckOpts,
    reals: Vec<Real>,
}

/// What a `virtual_server` line names.
enum Head {
    Addr(IpAddr, Option<u16>),
    Fwmark(u32, Option<Family>),
    Group(String),
}

struct Mapper<'a> {
    files: &'a [String],
    warnings: Vec<String>,
    config: Config,
    groups: BTreeMap<String, &'a Node>,
    /// virtual_router_id of each vrrp_instance (the default sync id).
    vrids: BTreeMap<String, u8>,
    /// Where each service was defined.
    defined: BTreeMap<ServiceKey, Pos>,
    vip_seen: BTreeMap<IpAddr, Pos>,
}

fn one<'a>(kw: &str, args: &'a [String]) -> Result<&'a str, String> {
    match args {
        [v] => Ok(v),
        [] => Err(format!("{kw} needs a value")),
        _ => Err(format!("{kw} takes one value, not {:?}", args.join(" "))),
    }
}

fn number<T: std::str::FromStr>(kw: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{kw} {v:?} is not a number in range"))
}

/// Seconds with fractions → milliseconds.
fn timer(kw: &str, v: &str) -> Result<u32, String> {
    let s: f64 = v
        .parse()
        .map_err(|_| format!("{kw} {v:?} is not a number of seconds"))?;
    if !s.is_finite() || !(0.0..=4_000_000.0).contains(&s) {
        return Err(format!("{kw} {v:?} is not in 0..4000000 seconds"));
    }
    Ok((s * 1000.0).round() as u32)
}

/// `[<BOOL>]`: no value means on.
fn boolean(kw: &str, args: &[String]) -> Result<bool, String> {
    match args {
        [] => Ok(true),
        [v] => match v.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" => Ok(true),
            "off" | "false" | "no" => Ok(false),
            _ => Err(format!(
                "{kw} {v:?} is not a boolean (on, off, true, false, yes, no)"
            )),
        },
        _ => Err(format!("{kw} takes one value, not {:?}", args.join(" "))),
    }
}

fn address(kw: &str, v: &str) -> Result<IpAddr, String> {
    let t = v
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(v);
    t.parse()
        .map_err(|_| format!("{kw}: {v:?} is not an IP address"))
}

fn port(kw: &str, v: &str) -> Result<u16, String> {
    v.parse()
        .map_err(|_| format!("{kw}: port {v:?} is not a number in 0..=65535"))
}

/// `ADDR [PORT]`.
fn endpoint(kw: &str, args: &[String]) -> Result<(IpAddr, Option<u16>), String> {
    match args {
        [a] => Ok((address(kw, a)?, None)),
        [a, p] => Ok((address(kw, a)?, Some(port(kw, p)?))),
        [] => Err(format!("{kw} needs an address")),
        _ => Err(format!(
            "{kw} takes ADDRESS [PORT], not {:?}",
            args.join(" ")
        )),
    }
}

/// `NAT | DR | TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]`.
fn method(kw: &str, args: &[String]) -> Result<Method, String> {
    let Some(first) = args.first() else {
        return Err(format!("{kw} needs NAT, DR or TUN"));
    };
    let forward = match first.to_ascii_uppercase().as_str() {
        "NAT" => Forward::Masq,
        "DR" => Forward::Dr,
        "TUN" => Forward::Tunnel,
        _ => return Err(format!("{kw} {first:?} is not NAT, DR or TUN")),
    };
    let mut m = Method {
        forward,
        ..Method::default()
    };
    let rest = &args[1..];
    if forward != Forward::Tunnel {
        if !rest.is_empty() {
            return Err(format!("{kw} {first}: unexpected {:?}", rest.join(" ")));
        }
        return Ok(m);
    }
    let mut i = 0;
    while i < rest.len() {
        match rest[i].as_str() {
            "type" => {
                let t = rest
                    .get(i + 1)
                    .ok_or_else(|| format!("{kw} TUN type needs ipip, gue or gre"))?;
                m.tunnel_type = Some(t.parse().map_err(|e| format!("{kw} TUN type: {e}"))?);
                i += 2;
            }
            "port" => {
                let p = rest
                    .get(i + 1)
                    .ok_or_else(|| format!("{kw} TUN port needs a number"))?;
                m.tunnel_port = Some(port(kw, p)?);
                i += 2;
            }
            "nocsum" | "csum" | "remcsum" => {
                m.tunnel_csum = Some(rest[i].parse().map_err(|e| format!("{kw}: {e}"))?);
                i += 1;
            }
            other => return Err(format!("{kw} TUN: unexpected {other:?}")),
        }
    }
    Ok(m)
}

fn family_word(kw: &str, v: &str) -> Result<Family, String> {
    match v {
        "inet" => Ok(Family::Ipv4),
        "inet6" => Ok(Family::Ipv6),
        _ => Err(format!("{kw} {v:?} is not inet or inet6")),
    }
}

/// Status codes and ranges (`200`, `200-299 301`) as one range if they join into one.
fn status_range(codes: &[String]) -> Result<(String, Vec<String>), String> {
    let mut ranges = Vec::new();
    for c in codes {
        let (lo, hi) = cluster_core::validate::parse_status_range(c)
            .map_err(|e| format!("status_code: {e}"))?;
        ranges.push((lo, hi));
    }
    let mut sorted = ranges.clone();
    sorted.sort();
    let mut joined = sorted[0];
    let mut one_range = true;
    for (lo, hi) in &sorted[1..] {
        if *lo <= joined.1.saturating_add(1) {
            joined.1 = joined.1.max(*hi);
        } else {
            one_range = false;
        }
    }
    let fmt = |(lo, hi): (u16, u16)| {
        if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        }
    };
    if one_range {
        return Ok((fmt(joined), Vec::new()));
    }
    Ok((fmt(ranges[0]), codes[1..].to_vec()))
}

/// keepalived's script words: whitespace separates, `'...'` and `"..."` group, `\` escapes.
fn script_argv(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
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
        out.push(cur);
    }
    out
}

/// Replaces `addr` (as written, or canonical) in `arg` by `{address}` where it stands alone.
fn substitute_address(arg: &str, written: &str, addr: &IpAddr) -> String {
    let canonical = addr.to_string();
    let mut forms = vec![written.to_string()];
    if canonical != written {
        forms.push(canonical);
    }
    let v6 = addr.is_ipv6();
    let inner = |c: char| c.is_ascii_hexdigit() || c == '.' || (v6 && c == ':');
    let mut out = arg.to_string();
    for f in forms {
        if f.is_empty() {
            continue;
        }
        let mut result = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(&f) {
            let before = rest[..i].chars().next_back();
            let after = rest[i + f.len()..].chars().next();
            let alone = !before.is_some_and(|c| inner(c) || c.is_alphanumeric())
                && !after.is_some_and(|c| inner(c) || c.is_alphanumeric());
            result.push_str(&rest[..i]);
            result.push_str(if alone { "{address}" } else { &f });
            rest = &rest[i + f.len()..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// `A`, `A-B` (B a whole address or the last octet / group), `A/nn`: the addresses, in order.
fn range(v: &str) -> Result<Vec<IpAddr>, String> {
    fn to_u128(a: IpAddr) -> u128 {
        match a {
            IpAddr::V4(a) => u32::from(a) as u128,
            IpAddr::V6(a) => u128::from(a),
        }
    }
    fn from_u128(v6: bool, n: u128) -> IpAddr {
        if v6 {
            IpAddr::V6(Ipv6Addr::from(n))
        } else {
            IpAddr::V4(Ipv4Addr::from(n as u32))
        }
    }
    let bad = || format!("{v:?} is not an address, range (A-B) or prefix (A/nn)");
    let (first, last) = if let Some((a, b)) = v.split_once('-') {
        let a: IpAddr = a.parse().map_err(|_| bad())?;
        let b = match b.parse::<IpAddr>() {
            Ok(b) => b,
            Err(_) => {
                let start = to_u128(a);
                let (radix, bits) = if a.is_ipv6() { (16, 16) } else { (10, 8) };
                let low = u128::from_str_radix(b, radix).map_err(|_| bad())?;
                if low >= 1 << bits {
                    return Err(bad());
                }
                from_u128(a.is_ipv6(), (start & !((1u128 << bits) - 1)) | low)
            }
        };
        (a, b)
    } else if v.contains('/') {
        let n: IpNet = v.parse().map_err(|_| bad())?;
        (n.network(), n.broadcast())
    } else {
        let a: IpAddr = v.parse().map_err(|_| bad())?;
        (a, a)
    };
    if first.is_ipv6() != last.is_ipv6() {
        return Err(format!("{v:?} mixes IPv4 and IPv6"));
    }
    let (lo, hi) = (to_u128(first), to_u128(last));
    if hi < lo {
        return Err(format!("{v:?}: the range ends before it starts"));
    }
    if hi - lo >= MAX_RANGE {
        return Err(format!(
            "{v:?} holds {} addresses; at most {MAX_RANGE} are expanded",
            (hi - lo).saturating_add(1)
        ));
    }
    Ok((lo..=hi).map(|n| from_u128(first.is_ipv6(), n)).collect())
}

/// A VIP group name from a vrrp_instance name: 1..=64 of A-Z a-z 0-9 - _ .
fn group_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() {
        "vrrp".into()
    } else {
        s
    }
}

/// Names of the fields in which two checks differ.
fn check_diff(a: &HealthCheck, b: &HealthCheck) -> Vec<&'static str> {
    let mut d = Vec::new();
    let mut f = |name, differs: bool| {
        if differs {
            d.push(name)
        }
    };
    f("kind", a.kind != b.kind);
    f("interval_ms", a.interval_ms != b.interval_ms);
    f("timeout_ms", a.timeout_ms != b.timeout_ms);
    f("rise", a.rise != b.rise);
    f("fall", a.fall != b.fall);
    f("on_failure", a.on_failure != b.on_failure);
    f("port", a.port != b.port);
    f("path", a.path != b.path);
    f("host", a.host != b.host);
    f("expect_status", a.expect_status != b.expect_status);
    f("body_contains", a.body_contains != b.body_contains);
    f("send", a.send != b.send);
    f("expect", a.expect != b.expect);
    f("query_name", a.query_name != b.query_name);
    f("query_type", a.query_type != b.query_type);
    f("command", a.command != b.command);
    d
}

/// Top-level blocks and keywords that configure what lvs-director does otherwise.
fn top_note(kw: &str) -> Option<&'static str> {
    Some(match kw {
        "vrrp_script" | "vrrp_track_process" | "track_file" | "track_process" => {
            "tracking for VRRP priorities; the leader holds the VIPs while a majority of directors acknowledges it"
        }
        "static_ipaddress" | "static_routes" | "static_rules" => {
            "static addresses, routes and rules belong to the host's network configuration"
        }
        "garp_group" | "linkbeat_interfaces" | "interface_up_down_delays" => {
            "interface settings for VRRP; the leader announces VIPs with gratuitous ARP and neighbour advertisements"
        }
        "bfd_instance" => "BFD is not supported",
        "SSL" => "SSL_GET client settings; https checks do not use client certificates",
        "net_namespace" | "net_namespace_ipvs" | "namespace_with_ipsets" | "instance"
        | "use_pid_dir" | "linkbeat_use_polling" | "child_wait_time" => {
            "keepalived process setting"
        }
        _ => return None,
    })
}

impl<'a> Mapper<'a> {
    fn at(&self, pos: Pos) -> String {
        format!("{}:{}", self.files[pos.file], pos.line)
    }

    fn warn(&mut self, pos: Pos, msg: impl AsRef<str>) {
        let at = self.at(pos);
        self.warnings.push(format!("{at}: {}", msg.as_ref()));
    }

    fn top(&mut self, tree: &'a [Node]) {
        // Groups and VRIDs may be used before they are defined.
        for n in tree {
            match n.kw() {
                "virtual_server_group" => {
                    if let Some(name) = n.args().first() {
                        self.groups.entry(name.clone()).or_insert(n);
                    }
                }
                "vrrp_instance" => {
                    let name = n.args().first().cloned().unwrap_or_default();
                    if let Some(id) = n
                        .children()
                        .iter()
                        .find(|c| c.kw() == "virtual_router_id")
                        .and_then(|c| c.args().first())
                        .and_then(|v| v.parse().ok())
                    {
                        self.vrids.insert(name, id);
                    }
                }
                _ => {}
            }
        }
        for n in tree {
            match n.kw() {
                "virtual_server" => self.virtual_server(n),
                "virtual_server_group" => {
                    if n.args().len() != 1 {
                        self.warn(
                            n.pos,
                            format!(
                                "`{}`: virtual_server_group takes one name; left out",
                                n.text()
                            ),
                        );
                    }
                }
                "vrrp_instance" => self.vrrp_instance(n),
                "vrrp_sync_group" => {
                    let members: Vec<String> = n
                        .children()
                        .iter()
                        .filter(|c| c.kw() == "group")
                        .flat_map(|c| {
                            c.args()
                                .iter()
                                .cloned()
                                .chain(c.children().iter().flat_map(|g| g.words.clone()))
                        })
                        .collect();
                    self.warn(
                        n.pos,
                        format!(
                            "vrrp_sync_group {} ({}) is not mapped: all VIP groups move together with the leader",
                            n.args().join(" "),
                            members.join(" ")
                        ),
                    );
                }
                "global_defs" => self.global_defs(n),
                kw => match top_note(kw) {
                    Some(why) => self.warn(n.pos, format!("{kw} is not mapped: {why}")),
                    None => self.warn(n.pos, format!("unknown keyword {kw:?}; left out")),
                },
            }
        }
    }

    fn global_defs(&mut self, n: &Node) {
        for c in n.children() {
            match c.kw() {
                "lvs_sync_daemon" => {
                    if let Err(e) = self.sync_daemon(c) {
                        self.warn(c.pos, format!("{e}; left out"));
                    }
                }
                "lvs_sync_daemon_interface" => match c.args() {
                    [ifname] => {
                        let s = self.config.sync.get_or_insert_with(default_sync);
                        s.interface = ifname.clone();
                    }
                    _ => self.warn(
                        c.pos,
                        "lvs_sync_daemon_interface takes one interface; left out",
                    ),
                },
                kw => self.warn(c.pos, format!("global_defs {kw} is not mapped; left out")),
            }
        }
    }

    /// `lvs_sync_daemon IF [[inst] VI] [id N] [maxlen L] [port P] [ttl T] [group ADDR]`.
    fn sync_daemon(&mut self, c: &Node) -> Result<(), String> {
        let kw = "lvs_sync_daemon";
        let args = c.args();
        let Some(ifname) = args.first() else {
            return Err(format!("{kw} needs an interface"));
        };
        let mut s = default_sync();
        s.interface = ifname.clone();
        let mut syncid: Option<u8> = None;
        let mut inst: Option<String> = None;
        let mut i = 1;
        while i < args.len() {
            let key = args[i].as_str();
            let val = args.get(i + 1);
            match (key, val) {
                ("inst", Some(v)) => inst = Some(v.clone()),
                ("id", Some(v)) => syncid = Some(number("lvs_sync_daemon id", v)?),
                ("port", Some(v)) => s.port = port(kw, v)?,
                ("ttl", Some(v)) => s.ttl = number("lvs_sync_daemon ttl", v)?,
                ("group", Some(v)) => s.group = Some(address("lvs_sync_daemon group", v)?),
                ("maxlen", Some(v)) => self.warn(
                    c.pos,
                    format!(
                        "lvs_sync_daemon maxlen {v} is not mapped (the kernel default is used)"
                    ),
                ),
                ("inst" | "id" | "port" | "ttl" | "group" | "maxlen", None) => {
                    return Err(format!("{kw} {key} needs a value"))
                }
                _ if i == 1 && inst.is_none() => {
                    inst = Some(key.to_string());
                    i += 1;
                    continue;
                }
                _ => return Err(format!("{kw}: unexpected {key:?}")),
            }
            i += 2;
        }
        s.syncid = match (syncid, &inst) {
            (Some(id), _) => id,
            (None, Some(vi)) => self.vrids.get(vi).copied().unwrap_or(0),
            (None, None) => 0,
        };
        self.config.sync = Some(s);
        Ok(())
    }

    fn vrrp_instance(&mut self, n: &Node) {
        let name = n.args().first().cloned().unwrap_or_default();
        let interface = n
            .children()
            .iter()
            .find(|c| c.kw() == "interface")
            .and_then(|c| c.args().first())
            .cloned();
        // Addresses by interface, in the order seen.
        let mut by_if: Vec<(Option<String>, Vec<IpNet>)> = Vec::new();
        for block in n
            .children()
            .iter()
            .filter(|c| c.kw() == "virtual_ipaddress" || c.kw() == "virtual_ipaddress_excluded")
        {
            for e in block.children() {
                let addr = match e
                    .kw()
                    .parse::<IpNet>()
                    .or_else(|_| e.kw().parse::<IpAddr>().map(IpNet::from))
                {
                    Ok(a) => a,
                    Err(_) => {
                        self.warn(
                            e.pos,
                            format!("virtual_ipaddress {:?} is not an address; left out", e.kw()),
                        );
                        continue;
                    }
                };
                let mut dev = None;
                let mut dropped = Vec::new();
                let mut i = 0;
                let args = e.args();
                while i < args.len() {
                    if args[i] == "dev" && i + 1 < args.len() {
                        dev = Some(args[i + 1].clone());
                        i += 2;
                    } else {
                        dropped.push(args[i].clone());
                        i += 1;
                    }
                }
                if !dropped.is_empty() {
                    self.warn(
                        e.pos,
                        format!(
                            "virtual_ipaddress {addr}: {:?} is not mapped (VIPs are plain addresses on an interface)",
                            dropped.join(" ")
                        ),
                    );
                }
                if let Some(first) = self.vip_seen.get(&addr.addr()) {
                    let first = self.at(*first);
                    self.warn(
                        e.pos,
                        format!("virtual_ipaddress {addr} is already a VIP (at {first}); left out"),
                    );
                    continue;
                }
                self.vip_seen.insert(addr.addr(), e.pos);
                let dev = dev.or_else(|| interface.clone());
                match by_if.iter_mut().find(|(d, _)| *d == dev) {
                    Some((_, list)) => list.push(addr),
                    None => by_if.push((dev, vec![addr])),
                }
            }
        }
        let mut made = Vec::new();
        for (i, (dev, addrs)) in by_if.into_iter().enumerate() {
            let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
            let Some(dev) = dev else {
                self.warn(
                    n.pos,
                    format!(
                        "vrrp_instance {name}: no interface for {}; add them with lvsctl vip set {} --interface IF {}",
                        list.join(" "),
                        group_name(&name),
                        list.join(" ")
                    ),
                );
                continue;
            };
            if let Err(e) = cluster_core::validate::interface_name("dev", &dev) {
                self.warn(
                    n.pos,
                    format!("vrrp_instance {name}: {e}; {} left out", list.join(" ")),
                );
                continue;
            }
            let base = if i == 0 {
                group_name(&name)
            } else {
                group_name(&format!("{name}-{dev}"))
            };
            let gname = self.unique_group(base);
            made.push(format!(
                "lvsctl vip set {gname} --interface {dev} {}",
                list.join(" ")
            ));
            self.config.vip_groups.push(VipGroup {
                name: gname,
                interface: dev,
                addresses: addrs,
            });
        }
        let what = if made.is_empty() {
            "it has no virtual_ipaddress to take over".to_string()
        } else {
            format!("its addresses are in [[vip_group]] ({})", made.join("; "))
        };
        self.warn(
            n.pos,
            format!(
                "vrrp_instance {name} is not mapped: the leader director holds the VIPs (no VRRP); {what}"
            ),
        );
    }

    /// `base`, or `base-2`, `base-3`, ... if a VIP group has that name already.
    fn unique_group(&self, base: String) -> String {
        let taken = |n: &str| self.config.vip_groups.iter().any(|g| g.name == n);
        if !taken(&base) {
            return base;
        }
        let stem: String = base.chars().take(56).collect();
        (2..)
            .map(|i| format!("{stem}-{i}"))
            .find(|n| !taken(n))
            .expect("a free name")
    }

    fn head(&self, n: &Node) -> Result<Head, String> {
        match n.args() {
            [f, m] if f == "fwmark" => {
                let mark =
                    crate::args::parse_fwmark(m).map_err(|e| format!("virtual_server {e}"))?;
                Ok(Head::Fwmark(mark, None))
            }
            [g, name] if g == "group" => Ok(Head::Group(name.clone())),
            args => {
                let (a, p) = endpoint("virtual_server", args)?;
                Ok(Head::Addr(a, p))
            }
        }
    }

    fn virtual_server(&mut self, n: &'a Node) {
        let desc = n.text();
        let head = match self.head(n) {
            Ok(h) => h,
            Err(e) => return self.warn(n.pos, format!("{e}; `{desc}` left out")),
        };
        let vs = match self.vs_settings(n) {
            Ok(vs) => vs,
            Err((pos, e)) => return self.warn(pos, format!("{e}; `{desc}` left out")),
        };
        let heads = match head {
            Head::Group(g) => match self.groups.get(g.as_str()).copied() {
                Some(def) => self.group_entries(def),
                None => {
                    return self.warn(
                        n.pos,
                        format!("`{desc}`: no virtual_server_group {g} is defined; left out"),
                    )
                }
            },
            h => vec![h],
        };
        let check = self.service_check(&vs);
        for h in heads {
            if let Some(s) = self.service(&vs, h, &check) {
                if let Some(first) = self.defined.get(&s.key) {
                    let first = self.at(*first);
                    self.warn(
                        n.pos,
                        format!(
                            "service {} is already defined at {first}; `{desc}` left out",
                            s.key
                        ),
                    );
                    continue;
                }
                self.defined.insert(s.key, n.pos);
                self.config.services.insert(s.key, s);
            }
        }
    }

    fn group_entries(&mut self, def: &Node) -> Vec<Head> {
        let mut out = Vec::new();
        for e in def.children() {
            let r = match e.words.as_slice() {
                [f, m] if f == "fwmark" => {
                    crate::args::parse_fwmark(m).map(|mark| vec![Head::Fwmark(mark, None)])
                }
                [f, m, fam] if f == "fwmark" => crate::args::parse_fwmark(m).and_then(|mark| {
                    Ok(vec![Head::Fwmark(mark, Some(family_word("fwmark", fam)?))])
                }),
                [a] => range(a).map(|v| v.into_iter().map(|a| Head::Addr(a, None)).collect()),
                [a, p] => port("virtual_server_group", p).and_then(|p| {
                    range(a).map(|v| v.into_iter().map(|a| Head::Addr(a, Some(p))).collect())
                }),
                _ => Err(format!("`{}` is not ADDRESS [PORT] or fwmark N", e.text())),
            };
            match r {
                Ok(v) => out.extend(v),
                Err(m) => self.warn(
                    e.pos,
                    format!(
                        "virtual_server_group {}: {m}; entry left out",
                        def.args().join(" ")
                    ),
                ),
            }
        }
        out
    }

    /// The virtual_server's own settings and its real servers; an unreadable value fails it.
    fn vs_settings(&mut self, n: &Node) -> Result<Vs, (Pos, String)> {
        let mut vs = Vs {
            scheduler: Scheduler::Wlc,
            sched_flags: Vec::new(),
            one_packet: None,
            method: Method::nat(),
            persistence_timeout: None,
            granularity: None,
            protocol: Protocol::Tcp,
            ip_family: None,
            sorry: None,
            sorry_method: None,
            opts: CheckOpts::default(),
            reals: Vec::new(),
        };
        let mut real_nodes = Vec::new();
        for c in n.children() {
            let kw = c.kw();
            let args = c.args();
            let r: Result<(), String> = (|| {
                if vs.opts.read(kw, args)? {
                    return Ok(());
                }
                match kw {
                    "lb_algo" | "lvs_sched" => {
                        vs.scheduler = one(kw, args)?
                            .to_ascii_lowercase()
                            .parse()
                            .map_err(|e| format!("{kw}: {e}"))?
                    }
                    "lb_kind" | "lvs_method" => vs.method = method(kw, args)?,
                    "sh-port" | "mh-port" | "flag-2" => {
                        vs.sched_flags.push((SchedFlag::Port, c.pos, kw.into()))
                    }
                    "sh-fallback" | "mh-fallback" | "flag-1" => {
                        vs.sched_flags.push((SchedFlag::Fallback, c.pos, kw.into()))
                    }
                    "ops" => vs.one_packet = Some(c.pos),
                    "persistence_timeout" => {
                        vs.persistence_timeout = Some(match args {
                            [] => 360,
                            _ => number(kw, one(kw, args)?)?,
                        })
                    }
                    "persistence_granularity" => {
                        vs.granularity = Some((one(kw, args)?.to_string(), c.pos))
                    }
                    "protocol" => {
                        vs.protocol = one(kw, args)?.parse().map_err(|e| format!("{kw}: {e}"))?
                    }
                    "ip_family" => vs.ip_family = Some(family_word(kw, one(kw, args)?)?),
                    "sorry_server" => vs.sorry = Some(endpoint(kw, args)?),
                    "sorry_server_lvs_method" => vs.sorry_method = Some(method(kw, args)?),
                    "real_server" => real_nodes.push(c),
                    _ => self.vs_unmapped(c),
                }
                Ok(())
            })();
            r.map_err(|e| (c.pos, e))?;
        }
        for c in real_nodes {
            if let Some(r) = self.real(c, &vs) {
                vs.reals.push(r);
            }
        }
        Ok(vs)
    }

    fn vs_unmapped(&mut self, c: &Node) {
        let kw = c.kw();
        let why = match kw {
            "quorum" | "quorum_up" | "quorum_down" | "hysteresis" => {
                "the sorry server is used while no real server is available; there is no weight quorum"
            }
            "alpha" => "real servers are not assumed down at start",
            "omega" | "smtp_alert" | "snmp_name" => "notifications are not sent; lvsctl watch follows changes",
            "ha_suspend" => "checks run on the leader, which holds the VIPs",
            "persistence_engine" => "persistence engines (sip) are not supported",
            "sorry_server_inhibit" => "the sorry server is added while no real server is available",
            "delay_before_retry" => {
                "failed probes are repeated at the check interval, not after a separate delay"
            }
            "warmup" => "checks start at once",
            _ => "",
        };
        if why.is_empty() {
            self.warn(
                c.pos,
                format!("unknown keyword {kw:?} in virtual_server; left out"),
            );
        } else {
            self.warn(c.pos, format!("{kw} is not mapped: {why}"));
        }
    }

    /// A real_server with its first mappable checker; `None` (warned) if a value is unreadable.
    fn real(&mut self, c: &Node, vs: &Vs) -> Option<Real> {
        let desc = c.text();
        let (address, port) = match endpoint("real_server", c.args()) {
            Ok(e) => e,
            Err(e) => {
                self.warn(c.pos, format!("{e}; `{desc}` left out"));
                return None;
            }
        };
        let mut server = RealServer::new(address, port.unwrap_or(0));
        let mut meth = vs.method;
        let mut opts = CheckOpts::default();
        let mut checkers = Vec::new();
        for k in c.children() {
            let kw = k.kw();
            let args = k.args();
            let r: Result<(), String> = (|| {
                if opts.read(kw, args)? {
                    return Ok(());
                }
                match kw {
                    "weight" => server.weight = number(kw, one(kw, args)?)?,
                    "uthreshold" => server.upper_threshold = number(kw, one(kw, args)?)?,
                    "lthreshold" => server.lower_threshold = number(kw, one(kw, args)?)?,
                    "lvs_method" | "lb_kind" => meth = method(kw, args)?,
                    "HTTP_GET" | "SSL_GET" | "TCP_CHECK" | "DNS_CHECK" | "MISC_CHECK" => {
                        checkers.push(k)
                    }
                    "SMTP_CHECK" | "UDP_CHECK" | "PING_CHECK" | "BFD_CHECK" | "FILE_CHECK" => {
                        self.warn(
                            k.pos,
                            format!("{kw} is not mapped: lvs-director checks are tcp, http, https, udp (payload and reply text), dns and exec"),
                        )
                    }
                    "notify_up" | "notify_down" => self.warn(
                        k.pos,
                        format!("{kw} is not mapped: notifications are not sent; lvsctl watch follows changes"),
                    ),
                    "smtp_alert" | "snmp_name" => {
                        self.warn(k.pos, format!("{kw} is not mapped: notifications are not sent"))
                    }
                    "alpha" => self.warn(
                        k.pos,
                        "alpha is not mapped: real servers are not assumed down at start",
                    ),
                    "delay_before_retry" | "warmup" => self.warn(
                        k.pos,
                        format!("{kw} is not mapped: failed probes are repeated at the check interval"),
                    ),
                    _ => self.warn(
                        k.pos,
                        format!("unknown keyword {kw:?} in real_server; left out"),
                    ),
                }
                Ok(())
            })();
            if let Err(e) = r {
                self.warn(k.pos, format!("{e}; `{desc}` left out"));
                return None;
            }
        }
        meth.apply(&mut server);
        let opts = opts.over(&vs.opts);
        let written = c.args().first().cloned().unwrap_or_default();
        let mut check = None;
        for k in checkers {
            if check.is_some() {
                self.warn(
                    k.pos,
                    format!("{}: only one check per service is kept (the first of this real server); left out", k.kw()),
                );
                continue;
            }
            if let Some(hc) = self.checker(k, &opts, &server, &written) {
                check = Some((hc, k.pos, k.kw().to_string()));
            }
        }
        Some(Real {
            server,
            port,
            pos: c.pos,
            text: desc,
            check,
        })
    }

    /// One checker block → a health check; `None` (warned) if a value is unreadable.
    fn checker(
        &mut self,
        k: &Node,
        inherited: &CheckOpts,
        real: &RealServer,
        written: &str,
    ) -> Option<HealthCheck> {
        let name = k.kw();
        let kind = match name {
            "HTTP_GET" => CheckKind::Http,
            "SSL_GET" => CheckKind::Https,
            "TCP_CHECK" => CheckKind::Tcp,
            "DNS_CHECK" => CheckKind::Dns,
            _ => CheckKind::Exec,
        };
        let mut hc = HealthCheck::new(kind);
        let mut opts = CheckOpts::default();
        let mut urls = 0;
        let mut url_host = None;
        let mut misc_path = None;
        let mut misc_timeout = None;
        let mut dns_type = None;
        let mut dns_name = None;
        for c in k.children() {
            let kw = c.kw();
            let args = c.args();
            let r: Result<(), String> = (|| {
                if opts.read(kw, args)? {
                    return Ok(());
                }
                match (kind, kw) {
                    (_, "connect_port") => hc.port = Some(port(kw, one(kw, args)?)?),
                    (_, "connect_ip") => {
                        let a = address(kw, one(kw, args)?)?;
                        if a != real.address {
                            self.warn(
                                c.pos,
                                format!("connect_ip {a} is not mapped: checks probe the real server's own address ({})", real.address),
                            );
                        }
                    }
                    (CheckKind::Http | CheckKind::Https, "url") => {
                        urls += 1;
                        if urls > 1 {
                            self.warn(
                                c.pos,
                                format!("{name}: only the first url is checked; `url` with path {:?} left out",
                                    c.children().iter().find(|u| u.kw() == "path").map(|u| u.args().join(" ")).unwrap_or_default()),
                            );
                        } else {
                            url_host = self.url(c, &mut hc)?;
                        }
                    }
                    (CheckKind::Dns, "type") => dns_type = Some(one(kw, args)?.to_ascii_uppercase()),
                    (CheckKind::Dns, "name") => dns_name = Some(one(kw, args)?.to_string()),
                    (CheckKind::Exec, "misc_path") => match args {
                        [] => return Err("misc_path needs a command".into()),
                        // `misc_path "cmd args" user group`: the first word is the command.
                        [cmd, rest @ ..] => {
                            misc_path = Some(cmd.clone());
                            if !rest.is_empty() {
                                self.warn(c.pos, format!("misc_path user {:?} is not mapped: exec checks run as the director's user", rest.join(" ")));
                            }
                        }
                    },
                    (CheckKind::Exec, "misc_timeout") => misc_timeout = Some(timer(kw, one(kw, args)?)?),
                    (CheckKind::Exec, "misc_dynamic") => self.warn(
                        c.pos,
                        "misc_dynamic is not mapped: the exit status only tells healthy (0) from failed; weights come from weight_policy",
                    ),
                    (CheckKind::Exec, "user") => self.warn(
                        c.pos,
                        format!("user {} is not mapped: exec checks run as the director's user", args.join(" ")),
                    ),
                    (CheckKind::Http | CheckKind::Https, "http_protocol") => self.warn(
                        c.pos,
                        format!("http_protocol {} is not mapped: checks send HTTP/1.1 with Connection: close", args.join(" ")),
                    ),
                    (CheckKind::Https, "enable_sni" | "sni_name" | "tls_compliant") => self.warn(
                        c.pos,
                        format!("{kw} is not mapped: https checks send the host (or address) as SNI"),
                    ),
                    (_, "bindto" | "bind_if" | "bind_port" | "fwmark") => self.warn(
                        c.pos,
                        format!("{kw} is not mapped: checks use the director's own source address and routing"),
                    ),
                    (_, "delay_before_retry" | "warmup") => self.warn(
                        c.pos,
                        format!("{kw} is not mapped: failed probes are repeated at the check interval"),
                    ),
                    (_, "alpha") => self.warn(c.pos, "alpha is not mapped: real servers are not assumed down at start"),
                    (_, "log_all_failures" | "fast_recovery") => {
                        self.warn(c.pos, format!("{kw} is not mapped"))
                    }
                    _ => self.warn(
                        c.pos,
                        format!("unknown keyword {kw:?} in {name}; left out"),
                    ),
                }
                Ok(())
            })();
            if let Err(e) = r {
                self.warn(c.pos, format!("{e}; {name} left out"));
                return None;
            }
        }
        let o = opts.over(inherited);
        hc.interval_ms = o.delay_loop_ms.unwrap_or(DELAY_LOOP_MS);
        hc.timeout_ms = o.connect_timeout_ms.unwrap_or(CONNECT_TIMEOUT_MS);
        let retry_default = match kind {
            CheckKind::Dns => 3,
            CheckKind::Exec => 0,
            _ => 1,
        };
        hc.rise = 1;
        hc.fall = o.retry.unwrap_or(retry_default).saturating_add(1);
        hc.on_failure = if o.inhibit.unwrap_or(false) {
            FailureAction::Quiesce
        } else {
            FailureAction::Remove
        };
        match kind {
            CheckKind::Http | CheckKind::Https => {
                hc.host = url_host.or(o.virtualhost);
                if hc.expect_status.is_none() {
                    hc.expect_status = Some("200-299".into());
                }
            }
            CheckKind::Dns => {
                hc.query_type = Some(dns_type.unwrap_or_else(|| "SOA".into()));
                hc.query_name = Some(dns_name.unwrap_or_else(|| ".".into()));
            }
            CheckKind::Exec => {
                let Some(path) = misc_path else {
                    self.warn(k.pos, "MISC_CHECK without misc_path; left out");
                    return None;
                };
                hc.command = script_argv(&path)
                    .iter()
                    .map(|a| substitute_address(a, written, &real.address))
                    .collect();
                if hc.command.is_empty() {
                    self.warn(k.pos, "MISC_CHECK with an empty misc_path; left out");
                    return None;
                }
                // keepalived lets a script run up to delay_loop without misc_timeout.
                hc.timeout_ms = misc_timeout.unwrap_or(hc.interval_ms);
                if hc.port.is_some() {
                    self.warn(k.pos, "MISC_CHECK connect_port is not mapped");
                    hc.port = None;
                }
            }
            _ => {}
        }
        Some(hc)
    }

    /// The first `url` block; gives its own `virtualhost`.
    fn url(&mut self, u: &Node, hc: &mut HealthCheck) -> Result<Option<String>, String> {
        let mut host = None;
        for c in u.children() {
            let kw = c.kw();
            let args = c.args();
            match kw {
                "path" => hc.path = Some(one(kw, args)?.to_string()),
                "status_code" => {
                    if args.is_empty() {
                        return Err("status_code needs a code or range".into());
                    }
                    let (range, rest) = status_range(args)?;
                    if !rest.is_empty() {
                        self.warn(
                            c.pos,
                            format!("status_code: one range is checked ({range}); {:?} left out", rest.join(" ")),
                        );
                    }
                    hc.expect_status = Some(range);
                }
                "virtualhost" => host = Some(one(kw, args)?.to_string()),
                "digest" => self.warn(
                    c.pos,
                    "digest is not mapped: checks compare the status (and body_contains), not an MD5 of the page",
                ),
                "regex" => {
                    let re = one(kw, args)?;
                    if re.contains(|c: char| ".^$*+?()[]{}|\\".contains(c)) {
                        self.warn(
                            c.pos,
                            format!("regex {re:?} is not mapped: body_contains matches plain text only"),
                        );
                    } else {
                        hc.body_contains = Some(re.to_string());
                    }
                }
                _ => self.warn(c.pos, format!("{kw} in url is not mapped")),
            }
        }
        Ok(host)
    }

    /// The check the service takes: the first real server's; warns for every real that differs.
    fn service_check(&mut self, vs: &Vs) -> Option<(HealthCheck, Pos, String)> {
        let first = vs.reals.iter().find_map(|r| r.check.clone())?;
        let at = self.at(first.1);
        for r in &vs.reals {
            match &r.check {
                Some((hc, _, _)) if *hc == first.0 => {}
                Some((hc, pos, name)) => {
                    let d = check_diff(&first.0, hc);
                    self.warn(
                        *pos,
                        format!(
                            "`{}`: its {name} differs in {} from the service's check ({} at {at}), which applies to every real server of the service",
                            r.text,
                            d.join(", "),
                            first.2
                        ),
                    );
                }
                None => self.warn(
                    r.pos,
                    format!(
                        "`{}` has no checker, but the service's check ({} at {at}) applies to it too",
                        r.text, first.2
                    ),
                ),
            }
        }
        Some(first)
    }

    fn service(
        &mut self,
        vs: &Vs,
        head: Head,
        check: &Option<(HealthCheck, Pos, String)>,
    ) -> Option<Service> {
        let key = match head {
            Head::Addr(address, p) => ServiceKey::Addr {
                protocol: vs.protocol,
                address,
                port: p.unwrap_or(0),
            },
            Head::Fwmark(mark, fam) => {
                let family = fam.or(vs.ip_family).unwrap_or_else(|| {
                    vs.reals
                        .first()
                        .map(|r| Family::of(&r.server.address))
                        .or(vs.sorry.map(|(a, _)| Family::of(&a)))
                        .unwrap_or(Family::Ipv4)
                });
                ServiceKey::Fwmark { family, mark }
            }
            Head::Group(_) => unreachable!("groups are expanded first"),
        };
        let mut s = Service::new(key);
        s.scheduler = vs.scheduler;
        for (flag, pos, kw) in &vs.sched_flags {
            if matches!(s.scheduler, Scheduler::Sh | Scheduler::Mh) {
                if !s.sched_flags.contains(flag) {
                    s.sched_flags.push(*flag);
                }
            } else {
                self.warn(
                    *pos,
                    format!(
                        "{kw} only applies to the sh and mh schedulers, not {}; left out",
                        s.scheduler
                    ),
                );
            }
        }
        if let Some(pos) = vs.one_packet {
            match key {
                ServiceKey::Addr { protocol, .. } if protocol != Protocol::Udp => self.warn(
                    pos,
                    format!(
                        "ops only applies to UDP and fwmark services, not {}; left out",
                        protocol.as_str()
                    ),
                ),
                _ => s.one_packet = true,
            }
        }
        // keepalived: a timeout of 0 is no persistence.
        match (vs.persistence_timeout.filter(|t| *t > 0), &vs.granularity) {
            (Some(timeout), g) => {
                s.persistence = Some(Persistence {
                    timeout,
                    netmask: g.as_ref().map(|(m, _)| m.clone()),
                })
            }
            (None, Some((m, pos))) => self.warn(
                *pos,
                format!("persistence_granularity {m} without persistence_timeout has no effect; left out"),
            ),
            (None, None) => {}
        }
        let sport = key.port();
        s.reals = vs
            .reals
            .iter()
            .map(|r| {
                // Like ipvsadm: an omitted port is the service's (0 under fwmark services).
                let mut server = r.server.clone();
                server.port = r.port.or(sport).unwrap_or(0);
                server
            })
            .collect();
        if let Some((addr, p)) = vs.sorry {
            let mut sorry = RealServer::new(addr, p.or(sport).unwrap_or(0));
            vs.sorry_method.unwrap_or(vs.method).apply(&mut sorry);
            s.sorry_server = Some(sorry);
        }
        s.health_check = check.as_ref().map(|c| c.0.clone());
        if let (Some((hc, pos, name)), Some(r)) = (check, s.reals.iter().find(|r| r.port == 0)) {
            if hc.kind != CheckKind::Exec && hc.port.is_none() {
                self.warn(
                    *pos,
                    format!(
                        "{name} of {}: real server {} has port 0, so there is no port to probe; add connect_port (check left out)",
                        s.key,
                        r.endpoint()
                    ),
                );
                s.health_check = None;
            }
        }
        Some(s)
    }
}

fn default_sync() -> SyncSettings {
    SyncSettings {
        mode: SyncMode::Multicast,
        interface: String::new(),
        syncid: 0,
        group: None,
        port: 8848,
        ttl: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Imported {
        parse("k.conf", text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn key(s: &str) -> ServiceKey {
        s.parse().unwrap()
    }

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
            .contains("unterminated"));
    }

    #[test]
    fn globs_match_like_the_shell() {
        assert!(fnmatch("*.conf", "web.conf"));
        assert!(!fnmatch("*.conf", "web.conf.disabled"));
        assert!(fnmatch("[0-9]?-*.conf", "10-web.conf"));
        assert!(!fnmatch("[!0-9]*", "10-web.conf"));
        assert!(fnmatch("a\\*", "a*"));
        assert!(!fnmatch("a\\*", "ab"));
        assert!(fnmatch("*", ""));
        assert!(fnmatch("[", "["));
        assert!(fnmatch("*a*b", "xaxxb"));
        assert!(!fnmatch("*a*b", "xaxxc"));
    }

    #[test]
    fn braces_on_the_next_line_and_blocks_on_one_line() {
        let im = ok("virtual_server 10.0.0.1 80\n{\n  lb_kind DR\n  real_server 10.0.1.1 80\n  {\n    weight 3 }\n}\nvirtual_server 10.0.0.2 80 { lb_kind DR; }\n");
        let s = &im.config.services[&key("tcp/10.0.0.1:80")];
        assert_eq!(s.reals[0].weight, 3);
        assert_eq!(s.reals[0].forward, Forward::Dr);
        // `lb_kind DR;` is read as a method "DR;" (keepalived has no semicolons).
        assert!(!im.config.services.contains_key(&key("tcp/10.0.0.2:80")));
        assert!(
            im.warnings
                .iter()
                .any(|w| w.starts_with("k.conf:8: lb_kind \"DR;\" is not NAT")),
            "{:#?}",
            im.warnings
        );
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let e = parse(
            "k.conf",
            "virtual_server 10.0.0.1 80 {\n  real_server 10.0.1.1 80 {\n}\n",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "k.conf:1: the '{' of `virtual_server 10.0.0.1 80` is never closed (input ends at k.conf:3)"
        );
        let e = parse("k.conf", "global_defs {\n}\n}\n").unwrap_err();
        assert_eq!(e, "k.conf:3: '}' without a matching '{'");
        let e = parse("k.conf", "\n{\n}\n").unwrap_err();
        assert_eq!(e, "k.conf:2: '{' without a keyword before it");
        let e = parse("k.conf", "x {\n y \"z\n}\n").unwrap_err();
        assert_eq!(e, "k.conf:2: unterminated quoted string (missing \")");
        let deep = "a {\n".repeat(40);
        assert!(parse("k.conf", &deep)
            .unwrap_err()
            .contains("nested deeper than 32"));
    }

    #[test]
    fn maps_a_dr_service_with_http_checks() {
        let im = ok(r#"
virtual_server 192.0.2.10 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind DR
    protocol TCP
    persistence_timeout
    persistence_granularity 255.255.255.0
    real_server 10.0.1.1 80 {
        weight 3
        inhibit_on_failure
        HTTP_GET {
            url {
                path /healthz
                status_code 200
            }
            connect_timeout 2.5
            nb_get_retry 2
            delay_before_retry 1
        }
    }
    real_server 10.0.1.2 80 {
        weight 1
        inhibit_on_failure
        HTTP_GET {
            url {
                path /healthz
                status_code 200
            }
            connect_timeout 2.5
            nb_get_retry 2
        }
    }
}
"#);
        let s = &im.config.services[&key("tcp/192.0.2.10:80")];
        assert_eq!(s.scheduler, Scheduler::Wrr);
        assert_eq!(
            s.persistence,
            Some(Persistence {
                timeout: 360,
                netmask: Some("255.255.255.0".into())
            })
        );
        assert_eq!(
            s.reals
                .iter()
                .map(|r| (r.weight, r.forward))
                .collect::<Vec<_>>(),
            vec![(3, Forward::Dr), (1, Forward::Dr)]
        );
        let hc = s.health_check.as_ref().unwrap();
        assert_eq!(hc.kind, CheckKind::Http);
        assert_eq!(hc.path.as_deref(), Some("/healthz"));
        assert_eq!(hc.expect_status.as_deref(), Some("200"));
        assert_eq!(
            (
                hc.interval_ms,
                hc.timeout_ms,
                hc.rise,
                hc.fall,
                hc.on_failure
            ),
            (6000, 2500, 1, 3, FailureAction::Quiesce)
        );
        assert_eq!(
            im.warnings,
            vec!["k.conf:19: delay_before_retry is not mapped: failed probes are repeated at the check interval"]
        );
        cluster_core::validate::config(&im.config).unwrap();
    }

    #[test]
    fn differing_checkers_keep_the_first_and_name_the_rest() {
        let im = ok(r#"
virtual_server 10.0.0.1 80 {
    lb_kind DR
    real_server 10.0.1.1 80 {
        TCP_CHECK { connect_timeout 3 }
    }
    real_server 10.0.1.2 80 {
        TCP_CHECK { connect_timeout 4 }
        HTTP_GET { url { path / } }
    }
    real_server 10.0.1.3 80 {
    }
}
"#);
        let s = &im.config.services[&key("tcp/10.0.0.1:80")];
        let hc = s.health_check.as_ref().unwrap();
        assert_eq!(
            (hc.kind, hc.timeout_ms, hc.on_failure),
            (CheckKind::Tcp, 3000, FailureAction::Remove)
        );
        assert_eq!(
            im.warnings,
            vec![
                "k.conf:9: HTTP_GET: only one check per service is kept (the first of this real server); left out",
                "k.conf:8: `real_server 10.0.1.2 80`: its TCP_CHECK differs in timeout_ms from the service's check (TCP_CHECK at k.conf:5), which applies to every real server of the service",
                "k.conf:11: `real_server 10.0.1.3 80` has no checker, but the service's check (TCP_CHECK at k.conf:5) applies to it too",
            ]
        );
    }

    #[test]
    fn misc_check_addresses_become_placeholders() {
        let im = ok(r#"
virtual_server fwmark 7 {
    lb_kind DR
    real_server 10.0.1.1 {
        MISC_CHECK {
            misc_path "/usr/local/bin/check --host 10.0.1.1 --url http://10.0.1.1:8080/ 10.0.1.10"
            misc_timeout 4
        }
    }
    real_server 10.0.1.10 {
        MISC_CHECK {
            misc_path "/usr/local/bin/check --host 10.0.1.10 --url http://10.0.1.10:8080/ 10.0.1.10"
            misc_timeout 4
        }
    }
}
"#);
        let s = &im.config.services[&key("fwmark/7")];
        let hc = s.health_check.as_ref().unwrap();
        assert_eq!(
            hc.command,
            vec![
                "/usr/local/bin/check",
                "--host",
                "{address}",
                "--url",
                "http://{address}:8080/",
                "10.0.1.10"
            ],
            "{:#?}",
            im.warnings
        );
        // The second real's own address is replaced, the literal 10.0.1.10 argument of the first
        // is not: they differ.
        assert_eq!(im.warnings.len(), 1, "{:#?}", im.warnings);
        assert!(
            im.warnings[0].contains("differs in command"),
            "{}",
            im.warnings[0]
        );
        assert_eq!((hc.timeout_ms, hc.fall), (4000, 1));
        assert_eq!(
            s.reals.iter().map(|r| r.port).collect::<Vec<_>>(),
            vec![0, 0]
        );
    }

    #[test]
    fn persistence_timeout_zero_is_no_persistence() {
        let im = ok("virtual_server 10.0.0.1 80 {\n  persistence_timeout 0\n  persistence_granularity 255.255.0.0\n}\n");
        assert_eq!(
            im.config.services[&key("tcp/10.0.0.1:80")].persistence,
            None
        );
        assert_eq!(
            im.warnings,
            vec!["k.conf:3: persistence_granularity 255.255.0.0 without persistence_timeout has no effect; left out"]
        );
    }

    #[test]
    fn a_check_without_a_port_to_probe_is_left_out() {
        let im = ok(r#"
virtual_server fwmark 8 {
    lb_kind DR
    real_server 10.0.1.1 0 {
        TCP_CHECK {
            connect_timeout 2
        }
    }
}
virtual_server fwmark 9 {
    lb_kind DR
    real_server 10.0.1.1 0 {
        TCP_CHECK {
            connect_port 80
        }
    }
}
"#);
        assert_eq!(im.config.services[&key("fwmark/8")].health_check, None);
        assert_eq!(
            im.config.services[&key("fwmark/9")]
                .health_check
                .as_ref()
                .and_then(|h| h.port),
            Some(80)
        );
        assert_eq!(
            im.warnings,
            vec!["k.conf:5: TCP_CHECK of fwmark/8: real server 10.0.1.1:0 has port 0, so there is no port to probe; add connect_port (check left out)"]
        );
    }

    #[test]
    fn script_words_follow_keepalived() {
        assert_eq!(
            script_argv(r#"/bin/x ' a b' "c d" e\ f"#),
            vec!["/bin/x", " a b", "c d", "e f"]
        );
        assert_eq!(
            substitute_address(
                "10.0.0.1,10.0.0.10,x10.0.0.1",
                "10.0.0.1",
                &"10.0.0.1".parse().unwrap()
            ),
            "{address},10.0.0.10,x10.0.0.1"
        );
        assert_eq!(
            substitute_address(
                "[2001:db8::1]:80",
                "2001:DB8::1",
                &"2001:db8::1".parse().unwrap()
            ),
            "[{address}]:80"
        );
    }

    #[test]
    fn groups_and_ranges_expand() {
        let im = ok(r#"
virtual_server_group web {
    192.0.2.1-3 80
    2001:db8::a-b 80
    fwmark 9
    10.0.0.0/16 80
}
virtual_server group web {
    lb_kind TUN type gue port 6080 csum
    real_server 10.0.1.1 80 { }
}
"#);
        let keys: Vec<String> = im.config.services.keys().map(|k| k.to_string()).collect();
        assert_eq!(
            keys,
            vec![
                "tcp/192.0.2.1:80",
                "tcp/192.0.2.2:80",
                "tcp/192.0.2.3:80",
                "tcp/[2001:db8::a]:80",
                "tcp/[2001:db8::b]:80",
                "fwmark/9"
            ]
        );
        let r = &im.config.services[&key("fwmark/9")].reals[0];
        assert_eq!(
            (
                r.forward,
                r.tunnel_type,
                r.tunnel_port,
                r.tunnel_csum,
                r.port
            ),
            (
                Forward::Tunnel,
                Some(TunnelType::Gue),
                Some(6080),
                Some(TunnelCsum::Csum),
                80
            )
        );
        assert_eq!(im.warnings.len(), 1, "{:#?}", im.warnings);
        assert!(
            im.warnings[0].starts_with(
                "k.conf:6: virtual_server_group web: \"10.0.0.0/16\" holds 65536 addresses"
            ),
            "{}",
            im.warnings[0]
        );
        cluster_core::validate::config(&im.config).unwrap();
    }

    #[test]
    fn vrrp_becomes_vip_groups_and_sync() {
        let im = ok(r#"
global_defs {
    router_id LVS_A
    lvs_sync_daemon eth1 VI_1 port 8849
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.10/24
        192.0.2.11/24 dev eth0 label eth0:1
        198.51.100.5 dev eth2
    }
}
"#);
        let g = &im.config.vip_groups;
        assert_eq!(g.len(), 2, "{g:#?}");
        assert_eq!(
            (g[0].name.as_str(), g[0].interface.as_str()),
            ("VI_1", "eth0")
        );
        assert_eq!(g[0].addresses.len(), 2);
        assert_eq!(
            (g[1].name.as_str(), g[1].interface.as_str()),
            ("VI_1-eth2", "eth2")
        );
        assert_eq!(g[1].addresses[0].to_string(), "198.51.100.5/32");
        let sync = im.config.sync.as_ref().unwrap();
        assert_eq!(
            (sync.interface.as_str(), sync.syncid, sync.port),
            ("eth1", 51, 8849)
        );
        assert_eq!(
            im.warnings,
            vec![
                "k.conf:3: global_defs router_id is not mapped; left out",
                "k.conf:12: virtual_ipaddress 192.0.2.11/24: \"label eth0:1\" is not mapped (VIPs are plain addresses on an interface)",
                "k.conf:6: vrrp_instance VI_1 is not mapped: the leader director holds the VIPs (no VRRP); its addresses are in [[vip_group]] (lvsctl vip set VI_1 --interface eth0 192.0.2.10/24 192.0.2.11/24; lvsctl vip set VI_1-eth2 --interface eth2 198.51.100.5/32)",
            ]
        );
        cluster_core::validate::config(&im.config).unwrap();
    }

    #[test]
    fn bad_values_leave_out_what_they_belong_to() {
        let im = ok(r#"
virtual_server 10.0.0.1 80 {
    lb_algo nosuch
}
virtual_server 10.0.0.2 80 {
    lb_kind NAT
    real_server 10.0.1.1 8080 { weight heavy }
    real_server 10.0.1.2 8080 { TCP_CHECK { connect_port http } }
    sorry_server 10.0.9.9 8080
}
virtual_server 10.0.0.300 80 { }
virtual_server 10.0.0.3 80 { frobnicate 1 }
"#);
        assert_eq!(im.config.services.len(), 2);
        let s = &im.config.services[&key("tcp/10.0.0.2:80")];
        assert_eq!(s.reals.len(), 1);
        assert!(s.health_check.is_none());
        assert_eq!(s.sorry_server.as_ref().unwrap().forward, Forward::Masq);
        assert_eq!(s.sorry_server.as_ref().unwrap().port, 8080);
        assert_eq!(
            im.warnings,
            vec![
                "k.conf:3: lb_algo: unknown scheduler \"nosuch\" (expected one of rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf twos); `virtual_server 10.0.0.1 80` left out",
                "k.conf:7: weight \"heavy\" is not a number in range; `real_server 10.0.1.1 8080` left out",
                "k.conf:8: connect_port: port \"http\" is not a number in 0..=65535; TCP_CHECK left out",
                "k.conf:11: virtual_server: \"10.0.0.300\" is not an IP address; `virtual_server 10.0.0.300 80` left out",
                "k.conf:12: unknown keyword \"frobnicate\" in virtual_server; left out",
            ]
        );
    }

    #[test]
    fn includes_glob_nest_and_refuse_cycles() {
        let mut m = Memory::default();
        m.files
            .insert("etc/main.conf".into(), "include conf.d/*.conf\n".into());
        m.files.insert(
            "etc/conf.d/b.conf".into(),
            "virtual_server 10.0.0.2 80 {\n  include ../reals/*.inc\n}\n".into(),
        );
        m.files.insert(
            "etc/conf.d/a.conf".into(),
            "virtual_server 10.0.0.1 80 {\n}\nbogus\n".into(),
        );
        m.files
            .insert("etc/conf.d/a.conf.off".into(), "bogus\n".into());
        m.files
            .insert("etc/conf.d/.hidden.conf".into(), "bogus\n".into());
        m.files.insert(
            "etc/reals/r1.inc".into(),
            "real_server 10.0.1.1 80 {\n  frob\n}\n".into(),
        );
        let im = from_path(&m, Path::new("etc/main.conf")).unwrap();
        assert_eq!(im.config.services.len(), 2);
        assert_eq!(im.config.services[&key("tcp/10.0.0.2:80")].reals.len(), 1);
        assert_eq!(
            im.warnings,
            vec![
                "etc/conf.d/a.conf:3: unknown keyword \"bogus\"; left out",
                "etc/reals/r1.inc:2: unknown keyword \"frob\" in real_server; left out",
            ]
        );

        m.files
            .insert("etc/loop/a.conf".into(), "include b.conf\n".into());
        m.files
            .insert("etc/loop/b.conf".into(), "\ninclude ./a.conf\n".into());
        let e = from_path(&m, Path::new("etc/loop/a.conf")).unwrap_err();
        assert_eq!(
            e,
            "etc/loop/b.conf:2: include ./a.conf: include cycle: etc/loop/a.conf -> etc/loop/b.conf -> etc/loop/a.conf"
        );
        let im = from_text(
            &m,
            "x.conf",
            Path::new("etc"),
            "include nothing/*.conf\ninclude missing.conf\n",
        )
        .unwrap();
        assert_eq!(
            im.warnings,
            vec![
                "x.conf:1: include nothing/*.conf: no file matches; nothing included",
                "x.conf:2: include missing.conf: no file matches; nothing included",
            ]
        );
    }

    #[test]
    fn fwmark_family_and_ipv6_granularity() {
        let im = ok(r#"
virtual_server fwmark 20 {
    lb_kind DR
    persistence_timeout 600
    persistence_granularity 64
    real_server 2001:db8:1::1 0 { }
}
virtual_server fwmark 21 {
    ip_family inet6
    lb_kind TUN
    real_server 10.0.1.1 0 { }
}
virtual_server 2001:db8::80 443 {
    lb_kind DR
    lb_algo sh
    sh-port
    ops
    real_server 2001:db8:1::1 443 {
        SSL_GET {
            url {
                path /ping
                status_code 200-299 300-399
            }
            virtualhost www.example.com
        }
    }
}
"#);
        assert_eq!(
            im.config.services[&key("fwmark6/20")]
                .persistence
                .as_ref()
                .unwrap()
                .netmask
                .as_deref(),
            Some("64")
        );
        assert!(im.config.services.contains_key(&key("fwmark6/21")));
        let s = &im.config.services[&key("tcp/[2001:db8::80]:443")];
        assert_eq!(s.sched_flags, vec![SchedFlag::Port]);
        assert!(!s.one_packet);
        let hc = s.health_check.as_ref().unwrap();
        assert_eq!(
            (hc.kind, hc.expect_status.as_deref(), hc.host.as_deref()),
            (CheckKind::Https, Some("200-399"), Some("www.example.com"))
        );
        assert_eq!(
            im.warnings,
            vec!["k.conf:17: ops only applies to UDP and fwmark services, not tcp; left out"]
        );
        cluster_core::validate::config(&im.config).unwrap();
    }

    /// keepalived text built from pieces, to give the property below realistic input.
    fn piece() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            Just("virtual_server 10.0.0.1 80 {".to_string()),
            Just("virtual_server fwmark 3 {".to_string()),
            Just("virtual_server group g {".to_string()),
            Just("virtual_server_group g {".to_string()),
            Just("real_server 10.0.1.1 80 {".to_string()),
            Just("TCP_CHECK {".to_string()),
            Just("HTTP_GET {".to_string()),
            Just("url {".to_string()),
            Just("MISC_CHECK {".to_string()),
            Just("vrrp_instance V {".to_string()),
            Just("virtual_ipaddress {".to_string()),
            Just("global_defs {".to_string()),
            Just("}".to_string()),
            Just("{".to_string()),
            Just("include x/*.conf".to_string()),
            "(lb_algo|lb_kind|weight|delay_loop|retry|connect_port|path|status_code|misc_path|type|name|persistence_timeout|persistence_granularity|protocol|sorry_server|lvs_sync_daemon|interface|inhibit_on_failure|ip_family) [ -~]{0,16}",
            "[0-9a-f.:/-]{1,20}( [0-9a-z]{1,6}){0,3}",
            "[ -~]{0,30}",
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Arbitrary text: an error or a config, never a panic; warnings carry FILE:LINE.
        #[test]
        fn never_panics_on_any_text(text in "[ -~\n\t{}\"'#!]{0,400}") {
            match parse("p", &text) {
                Ok(im) => {
                    proptest::prop_assert!(im.warnings.iter().all(|w| w.starts_with("p:")));
                    let _ = cluster_core::validate::config(&im.config);
                }
                Err(e) => proptest::prop_assert!(e.starts_with("p:"), "{}", e),
            }
        }

        /// keepalived-shaped text: the same, and what validates survives a TOML round trip.
        #[test]
        fn never_panics_on_keepalived_shaped_text(lines in proptest::collection::vec(piece(), 0..40)) {
            let text = lines.join("\n");
            match parse("p", &text) {
                Ok(im) => {
                    proptest::prop_assert!(im.warnings.iter().all(|w| w.starts_with("p:")), "{:?}", im.warnings);
                    if let Ok(v) = cluster_core::validate::config(&im.config) {
                        let back = Config::from_toml(&v.to_toml()).expect("own TOML parses");
                        proptest::prop_assert_eq!(back, v);
                    }
                }
                Err(e) => proptest::prop_assert!(e.starts_with("p:"), "{}", e),
            }
        }
    }
}
