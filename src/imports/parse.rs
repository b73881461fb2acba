//! Reading an uploaded file into typed rows, on a blocking thread while the writer works on
//! the previous batch. The file arrives as chunks over a channel, so memory stays flat
//! whatever its size. Every problem a cell has is kept with its line; a row with any problem is
//! never written.

use std::collections::HashMap;
use std::io::Read;
use tokio::sync::mpsc::{Receiver, Sender};

use super::columns::{Resource, Type};
use super::decode::{cell_text, strip_bom};
use super::mapping::{plan, Plan, Target};
use super::records::Cells;
use super::values;
use crate::error::{AppError, AppResult};

/// Rows handed to the writer at a time.
pub const BATCH_ROWS: usize = 1000;

/// One problem of a row: the header of the cell at fault (none for the whole line), the cell
/// as written and what is wrong.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    pub column: Option<String>,
    pub value: Option<String>,
    pub error: String,
}

/// One data line of the file.
#[derive(Debug)]
pub struct ParsedRow {
    /// The line the row starts on (1 is the header).
    pub line: u64,
    /// The cells as read (decoded, untrimmed), for errors.csv.
    pub raw: Vec<String>,
    pub cells: Cells,
    pub problems: Vec<Problem>,
    /// Written by an earlier attempt of the same import (only its match key still matters).
    pub already: bool,
}

/// What the reader tells the writer.
pub enum Parsed {
    /// The columns (or why the file cannot be imported); always first.
    Plan(AppResult<Plan>),
    /// Rows, and how far into the file they reach (bytes).
    Batch { rows: Vec<ParsedRow>, bytes: u64 },
    /// The file could not be read to its end.
    Failed(String),
}

/// A `Read` over the chunks of an upload as they arrive. An error from the chunk source ends
/// the read with that error, never with an early end of file.
pub struct ChunkReader {
    current: Vec<u8>,
    pos: usize,
    rest: Receiver<Result<Vec<u8>, String>>,
}

