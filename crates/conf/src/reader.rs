//! The preprocessor: physical lines in, logical lines of words out, as
//! keepalived 2.2's parser reads them.
//!
//! - `#` and `!` start a comment anywhere outside double quotes (`\#` and
//!   `\!` are the characters themselves);
//! - every `{` and `}` outside quotes is a line of its own, so
//!   `real_server 10.1.1.244 80 {` is the keyword line and then `{`;
//! - `@id` / `@^id` at the start of a line keep it only when the config id
//!   matches / does not match;
//! - `$NAME=value` defines, `$NAME` (before whitespace or the end) and
//!   `${NAME}` expand, recursively and at use time; a definition whose
//!   value ends in `\` goes on over the following lines and expands to
//!   several lines;
//! - `~SEQ(var, [start,] [step,] end)`, `~SEQx(...)` and `~LST(var, v1, ...)`
//!   repeat the rest of the line;
//! - `include PATTERN` reads the matching files, relative to the including
//!   file's directory, in glob order.
//!
//! Every word keeps the file, line and column it came from; words produced
//! by an expansion point at the start of the line that used it.

use crate::diag::{Diag, Pos};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub pos: Pos,
}

/// One logical line: a keyword and its arguments, or a lone `{` or `}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub words: Vec<Word>,
}

