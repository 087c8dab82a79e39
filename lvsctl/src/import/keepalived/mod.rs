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
//!
//! # Layout
//!
//! * [`source`]: where files come from ([`Fs`], [`Memory`]) and `FILE:LINE` positions;
//!   `glob`: include patterns.
//! * `lexer`: lines to words and braces, includes expanded in place.
//! * `parser`: words to a tree of statements and blocks.
//! * `values`: the words after a keyword to typed values.
//! * `map`: the tree to our config, with warnings.
//! * [`error`]: why an import fails as a whole.

pub mod error;
mod glob;
mod lexer;
mod map;
mod parser;
pub mod source;
mod values;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use error::{Error, Problem};
pub use source::{Fs, Memory, Source};

use super::Imported;

/// Reads `path` and what it includes from the file system.
pub fn from_file(path: &Path) -> Result<Imported, Error> {
    from_path(&Fs, path)
}

/// Reads `path` and what it includes through `src`.
pub fn from_path(src: &dyn Source, path: &Path) -> Result<Imported, Error> {
    let name = path.display().to_string();
    let text = src.read(path).map_err(|err| Error::Read {
        name: name.clone(),
        err,
    })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    import(src, &name, Some(path), dir, &text)
}

/// Reads `text` (named `name` in messages); includes are resolved in `dir` through `src`.
pub fn from_text(src: &dyn Source, name: &str, dir: &Path, text: &str) -> Result<Imported, Error> {
    import(src, name, None, dir, text)
}

/// Reads `text` without any file access (includes match nothing and are warned about).
pub fn parse(name: &str, text: &str) -> Result<Imported, Error> {
    from_text(&Memory::default(), name, Path::new(""), text)
}

fn import(
    src: &dyn Source,
    name: &str,
    path: Option<&Path>,
    dir: &Path,
    text: &str,
) -> Result<Imported, Error> {
    let mut lx = lexer::Lexer::new(src, path);
    lx.file(name.to_string(), dir, text, 0)?;
    let tree = parser::parse(&lx.toks, &lx.files)?;
    let (config, warnings) = map::map(&lx.files, &tree, lx.warnings);
    Ok(Imported { config, warnings })
}