impl ChunkReader {
    /// `first` is the file's first chunk (already fetched to sniff the delimiter).
    pub fn new(first: Vec<u8>, rest: Receiver<Result<Vec<u8>, String>>) -> Self {
        let skip = first.len() - strip_bom(&first).len();
        ChunkReader {
            current: first,
            pos: skip,
            rest,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.current.len() {
            match self.rest.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Some(Err(err)) => return Err(std::io::Error::other(err)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The file's line numbers. csv's own count goes wrong with CRLF files, so the bytes are
/// counted as they pass: the offsets of the newlines (and carriage returns) read ahead of the
/// parser are kept until a record starts past them.
#[derive(Default)]
struct Lines {
    before: u64,
    newlines: std::collections::VecDeque<u64>,
    returns: std::collections::VecDeque<u64>,
    offset: u64,
}

impl Lines {
    /// The line of a record csv says starts at `byte`. csv gives the offset where it began
    /// reading the record, before the line terminators and blank lines it skipped (the `\n`
    /// of the previous line's `\r\n`, any number of empty lines): the record starts at the
    /// first byte after them that is neither `\r` nor `\n`.
    fn at(&mut self, byte: u64) -> u64 {
        let mut start = byte;
        loop {
            while self.returns.front().is_some_and(|&cr| cr < start) {
                self.returns.pop_front();
            }
            while self.newlines.front().is_some_and(|&nl| nl < start) {
                self.newlines.pop_front();
                self.before += 1;
            }
            if self.returns.front() == Some(&start) || self.newlines.front() == Some(&start) {
                start += 1;
            } else {
                return self.before + 1;
            }
        }
    }
}

/// A reader that notes where its newlines are.
struct Counting<R> {
    inner: R,
    lines: std::rc::Rc<std::cell::RefCell<Lines>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut lines = self.lines.borrow_mut();
        let start = lines.offset;
        for (i, &b) in buf[..n].iter().enumerate() {
            match b {
                b'\n' => lines.newlines.push_back(start + i as u64),
                b'\r' => lines.returns.push_back(start + i as u64),
                _ => {}
            }
        }
        lines.offset += n as u64;
        Ok(n)
    }
}

/// How to read one file.
pub struct ReadSpec {
    pub resource: Resource,
    pub delimiter: u8,
    pub mapping: HashMap<String, Option<String>>,
    /// Active users of the workspace by email.
    pub users: HashMap<String, i64>,
    /// Lines up to here were written by an earlier attempt.
    pub committed_line: u64,
}

/// Reads the whole file, sending the plan and then batches of rows. Stops early when the
/// writer hangs up.
pub fn read(source: impl Read, spec: ReadSpec, out: Sender<Parsed>) {
    let lines = std::rc::Rc::new(std::cell::RefCell::new(Lines::default()));
    let source = Counting {
        inner: source,
        lines: lines.clone(),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(spec.delimiter)
        .from_reader(source);
    let mut record = csv::ByteRecord::new();
    let headers = match reader.read_byte_record(&mut record) {
        Ok(true) => record
            .iter()
            .map(|c| cell_text(c).trim().to_string())
            .collect::<Vec<_>>(),
        Ok(false) => {
            let _ = out.blocking_send(Parsed::Plan(Err(AppError::bad_input(
                "file",
                "line 1: the file is empty; it needs a header line and rows",
            ))));
            return;
        }
        Err(err) => {
            let _ = out.blocking_send(Parsed::Failed(read_error(&err)));
            return;
        }
    };
    // Blank lines before the header are skipped, so it is not always line 1.
    let header_line = lines
        .borrow_mut()
        .at(record.position().map_or(0, |p| p.byte()));
    if headers.iter().any(|h| h.contains('\0')) {
        let _ = out.blocking_send(Parsed::Plan(Err(AppError::bad_input(
            "file",
            format!(
                "line {header_line}: the header contains a NUL character; the file is not \
                 plain text (save it as CSV, UTF-8)"
            ),
        ))));
        return;
    }
    let plan = match plan(spec.resource, headers, header_line, &spec.mapping) {
        Ok(plan) => plan,
        Err(err) => {
            let _ = out.blocking_send(Parsed::Plan(Err(err)));
            return;
        }
    };
    if out.blocking_send(Parsed::Plan(Ok(plan.clone()))).is_err() {
        return;
    }
    let mut rows = Vec::with_capacity(BATCH_ROWS);
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {
                let start = record.position().map_or(0, |p| p.byte());
                let line = lines.borrow_mut().at(start);
                let raw: Vec<String> = record.iter().map(|c| cell_text(c).into_owned()).collect();
                if raw.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                let mut row = parse_row(&plan, &spec, raw, line);
                row.already = line <= spec.committed_line;
                rows.push(row);
                if rows.len() == BATCH_ROWS {
                    let bytes = reader.position().byte();
                    let batch = std::mem::replace(&mut rows, Vec::with_capacity(BATCH_ROWS));
                    if out
                        .blocking_send(Parsed::Batch { rows: batch, bytes })
                        .is_err()
                    {
                        return;
                    }
                }
            }
            Ok(false) => break,
            Err(err) => {
                let _ = out.blocking_send(Parsed::Failed(read_error(&err)));
                return;
            }
        }
    }
    if !rows.is_empty() {
        let bytes = reader.position().byte();
        let _ = out.blocking_send(Parsed::Batch { rows, bytes });
    }
}

fn read_error(err: &csv::Error) -> String {
    match err.position() {
        Some(p) => format!("the file could not be read past line {}", p.line()),
        None => "the file could not be read to its end".into(),
    }
}

/// Parses the cells of one line by the plan.
fn parse_row(plan: &Plan, spec: &ReadSpec, raw: Vec<String>, line: u64) -> ParsedRow {
    let mut cells = Cells::default();
    let mut problems = Vec::new();
    if raw.len() != plan.headers.len() {
        problems.push(Problem {
            column: None,
            value: None,
            error: format!(
                "this line has {} fields; the header has {}",
                raw.len(),
                plan.headers.len()
            ),
        });
    } else {
        for ((header, target), raw_cell) in plan.headers.iter().zip(&plan.targets).zip(&raw) {
            let Some(target) = target else { continue };
            // PostgreSQL text cannot hold NUL: the row is refused with its line, the others go on.
            if raw_cell.contains('\0') {
                problems.push(Problem {
                    column: Some(header.clone()),
                    value: Some(raw_cell.replace('\0', "\\0")),
                    error: "the cell contains a NUL character".into(),
                });
                continue;
            }
            let cell = values::clean(raw_cell);
            if cell.is_empty() {
                continue;
            }
            let problem = |error: String| Problem {
                column: Some(header.clone()),
                value: Some(raw_cell.clone()),
                error,
            };
            match target {
                Target::Column(column) => {
                    if let Err(error) = cells.set_column(column, cell, &spec.users) {
                        problems.push(problem(error));
                    }
                }
                Target::Custom(key) => {
                    cells.custom.insert(key.clone(), values::custom_value(cell));
                }
                Target::Id => match values::parse(Type::Id, cell) {
                    Ok(value) => cells.values.push(("id", value)),
                    Err(error) => problems.push(problem(error)),
                },
            }
        }
    }
    // The line is kept as written for errors.csv, with any NUL shown as `\0` (text columns
    // cannot store it).
    let raw = if raw.iter().any(|c| c.contains('\0')) {
        raw.into_iter().map(|c| c.replace('\0', "\\0")).collect()
    } else {
        raw
    };
    ParsedRow {
        line,
        raw,
        cells,
        problems,
        already: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imports::values::Value;

    fn read_all(text: &[u8]) -> (AppResult<Plan>, Vec<ParsedRow>) {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        drop(tx);
        let source = ChunkReader::new(text.to_vec(), rx);
        let (out, mut got) = tokio::sync::mpsc::channel(100);
        let spec = ReadSpec {
            resource: Resource::Leads,
            delimiter: super::super::decode::sniff_delimiter(strip_bom(text)),
            mapping: HashMap::new(),
            users: HashMap::from([("ann@example.com".to_string(), 7)]),
            committed_line: 0,
        };
        std::thread::spawn(move || read(source, spec, out));
        let Some(Parsed::Plan(plan)) = got.blocking_recv() else {
            panic!("no plan");
        };
        let mut rows = Vec::new();
        while let Some(Parsed::Batch { rows: batch, .. }) = got.blocking_recv() {
            rows.extend(batch);
        }
        (plan, rows)
    }

    #[test]
    fn quoted_fields_blank_lines_and_ragged_rows() {
        let file = "\u{feff}First Name;Email;Notes;Owner\r\n\
                    Ada;ADA@example.com;\"semi; colon\r\nand \"\"quotes\"\"\";ann@example.com\r\n\
                    \r\n\
                    ;;;\r\n\
                    Bob;bob@example.com\r\n\
                    Cy;not-an-email;;zed@example.com\r\n";
        let (plan, rows) = read_all(file.as_bytes());
        assert_eq!(plan.unwrap().headers[0], "First Name");
        assert_eq!(rows.len(), 3);
        let ada = &rows[0];
        assert_eq!(ada.line, 2);
        assert!(ada.problems.is_empty(), "{:?}", ada.problems);
        assert_eq!(
            ada.cells.values,
            vec![
                ("first_name", Value::Text("Ada".into())),
                ("email", Value::Email("ada@example.com".into())),
                ("notes", Value::Text("semi; colon\r\nand \"quotes\"".into())),
                ("owner", Value::Id(7)),
            ]
        );
        assert_eq!(rows[1].line, 6);
        assert!(rows[1].problems[0].error.contains("2 fields"));
        assert_eq!(rows[2].line, 7);
        assert_eq!(rows[2].problems.len(), 2);
    }

    #[test]
    fn lines_count_the_blank_lines_csv_skips() {
        for file in [
            &b"\n\nemail,first_name\na@x.io,A\n\n\n\nb@x.io,B\n"[..],
            b"\r\n\r\nemail,first_name\r\na@x.io,A\r\n\r\n\r\n\r\nb@x.io,B\r\n",
        ] {
            let (plan, rows) = read_all(file);
            assert_eq!(plan.unwrap().headers, ["email", "first_name"]);
            let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
            assert_eq!(lines, [4, 8], "{:?}", String::from_utf8_lossy(file));
        }
        let (plan, _) = read_all(b"\r\n\r\nemail,Email\r\na@x.io,b@x.io\r\n");
        assert_eq!(
            plan.unwrap_err().to_string(),
            "line 3: the header \"Email\" appears twice (columns 1 and 2)"
        );
    }

    #[test]
    fn an_empty_file_is_an_error() {
        let (plan, _) = read_all(b"");
        assert!(plan.unwrap_err().to_string().contains("empty"));
    }
}