impl Line {
    pub fn pos(&self) -> &Pos {
        &self.words[0].pos
    }
    pub fn is(&self, s: &str) -> bool {
        self.words.len() == 1 && self.words[0].text == s
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-i`: the id `@id` lines are compared with; keepalived defaults it
    /// to the host name's first label.
    pub config_id: Option<String>,
}

/// Where the text being processed came from.
#[derive(Debug, Clone)]
struct Src {
    file: Arc<str>,
    dir: PathBuf,
    line: u32,
    /// Column of the text's first character in the physical line.
    col: u32,
    /// False once the text came out of an expansion: columns no longer
    /// map to the file, so every word gets `col`.
    exact: bool,
}

impl Src {
    fn at(&self, offset_chars: usize) -> Pos {
        let col = if self.exact { self.col + offset_chars as u32 } else { self.col };
        Pos { file: self.file.clone(), line: self.line, col }
    }
    fn expanded(&self) -> Src {
        Src { exact: false, ..self.clone() }
    }
}

const MAX_DEPTH: usize = 32;

pub struct Reader<'d> {
    opts: Options,
    defs: HashMap<String, String>,
    /// A multi-line definition being collected: its name and value so far.
    collecting: Option<(String, String)>,
    diags: &'d mut Vec<Diag>,
    out: Vec<Line>,
    include_depth: usize,
    random_state: u64,
}

impl<'d> Reader<'d> {
    pub fn new(opts: Options, diags: &'d mut Vec<Diag>) -> Self {
        let random_state = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        Reader { opts, defs: HashMap::new(), collecting: None, diags, out: Vec::new(), include_depth: 0, random_state }
    }

    /// Reads `path` (a glob pattern, as keepalived allows) and everything
    /// it includes. Returns false when no file could be read.
    pub fn read_path(&mut self, path: &Path) -> bool {
        let files = expand_glob(path);
        if files.is_empty() {
            return false;
        }
        for f in files {
            match std::fs::read(&f) {
                Ok(bytes) => self.read_text(&f, &String::from_utf8_lossy(&bytes)),
                Err(e) => {
                    let pos = Pos { file: f.to_string_lossy().into(), line: 0, col: 0 };
                    // keepalived's words, then the system's reason.
                    let what = if e.kind() == std::io::ErrorKind::NotFound { "find" } else { "read" };
                    let m = format!("Unable to {what} configuration file {} ({e})", f.display());
                    self.diags.push(Diag::error(&pos, m));
                    return false;
                }
            }
        }
        true
    }

    /// Reads configuration text as if it were the file `name`.
    pub fn read_text(&mut self, name: &Path, text: &str) {
        let file: Arc<str> = name.to_string_lossy().into();
        let dir = name.parent().map(Path::to_path_buf).unwrap_or_default();
        for (i, raw) in text.lines().enumerate() {
            let src = Src { file: file.clone(), dir: dir.clone(), line: i as u32 + 1, col: 1, exact: true };
            let (text, skipped) = self.decomment(raw, &src);
            let src = Src { col: 1 + skipped as u32, ..src };
            if self.collecting.is_some() {
                self.collect_definition_line(&text);
                continue;
            }
            if !text.is_empty() {
                self.logical(&text, &src, 0);
            }
        }
        if let Some((name, value)) = self.collecting.take() {
            // A file that ends inside a multi-line definition ends it.
            self.defs.insert(name, value);
        }
    }

    pub fn finish(self) -> Vec<Line> {
        self.out
    }

    /// keepalived's decomment(): strips leading/trailing blanks and the
    /// comment, unescapes `\#` and `\!`. Returns the text and how many
    /// leading characters were skipped.
    fn decomment(&mut self, raw: &str, src: &Src) -> (String, usize) {
        let lead = raw.chars().take_while(|c| *c == ' ' || *c == '\t').count();
        let mut out = String::with_capacity(raw.len());
        let mut quote = false;
        let mut chars = raw.chars().skip(lead).peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    quote = !quote;
                    out.push(c);
                }
                '\\' => match chars.peek() {
                    Some(&n @ ('#' | '!')) if !quote => {
                        out.push(n);
                        chars.next();
                    }
                    Some(&n) => {
                        out.push('\\');
                        out.push(n);
                        chars.next();
                    }
                    None => out.push('\\'),
                },
                '#' | '!' if !quote => break,
                _ => out.push(c),
            }
        }
        if quote {
            self.diags.push(Diag::warning(&src.at(lead), format!("Unterminated quote '{}'", raw.trim())));
        }
        let trimmed = out.trim_end_matches([' ', '\t', '\r']).to_string();
        (trimmed, lead)
    }

    fn collect_definition_line(&mut self, text: &str) {
        let (name, mut value) = self.collecting.take().unwrap();
        let (piece, more) = match text.strip_suffix('\\') {
            Some(p) => (p.trim_end(), true),
            None => (text, false),
        };
        if !piece.is_empty() {
            if !value.is_empty() {
                value.push('\n');
            }
            value.push_str(piece);
        }
        if more {
            self.collecting = Some((name, value));
        } else {
            self.defs.insert(name, value);
        }
    }

    /// One logical line after comments are gone.
    fn logical(&mut self, text: &str, src: &Src, depth: usize) {
        if depth > MAX_DEPTH {
            self.diags.push(Diag::error(
                &src.at(0),
                "definitions or sequences nested too deeply (a definition that uses itself?)",
            ));
            return;
        }
        let mut text = text.to_string();
        let mut src = src.clone();
        // @id / @^id: keep the line only for (not) this config id.
        if let Some(rest) = text.strip_prefix('@') {
            let (negate, rest) = match rest.strip_prefix('^') {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let Some(space) = rest.find([' ', '\t']) else { return };
            let id = &rest[..space];
            let matches = self.opts.config_id.as_deref() == Some(id);
            if matches == negate {
                return;
            }
            let body = rest[space..].trim_start();
            let skipped = text.chars().count() - body.chars().count();
            src = Src { col: src.col + skipped as u32, ..src };
            text = body.to_string();
        }
        if let Some((name, value)) = parse_definition(&text) {
            match value.strip_suffix('\\') {
                Some(v) => self.collecting = Some((name, v.trim_end().to_string())),
                None => {
                    self.defs.insert(name, value);
                }
            }
            return;
        }
        if text.starts_with("~SEQ") || text.starts_with("~LST") {
            self.sequence(&text, &src, depth);
            return;
        }
        if text.contains('$') {
            if let Some(expanded) = self.substitute(&text, &src) {
                let esrc = src.expanded();
                for piece in expanded.split('\n') {
                    let (piece, _) = self.decomment(piece, &esrc);
                    if !piece.is_empty() {
                        self.logical(&piece, &esrc, depth + 1);
                    }
                }
                return;
            }
        }
        if let Some((pattern, _kind)) = include_target(&text) {
            self.include(pattern, &src);
            return;
        }
        self.emit(&text, &src);
    }

    /// Splits at braces outside quotes and tokenizes, as read_line and
    /// alloc_strvec do.
    fn emit(&mut self, text: &str, src: &Src) {
        let chars: Vec<char> = text.chars().collect();
        let mut start = 0;
        let mut quote = false;
        for (i, &c) in chars.iter().enumerate() {
            match c {
                '"' => quote = !quote,
                '{' | '}' if !quote => {
                    self.push_words(&chars[start..i], start, src);
                    self.out.push(Line { words: vec![Word { text: c.to_string(), pos: src.at(i) }] });
                    start = i + 1;
                }
                _ => {}
            }
        }
        self.push_words(&chars[start..], start, src);
    }

    fn push_words(&mut self, seg: &[char], offset: usize, src: &Src) {
        let mut words = Vec::new();
        let mut i = 0;
        while i < seg.len() {
            if seg[i].is_whitespace() {
                i += 1;
                continue;
            }
            let begin = i;
            let text: String = if seg[i] == '"' {
                match seg[i + 1..].iter().position(|&c| c == '"') {
                    Some(end) => {
                        i += end + 2;
                        seg[begin + 1..begin + 1 + end].iter().collect()
                    }
                    None => {
                        let line: String = seg.iter().collect();
                        self.diags.push(Diag::warning(
                            &src.at(offset + begin),
                            format!("Unmatched quote: '{}'", line.trim()),
                        ));
                        break;
                    }
                }
            } else {
                while i < seg.len() && !seg[i].is_whitespace() && seg[i] != '"' {
                    i += 1;
                }
                seg[begin..i].iter().collect()
            };
            words.push(Word { text, pos: src.at(offset + begin) });
        }
        if !words.is_empty() {
            self.out.push(Line { words });
        }
    }

    /// replace_param: `${NAME}` anywhere, `$NAME` before whitespace or the
    /// end. None when nothing was replaced. `${_HASH}`/`${_BANG}` come out
    /// escaped so the re-decomment does not take them for comments.
    fn substitute(&mut self, text: &str, src: &Src) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut changed = false;
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (name, params, used) = if let Some(inner) = after.strip_prefix('{') {
                match inner.find('}') {
                    Some(end) => {
                        let body = &inner[..end];
                        let mut parts = body.split_whitespace();
                        let name = parts.next().unwrap_or("");
                        (name.to_string(), parts.map(str::to_string).collect::<Vec<_>>(), end + 2)
                    }
                    None => (String::new(), Vec::new(), 0),
                }
            } else {
                // keepalived's find_definition: a name of letters, digits and
                // '_' that ends at a blank, ',', ')' or the end of the text;
                // anything else after it and it is not a reference.
                let len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                let ends_well = after[len..].chars().next().is_none_or(|c| matches!(c, ' ' | '\t' | ',' | ')'));
                let starts_well = after.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
                if ends_well && starts_well {
                    (after[..len].to_string(), Vec::new(), len)
                } else {
                    (String::new(), Vec::new(), 0)
                }
            };
            // A multi-line definition stands only at the very end of a line.
            let value = (used > 0).then(|| self.value_of(&name, &params, src)).flatten();
            match value.filter(|v| !v.contains('\n') || after[used..].is_empty()) {
                Some(v) => {
                    out.push_str(&v);
                    changed = true;
                    rest = &after[used..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        changed.then_some(out)
    }

    fn value_of(&mut self, name: &str, params: &[String], src: &Src) -> Option<String> {
        Some(match name {
            "_PWD" => src.dir.to_string_lossy().into_owned(),
            "_INSTANCE" => self.opts.config_id.clone().unwrap_or_default(),
            "_HASH" => "\\#".into(),
            "_BANG" => "\\!".into(),
            "_RANDOM" => {
                let min: u64 = params.first().and_then(|p| p.parse().ok()).unwrap_or(0);
                let max: u64 = params.get(1).and_then(|p| p.parse().ok()).unwrap_or(32767).max(min);
                // xorshift: no need for a cryptographic source here.
                self.random_state ^= self.random_state << 13;
                self.random_state ^= self.random_state >> 7;
                self.random_state ^= self.random_state << 17;
                (min + self.random_state % (max - min + 1)).to_string()
            }
            _ => self.defs.get(name)?.clone(),
        })
    }

    /// `~SEQ(var, [start,] [step,] end) rest` and `~LST(var, v1, v2, ...)`
    /// (`~LST({a, b}, {1, 2}, ...)` for several variables at once).
    fn sequence(&mut self, text: &str, src: &Src, depth: usize) {
        let bad = |this: &mut Self, what: &str| {
            this.diags.push(Diag::warning(&src.at(0), format!("Invalid {what} specification '{text}'")));
        };
        // keepalived says what is wrong first, then that the line is bad.
        let why = |this: &mut Self, m: String| this.diags.push(Diag::warning(&src.at(0), m));
        let hex = text.starts_with("~SEQx");
        let is_seq = text.starts_with("~SEQ");
        let what = if is_seq { "~SEQ" } else { "~LST" };
        let Some(open) = text.find('(') else { return bad(self, what) };
        let Some(close) = matching_paren(text, open) else { return bad(self, what) };
        let spec = &text[open + 1..close];
        let rest = text[close + 1..].trim_start();
        let sets: Vec<(Vec<String>, Vec<String>)> = if is_seq {
            // keepalived's add_seq: the name runs to a blank, comma or
            // parenthesis; one character (meant to be the comma) is skipped
            // after it, whatever it is; then one to three numbers.
            // Its parameters may use $definitions (not the name), read up
            // to the closing parenthesis as keepalived reads them.
            let spec = match spec.contains('$').then(|| self.substitute(&format!("{spec})"), src)).flatten() {
                Some(expanded) => expanded.strip_suffix(')').unwrap_or(&expanded).to_string(),
                None => spec.to_string(),
            };
            let spec_t = spec.trim_start_matches([' ', '\t']);
            let var_len = spec_t.find([' ', '\t', ',', ')']).unwrap_or(spec_t.len());
            let var = &spec_t[..var_len];
            let after = spec_t[var_len..].trim_start_matches([' ', '\t']);
            let numbers = after.get(1..).unwrap_or("");
            let parts: Vec<&str> =
                if after.is_empty() { Vec::new() } else { numbers.split(',').map(str::trim).collect() };
            let num = |s: &str| -> Option<i64> {
                match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                    Some(h) => i64::from_str_radix(h, 16).ok(),
                    None => s.parse().ok(),
                }
            };
            let nums: Option<Vec<i64>> = if parts.is_empty() { None } else { parts.iter().map(|p| num(p)).collect() };
            let definition = format!("Invalid ~SEQ definition '{text}'");
            let nums = match nums {
                Some(n) if !var.is_empty() && (1..=3).contains(&n.len()) => n,
                _ => {
                    why(self, definition);
                    return bad(self, what);
                }
            };
            let (start, step, end) = match nums[..] {
                [end] => (if end < 0 { -1 } else { 1 }, if end < 1 { -1 } else { 1 }, end),
                [start, end] => (start, if end >= start { 1 } else { -1 }, end),
                [start, step, end] => (start, step, end),
                _ => unreachable!("one to three numbers"),
            };
            if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
                why(self, format!("Invalid ~SEQ values '{text}'"));
                return bad(self, what);
            }
            if hex && (start < 0 || end < 0) {
                why(self, format!("~SEQx is only valid for positive numbers '{text}'"));
                return bad(self, what);
            }
            let count = (end - start) / step + 1;
            if count > 1_000_000 {
                return bad(self, what);
            }
            (0..count)
                .map(|k| {
                    let v = start + k * step;
                    let s = if hex { format!("{v:x}") } else { v.to_string() };
                    (vec![var.to_string()], vec![s])
                })
                .collect()
        } else {
            let items = split_lst(spec);
            if items.len() < 2 {
                return bad(self, what);
            }
            let vars = items[0].clone();
            if items[1..].iter().any(|v| v.len() > vars.len()) {
                why(self, format!("~LST specification has too many values '{text}'"));
                return bad(self, what);
            }
            // Values not given are blank.
            items[1..]
                .iter()
                .map(|v| {
                    let mut v = v.clone();
                    v.resize(vars.len(), String::new());
                    (vars.clone(), v)
                })
                .collect()
        };
        let esrc = src.expanded();
        for (vars, values) in sets {
            for (var, value) in vars.iter().zip(values) {
                self.defs.insert(var.clone(), value);
            }
            self.logical(rest, &esrc, depth + 1);
        }
    }

    fn include(&mut self, pattern: &str, src: &Src) {
        if self.include_depth >= MAX_DEPTH {
            self.diags.push(Diag::error(&src.at(0), "include nested too deeply"));
            return;
        }
        let path = Path::new(pattern);
        let full = if path.is_absolute() { path.to_path_buf() } else { src.dir.join(path) };
        let files = expand_glob(&full);
        if files.is_empty() {
            // keepalived logs it and carries on: not a configuration error.
            self.diags.push(
                Diag::note(&src.at(0), format!("Config files missing '{pattern}'."))
                    .with_hint("nothing matched; the rest of the file is read without it"),
            );
            return;
        }
        self.include_depth += 1;
        for f in files {
            match std::fs::read(&f) {
                Ok(bytes) => self.read_text(&f, &String::from_utf8_lossy(&bytes)),
                Err(e) => self.diags.push(Diag::warning(&src.at(0), format!("cannot read {}: {e}", f.display()))),
            }
        }
        self.include_depth -= 1;
    }
}

