//! Logical lines into a tree of keyword nodes, by the braces alone.
//!
//! keepalived decides nesting from which keywords it knows, so an unknown
//! keyword's `{ ... }` derails it: the inner lines are read as if they were
//! at the outer level and the inner `}` closes the outer block. Here the
//! braces decide, so an unknown block is one node whose whole contents the
//! model builder skips.

use crate::diag::{Diag, Pos};
use crate::reader::{Line, Word};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Keyword first, then its arguments. Empty for a block that opened
    /// without a keyword line before it.
    pub words: Vec<Word>,
    pub block: Option<Block>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub open: Pos,
    pub children: Vec<Node>,
    /// The closing `}` (None: the file ended first). keepalived reports
    /// what it finds when it completes a block there.
    pub close: Option<Pos>,
}

impl Node {
    pub fn keyword(&self) -> &str {
        self.words.first().map_or("{", |w| w.text.as_str())
    }
    pub fn pos(&self) -> &Pos {
        match (self.words.first(), &self.block) {
            (Some(w), _) => &w.pos,
            (None, Some(b)) => &b.open,
            (None, None) => unreachable!("a node has words or a block"),
        }
    }
    /// The words after the keyword.
    pub fn args(&self) -> &[Word] {
        self.words.get(1..).unwrap_or(&[])
    }
    pub fn arg(&self, i: usize) -> Option<&str> {
        self.args().get(i).map(|w| w.text.as_str())
    }
    pub fn children(&self) -> &[Node] {
        self.block.as_ref().map_or(&[], |b| &b.children)
    }
}

pub fn build(lines: Vec<Line>, diags: &mut Vec<Diag>) -> Vec<Node> {
    // One frame per open block: the nodes read so far at that level, and
    // the node (keyword line) that owns the block.
    let mut stack: Vec<(Vec<Node>, Option<Node>, Pos)> = Vec::new();
    let mut level: Vec<Node> = Vec::new();
    // Whether the previous line was a keyword line at this level, which a
    // following `{` then opens.
    let mut last_was_keyword = false;
    for line in lines {
        if line.is("{") {
            let open = line.pos().clone();
            let owner = if last_was_keyword { level.pop() } else { None };
            if owner.is_none() {
                diags.push(
                    Diag::warning(&open, "Unexpected '{' - ignoring")
                        .with_hint("a block needs a keyword before it; its contents are skipped"),
                );
            }
            stack.push((std::mem::take(&mut level), owner, open));
            last_was_keyword = false;
        } else if line.is("}") {
            match stack.pop() {
                Some((outer, owner, open)) => {
                    let children = std::mem::replace(&mut level, outer);
                    let block = Some(Block { open, children, close: Some(line.pos().clone()) });
                    let node = match owner {
                        Some(mut n) => {
                            n.block = block;
                            n
                        }
                        None => Node { words: Vec::new(), block },
                    };
                    level.push(node);
                }
                None => diags.push(Diag::warning(line.pos(), "Extra '}' found").with_hint("no block is open here")),
            }
            last_was_keyword = false;
        } else {
            level.push(Node { words: line.words, block: None });
            last_was_keyword = true;
        }
    }
    if let Some((_, _, open)) = stack.last() {
        let n = stack.len();
        diags.push(
            Diag::warning(open, format!("There are {n} missing '}}'s or extra '{{'s"))
                .with_hint("the block opened here is not closed"),
        );
    }
    // Close what is still open so nothing read is lost.
    while let Some((outer, owner, open)) = stack.pop() {
        let children = std::mem::replace(&mut level, outer);
        let block = Some(Block { open, children, close: None });
        level.push(match owner {
            Some(mut n) => {
                n.block = block;
                n
            }
            None => Node { words: Vec::new(), block },
        });
    }
    level
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{Options, Reader};
    use std::path::Path;

    fn tree(text: &str) -> (Vec<Node>, Vec<Diag>) {
        let mut diags = Vec::new();
        let mut r = Reader::new(Options::default(), &mut diags);
        r.read_text(Path::new("k.conf"), text);
        let lines = r.finish();
        let nodes = build(lines, &mut diags);
        (nodes, diags)
    }

    fn shape(nodes: &[Node]) -> String {
        nodes
            .iter()
            .map(|n| match &n.block {
                Some(b) => format!("{}[{}]", n.keyword(), shape(&b.children)),
                None => n.keyword().to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn nesting_follows_braces() {
        let (n, d) = tree("a 1 {\n b {\n c\n }\n d\n}\ne\n");
        assert_eq!(shape(&n), "a[b[c] d] e");
        assert!(d.is_empty());
        assert_eq!(n[0].arg(0), Some("1"));
    }

    #[test]
    fn extra_and_missing_braces_are_reported_where_they_are() {
        let (n, d) = tree("a {\n}\n}\n");
        assert_eq!(shape(&n), "a[]");
        assert_eq!(d[0].to_string(), "k.conf:3:1: warning: Extra '}' found; no block is open here");
        let (n, d) = tree("a {\n b {\n c\n");
        assert_eq!(shape(&n), "a[b[c]]");
        assert!(d[0].to_string().starts_with("k.conf:2:4: warning: There are 2 missing '}'s"));
    }

    #[test]
    fn a_stray_open_brace_makes_an_anonymous_block() {
        let (n, d) = tree("a {\n x\n {\n y\n }\n z\n}\n");
        assert_eq!(shape(&n), "a[x[y] z]", "a keyword line then a brace line is a block");
        assert!(d.is_empty());
        let (n, d) = tree("a {\n {\n y\n }\n z\n}\n");
        assert_eq!(shape(&n), "a[{[y] z]");
        assert!(d[0].message.starts_with("Unexpected '{'"));
    }
}
