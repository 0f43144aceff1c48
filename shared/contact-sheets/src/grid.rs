//! Spreadsheet rows as text cells, one row at a time, from a CSV or the
//! first worksheet of an XLSX: the import stops at the row limit without
//! having built the rest.

use std::io::Cursor;

use calamine::{DataRef, ExcelDateTime, Reader, SheetType, SheetVisible, Xlsx, XlsxCellReader};

use crate::header::Header;
use crate::import::find_header;
use crate::{guarded, SheetError};

/// One spreadsheet row: its 1-based number as the operator sees it, and its
/// non-empty cells as (0-based column, trimmed text), left to right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRow {
    pub row: usize,
    pub cells: Vec<(usize, String)>,
}

/// A source of rows, in order. A row with no cells is an empty row (some
/// empty rows are not reported at all: their numbers are skipped).
pub(crate) trait Rows {
    fn next_row(&mut self) -> Result<Option<RawRow>, SheetError>;
}

/// Delimiters tried on a CSV, in this order: Excel writes `;` where the
/// decimal separator is a comma (most of Latin America and Europe).
const DELIMITERS: [u8; 3] = [b',', b';', b'\t'];

/// Reads a CSV: finds the header with each delimiter, keeps the delimiter
/// whose header has a phone column (the widest header if more than one
/// does), and hands the rest of the rows to `then`.
pub(crate) fn read_csv<T>(
    bytes: &[u8],
    then: impl FnOnce(&mut dyn Rows, Header) -> Result<T, SheetError>,
) -> Result<T, SheetError> {
    let text = std::str::from_utf8(bytes).map_err(|_| not_text(bytes))?;
    // Excel's "CSV UTF-8" starts with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut best: Option<(CsvRows<'_>, Header)> = None;
    let mut first_error = None;
    for delimiter in DELIMITERS {
        let mut rows = CsvRows::new(text, delimiter);
        match find_header(&mut rows) {
            Ok(header) => {
                if best
                    .as_ref()
                    .is_none_or(|(_, b)| header.columns.len() > b.columns.len())
                {
                    best = Some((rows, header));
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match best {
        Some((mut rows, header)) => then(&mut rows, header),
        None => Err(first_error.unwrap_or(SheetError::Empty)),
    }
}

/// Rows of a CSV text.
struct CsvRows<'a> {
    text: &'a [u8],
    reader: csv::Reader<&'a [u8]>,
    record: csv::StringRecord,
    /// The number of the last row returned.
    row: usize,
}

impl<'a> CsvRows<'a> {
    fn new(text: &'a str, delimiter: u8) -> Self {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(text.as_bytes());
        CsvRows {
            text: text.as_bytes(),
            reader,
            record: csv::StringRecord::new(),
            row: 0,
        }
    }
}

impl Rows for CsvRows<'_> {
    fn next_row(&mut self) -> Result<Option<RawRow>, SheetError> {
        let more = self
            .reader
            .read_record(&mut self.record)
            .map_err(|e| SheetError::NotASpreadsheet(format!("the CSV could not be read: {e}")))?;
        if !more {
            return Ok(None);
        }
        // The csv crate skips blank lines; a spreadsheet program shows each
        // one as a row, and a quoted field's line breaks as none. So: one
        // row per record, plus one per blank line before it (a record
        // starts where the last one ended, blank lines included).
        let start = self
            .record
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(usize::MAX);
        let mut from_start = self.text.get(start..).unwrap_or_default();
        // The csv crate ends a record at the `\r` of a `\r\n`.
        let after_cr = start > 0 && self.text.get(start - 1) == Some(&b'\r');
        if after_cr && from_start.first() == Some(&b'\n') {
            from_start = &from_start[1..];
        }
        self.row += 1 + leading_line_breaks(from_start);
        let cells = self
            .record
            .iter()
            .enumerate()
            .filter_map(|(col, field)| {
                let field = field.trim();
                (!field.is_empty()).then(|| (col, field.to_string()))
            })
            .collect();
        Ok(Some(RawRow {
            row: self.row,
            cells,
        }))
    }
}

/// The line breaks before the first other byte: `\n`, `\r\n` and a lone
/// `\r` (the csv crate's line ends) count one each.
fn leading_line_breaks(text: &[u8]) -> usize {
    let mut n = 0;
    let mut bytes = text.iter().peekable();
    while let Some(&b) = bytes.next() {
        match b {
            b'\n' => n += 1,
            b'\r' => {
                if bytes.peek() == Some(&&b'\n') {
                    bytes.next();
                }
                n += 1;
            }
            _ => break,
        }
    }
    n
}

/// Reads the first worksheet of an XLSX (the first visible one, as Excel
/// opens it): finds the header and hands the rest of the rows to `then`.
pub(crate) fn read_xlsx<T>(
    bytes: &[u8],
    then: impl FnOnce(&mut dyn Rows, Header) -> Result<T, SheetError>,
) -> Result<T, SheetError> {
    if bytes.is_empty() {
        return Err(SheetError::Empty);
    }
    if !bytes.starts_with(b"PK\x03\x04") {
        return Err(not_xlsx(bytes));
    }
    let opened = guarded(|| Xlsx::new(Cursor::new(bytes))).ok_or_else(unreadable)?;
    let mut workbook = opened.map_err(|e| {
        SheetError::NotASpreadsheet(format!("the XLSX workbook could not be opened ({e})"))
    })?;
    let sheets = workbook.sheets_metadata();
    let first = |visible_only: bool| {
        sheets.iter().find(|s| {
            s.typ == SheetType::WorkSheet && (!visible_only || s.visible == SheetVisible::Visible)
        })
    };
    let name = first(true)
        .or_else(|| first(false))
        .map(|s| s.name.clone())
        .ok_or_else(|| SheetError::NotASpreadsheet("the workbook has no worksheet".into()))?;
    let cells = guarded(|| workbook.worksheet_cells_reader(&name))
        .ok_or_else(unreadable)?
        .map_err(|e| {
            SheetError::NotASpreadsheet(format!("the worksheet \"{name}\" could not be read ({e})"))
        })?;
    let mut rows = XlsxRows {
        cells,
        pending: None,
        done: false,
    };
    let header = find_header(&mut rows)?;
    then(&mut rows, header)
}

/// Excel's columns, A to XFD.
const MAX_COLS: usize = 16_384;

fn unreadable() -> SheetError {
    SheetError::NotASpreadsheet("the XLSX workbook is damaged and could not be read".into())
}

/// Rows of a worksheet, from its cells in file order (row by row). Rows
/// with no cell at all are not in the file: their numbers are skipped.
struct XlsxRows<'a> {
    cells: XlsxCellReader<'a, Cursor<&'a [u8]>>,
    /// The first cell of the next row, read past the end of the last one.
    pending: Option<(usize, usize, String)>,
    done: bool,
}

impl Rows for XlsxRows<'_> {
    fn next_row(&mut self) -> Result<Option<RawRow>, SheetError> {
        let mut current: Option<RawRow> = self.pending.take().map(|(row, col, text)| RawRow {
            row,
            cells: non_empty(col, text),
        });
        while !self.done {
            let next = guarded(|| self.cells.next_cell());
            let cell = next.ok_or_else(unreadable)?.map_err(|e| {
                SheetError::NotASpreadsheet(format!("the worksheet could not be read ({e})"))
            })?;
            let Some(cell) = cell else {
                self.done = true;
                break;
            };
            let (r, c) = cell.get_position();
            let (row, col) = (r as usize + 1, c as usize);
            // Beyond Excel's last column (XFD) only in a forged file: not
            // a column to size a row by.
            if col >= MAX_COLS {
                continue;
            }
            let text = cell_text(cell.get_value());
            match &mut current {
                Some(cur) if cur.row == row => {
                    if !text.is_empty() {
                        cur.cells.push((col, text));
                    }
                }
                Some(_) => {
                    self.pending = Some((row, col, text));
                    return Ok(current);
                }
                None => {
                    current = Some(RawRow {
                        row,
                        cells: non_empty(col, text),
                    })
                }
            }
        }
        Ok(current)
    }
}