/// `$NAME=value` with NAME of `[A-Za-z_][A-Za-z0-9_]*` and no space before
/// the `=`.
fn parse_definition(text: &str) -> Option<(String, String)> {
    let body = text.strip_prefix('$')?;
    let eq = body.find('=')?;
    let name = &body[..eq];
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_') || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((name.to_string(), body[eq + 1..].trim().to_string()))
}

/// `include`, `includer`, `includem`, `includew`, `includeb`, `includea`.
fn include_target(text: &str) -> Option<(&str, char)> {
    let rest = text.strip_prefix("include")?;
    let (kind, rest) = match rest.chars().next()? {
        c if c == ' ' || c == '\t' => (' ', rest),
        c @ ('r' | 'm' | 'w' | 'b' | 'a') if rest[1..].starts_with([' ', '\t']) => (c, &rest[1..]),
        _ => return None,
    };
    Some((rest.trim(), kind))
}

fn expand_glob(path: &Path) -> Vec<PathBuf> {
    let s = path.to_string_lossy();
    if !s.contains(['*', '?', '[']) {
        return if path.exists() { vec![path.to_path_buf()] } else { Vec::new() };
    }
    match glob::glob(&s) {
        Ok(paths) => {
            let mut v: Vec<PathBuf> = paths.filter_map(Result::ok).filter(|p| p.is_file()).collect();
            v.sort();
            v
        }
        Err(_) => Vec::new(),
    }
}

fn matching_paren(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `a, 1, 2` → [[a], [1], [2]]; `{a, b}, {1, 2}` → [[a, b], [1, 2]].
fn split_lst(spec: &str) -> Vec<Vec<String>> {
    let mut items = Vec::new();
    let mut rest = spec.trim();
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('{') {
            let end = inner.find('}').unwrap_or(inner.len());
            items.push(inner[..end].split(',').map(|s| s.trim().to_string()).collect());
            rest = inner.get(end + 1..).unwrap_or("").trim_start().trim_start_matches(',').trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            items.push(vec![rest[..end].trim().to_string()]);
            rest = rest.get(end + 1..).unwrap_or("").trim_start();
        }
    }
    items
}

#[cfg(test)]
mod tests;
