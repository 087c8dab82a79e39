//! Why an import fails: a file that cannot be read, too many files, or a syntax problem at a
//! `FILE:LINE`. Values that cannot be mapped are not errors but warnings (see `values`).

use std::io;
use std::path::PathBuf;

/// A keepalived.conf (or one of its includes) that cannot be read as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file named on the command line cannot be read.
    #[error("{name}: cannot be read: {err}")]
    Read { name: String, err: io::Error },
    /// More files than the limit are opened, includes counted.
    #[error("{name}: more than {limit} files are included; giving up")]
    TooManyFiles { name: String, limit: usize },
    /// A syntax or include problem at a line.
    #[error("{file}:{line}: {problem}")]
    Line {
        file: String,
        line: usize,
        problem: Problem,
    },
}

/// What is wrong at a line.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("unterminated quoted string (missing {0})")]
    UnterminatedQuote(char),
    #[error("conditional line (@{0}) with a brace cannot be left out; write the configuration for one director")]
    ConditionalBrace(String),
    #[error("{kw}: brace expansion in include patterns is not supported")]
    IncludeBrace { kw: String },
    #[error("{kw} needs a file name or pattern")]
    IncludeWithoutPattern { kw: String },
    #[error("{kw} {pattern}: includes nested deeper than {limit}")]
    IncludeTooDeep {
        kw: String,
        pattern: String,
        limit: usize,
    },
    #[error("{kw} {pattern}: {err}")]
    IncludeList {
        kw: String,
        pattern: String,
        err: ListError,
    },
    /// The files from the first one including the pattern's match again, joined by ` -> `.
    #[error("{kw} {pattern}: include cycle: {}", chain.join(" -> "))]
    IncludeCycle {
        kw: String,
        pattern: String,
        chain: Vec<String>,
    },
    #[error("{kw} {pattern}: {path} cannot be read: {err}")]
    IncludeRead {
        kw: String,
        pattern: String,
        path: String,
        err: io::Error,
    },
    #[error("'{{' without a keyword before it")]
    OpenWithoutKeyword,
    #[error("blocks nested deeper than {limit}")]
    TooDeep { limit: usize },
    #[error("'}}' without a matching '{{'")]
    UnmatchedClose,
    /// `end` is the `FILE:LINE` where the input ends.
    #[error("the '{{' of `{what}` is never closed (input ends at {end})")]
    Unclosed { what: String, end: String },
}

/// A directory that could not be listed while expanding a pattern.
#[derive(Debug, thiserror::Error)]
#[error("listing {}: {err}", dir.display())]
pub struct ListError {
    pub dir: PathBuf,
    pub err: io::Error,
}
