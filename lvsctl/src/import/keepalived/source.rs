//! Where the configuration text comes from: the [`Source`] of files (the file system, or memory
//! for tests and fuzzing), path normalisation, and the `FILE:LINE` positions that every message
//! of the importer starts with.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::error::{Error, Problem};

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
pub(super) fn lexical(path: &Path) -> PathBuf {
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

/// A line of one of the files read, as an index into the list of file names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pos {
    pub file: usize,
    pub line: usize,
}

impl Pos {
    /// `FILE:LINE`, as messages name a place.
    pub fn at(self, files: &[String]) -> String {
        format!("{}:{}", files[self.file], self.line)
    }

    /// A fatal error at this place.
    pub fn error(self, files: &[String], problem: Problem) -> Error {
        Error::Line {
            file: files[self.file].clone(),
            line: self.line,
            problem,
        }
    }
}