fn non_empty(col: usize, text: String) -> Vec<(usize, String)> {
    if text.is_empty() {
        Vec::new()
    } else {
        vec![(col, text)]
    }
}

/// A cell as the text a person reads in it. A number typed in a cell (a
/// phone number often is) is written without `.0` or an exponent; an error
/// (`#N/A`) is empty.
fn cell_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Int(i) => i.to_string(),
        // Display of an f64 never uses an exponent: 5491155551234.0 is
        // "5491155551234", 0.5 is "0.5".
        DataRef::Float(f) if f.is_finite() => f.to_string(),
        DataRef::String(s) => s.trim().to_string(),
        DataRef::SharedString(s) => s.trim().to_string(),
        DataRef::Bool(true) => "TRUE".into(),
        DataRef::Bool(false) => "FALSE".into(),
        DataRef::DateTime(dt) => date_text(dt),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.trim().to_string(),
        DataRef::Float(_) | DataRef::Error(_) | DataRef::Empty => String::new(),
    }
}

/// A date cell as ISO 8601 text: `2024-06-19`, `2024-06-19 15:30:00`, a
/// time alone `15:30:00`, a duration `36:00:00`.
fn date_text(dt: &ExcelDateTime) -> String {
    let serial = dt.as_f64();
    if !serial.is_finite() {
        return String::new();
    }
    if dt.is_duration() {
        let secs = (serial * 86_400.0).round() as i64;
        let sign = if secs < 0 { "-" } else { "" };
        let secs = secs.unsigned_abs();
        return format!(
            "{sign}{}:{:02}:{:02}",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        );
    }
    let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
    if (0.0..1.0).contains(&serial) {
        format!("{h:02}:{mi:02}:{s:02}")
    } else if (h, mi, s) == (0, 0, 0) {
        format!("{y:04}-{mo:02}-{d:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
    }
}

/// What a file that is not UTF-8 text seems to be, for the operator.
fn not_text(bytes: &[u8]) -> SheetError {
    let hint = "in Excel, save the sheet as \"CSV UTF-8\", or upload the .xlsx";
    SheetError::NotASpreadsheet(match looks_like(bytes) {
        Some(what) => format!("the file is {what}, not CSV text; {hint}"),
        None => format!("the file is not UTF-8 text; {hint}"),
    })
}

fn not_xlsx(bytes: &[u8]) -> SheetError {
    const CFB: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    SheetError::NotASpreadsheet(if bytes.starts_with(CFB) {
        // Both are OLE compound files: the old format, and what Excel
        // writes when a workbook has a password to open it.
        "the file is an Excel 97-2003 workbook (.xls) or has a password; save it as .xlsx \
         without a password, or as CSV UTF-8"
            .into()
    } else {
        match looks_like(bytes) {
            Some(what) => format!("the file is {what}, not an XLSX workbook"),
            None if std::str::from_utf8(bytes).is_ok() => {
                "the file is text, not an XLSX workbook; upload it as a .csv".into()
            }
            None => "the file is not an XLSX workbook".into(),
        }
    })
}

/// A known binary format by its magic bytes ("a .pdf file").
fn looks_like(bytes: &[u8]) -> Option<String> {
    infer::get(bytes).map(|t| format!("a .{} file", t.extension()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(text: &str, delimiter: u8) -> Vec<RawRow> {
        let mut rows = CsvRows::new(text, delimiter);
        let mut out = Vec::new();
        while let Some(r) = rows.next_row().expect("rows") {
            out.push(r);
        }
        out
    }

    fn numbers(rows: &[RawRow]) -> Vec<usize> {
        rows.iter().map(|r| r.row).collect()
    }

    #[test]
    fn csv_rows_count_blank_lines_and_not_quoted_line_breaks() {
        let text = "title\n\nphone,name\n1,\"two\nlines\"\n\n\n2,b\n";
        let rows = rows_of(text, b',');
        assert_eq!(numbers(&rows), [1, 3, 4, 7]);
        assert_eq!(rows[2].cells[1].1, "two\nlines");
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(numbers(&rows_of(&crlf, b',')), [1, 3, 4, 7]);
        let cr = text.replace('\n', "\r");
        assert_eq!(numbers(&rows_of(&cr, b',')), [1, 3, 4, 7]);
        assert_eq!(numbers(&rows_of("\n\na\r\n\r\nb", b',')), [3, 5]);
    }

    #[test]
    fn csv_cells_are_trimmed_and_empty_ones_dropped() {
        let rows = rows_of(" a ;; \u{a0}c\u{a0};\n ; \n", b';');
        assert_eq!(rows[0].cells, [(0, "a".into()), (2, "c".into())]);
        assert!(rows[1].cells.is_empty());
    }

    #[test]
    fn line_breaks_of_every_kind() {
        assert_eq!(leading_line_breaks(b""), 0);
        assert_eq!(leading_line_breaks(b"\n\r\n\rx\n"), 3);
        assert_eq!(leading_line_breaks(b"\r\r\n"), 2);
        assert_eq!(leading_line_breaks(b"a\n"), 0);
    }
}
