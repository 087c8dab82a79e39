//! The parser: tokens to a tree of statements (the words of one line) with optional blocks, a
//! block opening on the keyword's line or at the start of the next one.

use super::error::{Error, Problem};
use super::lexer::Tok;
use super::source::Pos;

/// Nested blocks deeper than this are refused (keepalived's own configs nest four deep).
const MAX_DEPTH: usize = 32;

/// One statement: its words (keyword first), where it starts and its block, if any.
#[derive(Debug)]
pub(super) struct Node {
    pub words: Vec<String>,
    pub pos: Pos,
    pub block: Option<Vec<Node>>,
}

impl Node {
    pub fn kw(&self) -> &str {
        &self.words[0]
    }

    pub fn args(&self) -> &[String] {
        &self.words[1..]
    }

    pub fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or(&[])
    }

    pub fn text(&self) -> String {
        self.words.join(" ")
    }
}

/// Reads the statements of all tokens; `files` names the files for messages.
pub(super) fn parse(toks: &[(Tok, Pos)], files: &[String]) -> Result<Vec<Node>, Error> {
    Parser { toks, i: 0, files }.block(0, None)
}

struct Parser<'a> {
    toks: &'a [(Tok, Pos)],
    i: usize,
    files: &'a [String],
}

impl Parser<'_> {
    fn error(&self, pos: Pos, problem: Problem) -> Error {
        pos.error(self.files, problem)
    }

    /// The statements up to the `}` closing `opener` (or the end of input at the top level).
    fn block(&mut self, depth: usize, opener: Option<(Pos, String)>) -> Result<Vec<Node>, Error> {
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
                            None => return Err(self.error(pos, Problem::OpenWithoutKeyword)),
                        },
                        None => return Err(self.error(pos, Problem::OpenWithoutKeyword)),
                    };
                    if depth + 1 > MAX_DEPTH {
                        return Err(self.error(pos, Problem::TooDeep { limit: MAX_DEPTH }));
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
                        return Err(self.error(pos, Problem::UnmatchedClose));
                    }
                    return Ok(nodes);
                }
            }
        }
        if let Some((pos, what)) = opener {
            let end = self.toks.last().map_or(pos, |t| t.1).at(self.files);
            return Err(self.error(pos, Problem::Unclosed { what, end }));
        }
        if let Some(n) = cur.take() {
            nodes.push(n);
        }
        Ok(nodes)
    }
}
