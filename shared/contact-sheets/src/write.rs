//! Report tables, written as XLSX or as CSV.

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use crate::SheetError;

/// A report: a header row and rows of cells.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// One report cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// A number; NaN and infinities are written empty.
    Number(f64),
    /// An instant: a date-time in UTC in an XLSX (Excel has no time zones),
    /// RFC 3339 text (`2024-06-19T15:22:45Z`) in a CSV.
    Time(jiff::Timestamp),
    Empty,
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_string())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}

impl From<f64> for Cell {
    fn from(n: f64) -> Self {
        Cell::Number(n)
    }
}

impl From<jiff::Timestamp> for Cell {
    fn from(t: jiff::Timestamp) -> Self {
        Cell::Time(t)
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::Empty, Into::into)
    }
}

/// Excel's limits: rows and columns of a worksheet, characters in a cell.
const MAX_ROWS: usize = 1_048_576;
const MAX_COLS: usize = 16_384;
const MAX_CELL_CHARS: usize = 32_767;
/// Rows looked at to size the columns (what fits on a screen, and more).
const AUTOFIT_ROWS: u32 = 500;

/// The table as an XLSX workbook of one worksheet: the headers bold and
/// frozen at the top, columns sized to their contents.
///
/// The sheet name is made valid for Excel (`[ ] : * ? / \` become `_`, at
/// most 31 characters, "Sheet1" when blank). Text longer than a cell holds
/// (32,767 characters) is cut; a table beyond Excel's rows or columns is an
/// error.
pub fn write_xlsx(table: &Table, sheet_name: &str) -> Result<Vec<u8>, SheetError> {
    let width = table
        .rows
        .iter()
        .map(Vec::len)
        .chain([table.headers.len()])
        .max()
        .unwrap_or(0);
    if width > MAX_COLS {
        return Err(SheetError::Write(format!(
            "{width} columns, more than Excel's {MAX_COLS}"
        )));
    }
    write_xlsx_rows(&table.headers, table.rows.iter().cloned(), sheet_name)
}

/// As [`write_xlsx`], from rows one at a time: the worksheet keeps only the
/// row being written (its cells go to a temporary file), so a report of
/// 100,000 rows never has them all in memory. Columns are sized to the
/// header and the first 500 rows.
pub fn write_xlsx_rows(
    headers: &[String],
    rows: impl IntoIterator<Item = Vec<Cell>>,
    sheet_name: &str,
) -> Result<Vec<u8>, SheetError> {
    if headers.len() > MAX_COLS {
        return Err(SheetError::Write(format!(
            "{} columns, more than Excel's {MAX_COLS}",
            headers.len()
        )));
    }
    let mut rows = rows.into_iter();
    let first: Vec<Vec<Cell>> = rows.by_ref().take(AUTOFIT_ROWS as usize).collect();
    let mut workbook = Workbook::new();
    let sheet = workbook
        .add_worksheet_with_constant_memory()
        .map_err(write_error)?;
    sheet
        .set_name(sheet_title(sheet_name))
        .map_err(write_error)?;
    for (c, w) in column_widths(headers, &first).into_iter().enumerate() {
        // Bounds are checked: the casts cannot truncate.
        sheet.set_column_width(c as u16, w).map_err(write_error)?;
    }
    if !headers.is_empty() {
        sheet.set_freeze_panes(1, 0).map_err(write_error)?;
    }
    let bold = Format::new().set_bold();
    let when = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    for (c, header) in headers.iter().enumerate() {
        sheet
            .write_string_with_format(0, c as u16, cell_text(header), &bold)
            .map_err(write_error)?;
    }
    for (i, row) in first.into_iter().chain(rows).enumerate() {
        if i + 2 > MAX_ROWS {
            return Err(SheetError::Write(format!(
                "more rows than Excel's {}",
                MAX_ROWS - 1
            )));
        }
        if row.len() > MAX_COLS {
            return Err(SheetError::Write(format!(
                "{} columns, more than Excel's {MAX_COLS}",
                row.len()
            )));
        }
        let r = i as u32 + 1;
        for (c, cell) in row.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Text(s) if !s.is_empty() => {
                    sheet
                        .write_string(r, c, cell_text(s))
                        .map_err(write_error)?;
                }
                Cell::Number(n) if n.is_finite() => {
                    sheet.write_number(r, c, *n).map_err(write_error)?;
                }
                Cell::Time(t) => match excel_serial(*t) {
                    Some(serial) => {
                        sheet
                            .write_number_with_format(r, c, serial, &when)
                            .map_err(write_error)?;
                    }
                    None => {
                        sheet
                            .write_string(r, c, t.to_string())
                            .map_err(write_error)?;
                    }
                },
                Cell::Text(_) | Cell::Number(_) | Cell::Empty => {}
            }
        }
    }
    workbook.save_to_buffer().map_err(write_error)
}

/// Widest column Excel is asked for, in characters.
const MAX_WIDTH: usize = 60;

/// Each column's width: its header's and its first rows' longest text, a
/// little room around it, at most [`MAX_WIDTH`].
fn column_widths(headers: &[String], rows: &[Vec<Cell>]) -> Vec<f64> {
    let width = rows
        .iter()
        .map(Vec::len)
        .chain([headers.len()])
        .max()
        .unwrap_or(0);
    (0..width)
        .map(|c| {
            let header = headers.get(c).map_or(0, |h| h.chars().count());
            let longest = rows
                .iter()
                .filter_map(|r| r.get(c))
                .map(|cell| match cell {
                    Cell::Text(s) => s.chars().count(),
                    Cell::Number(n) => n.to_string().len(),
                    // yyyy-mm-dd hh:mm:ss
                    Cell::Time(_) => 19,
                    Cell::Empty => 0,
                })
                .max()
                .unwrap_or(0);
            (header.max(longest).min(MAX_WIDTH) + 2) as f64
        })
        .collect()
}

fn write_error(e: XlsxError) -> SheetError {
    SheetError::Write(e.to_string())
}

/// A valid Excel worksheet name from any text.
fn sheet_title(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_matches('\'').trim();
    // Excel counts UTF-16 units.
    let mut title = String::new();
    let mut units = 0;
    for c in trimmed.chars() {
        units += c.len_utf16();
        if units > 31 {
            break;
        }
        title.push(c);
    }
    let title = title.trim_end().trim_end_matches('\'');
    if title.is_empty() {
        "Sheet1".into()
    } else {
        title.to_string()
    }
}

/// Text cut to what an Excel cell holds.
fn cell_text(s: &str) -> &str {
    match s.char_indices().nth(MAX_CELL_CHARS) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// An instant as an Excel serial date-time (days since 1899-12-30, UTC),
/// if Excel can show it (1900-03-01 to 9999-12-31: before March 1900 its
/// serials are off by Lotus's leap day).
fn excel_serial(t: jiff::Timestamp) -> Option<f64> {
    const UNIX_EPOCH_SERIAL: f64 = 25_569.0;
    const MS_PER_DAY: f64 = 86_400_000.0;
    let serial = t.as_millisecond() as f64 / MS_PER_DAY + UNIX_EPOCH_SERIAL;
    (61.0..2_958_466.0).contains(&serial).then_some(serial)
}

/// The UTF-8 byte order mark: without it, Excel opens a CSV in the
/// machine's legacy code page and accents come out garbled.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The table as CSV (RFC 4180: commas, CRLF, quotes where needed), UTF-8
/// with a byte order mark so that Excel reads accents right.
///
/// Short rows are padded to the widest row, so that every line has the
/// same number of fields. A text that a spreadsheet program would run as
/// a formula (`=`, `@`, or `+`/`-` followed by more than a number, as a
/// name or message from a user may be) is written with a leading `'`, as
/// OWASP advises against CSV injection; numbers and phone numbers such as
/// `+54 9 11 5555-1234` or `-12.5` are written as they are.
pub fn write_csv(table: &Table) -> Vec<u8> {
    let width = table
        .rows
        .iter()
        .map(Vec::len)
        .chain([table.headers.len()])
        .max()
        .unwrap_or(0);
    write_csv_rows(&table.headers, width, table.rows.iter().cloned())
}

/// As [`write_csv`], from rows one at a time, each padded to `width`
/// fields.
pub fn write_csv_rows(
    headers: &[String],
    width: usize,
    rows: impl IntoIterator<Item = Vec<Cell>>,
) -> Vec<u8> {
    let mut out = BOM.to_vec();
    {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .flexible(true)
            .from_writer(&mut out);
        let mut record: Vec<String> = Vec::with_capacity(width);
        record.extend(headers.iter().map(|h| csv_text(h)));
        record.resize(width.max(record.len()), String::new());
        // Writing to memory does not fail, and `flexible` takes any row:
        // there is no error to report.
        if !record.is_empty() {
            let _ = writer.write_record(&record);
        }
        for row in rows {
            record.clear();
            record.extend(row.iter().map(csv_cell));
            record.resize(width.max(record.len()), String::new());
            let _ = writer.write_record(&record);
        }
        let _ = writer.flush();
    }
    out
}

fn csv_cell(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => csv_text(s),
        Cell::Number(n) if n.is_finite() => n.to_string(),
        Cell::Time(t) => t.to_string(),
        Cell::Number(_) | Cell::Empty => String::new(),
    }
}

/// Text, with a `'` before what a spreadsheet would take for a formula.
fn csv_text(s: &str) -> String {
    let numeric = |s: &str| {
        s.chars().any(|c| c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '.' | ',' | '-' | '+' | '(' | ')'))
    };
    let formula = match s.chars().next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => s.len() > 1 && !numeric(s),
        _ => false,
    };
    if formula {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_titles() {
        assert_eq!(sheet_title("Report"), "Report");
        assert_eq!(
            sheet_title("Campaign 2024/06: [A]?"),
            "Campaign 2024_06_ _A__"
        );
        assert_eq!(sheet_title(""), "Sheet1");
        assert_eq!(sheet_title("  ''  "), "Sheet1");
        assert_eq!(sheet_title("'quoted'"), "quoted");
        let long = sheet_title(&"á".repeat(40));
        assert_eq!(long.chars().count(), 31);
        assert_eq!(sheet_title(&"😀".repeat(20)).chars().count(), 15);
    }

    #[test]
    fn formula_like_text_is_neutralised_in_csv() {
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_text("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
        assert_eq!(csv_text("-2+3"), "-2+3", "a number-like text stays");
        assert_eq!(csv_text("- item"), "'- item");
        assert_eq!(csv_text("\tx"), "'\tx");
        assert_eq!(csv_text("+54 9 11 5555-1234"), "+54 9 11 5555-1234");
        assert_eq!(csv_text("-12.5"), "-12.5");
        assert_eq!(csv_text("-"), "-");
        assert_eq!(csv_text("María"), "María");
        assert_eq!(csv_text(""), "");
    }

    #[test]
    fn serials() {
        let t: jiff::Timestamp = "2025-10-13T12:00:00Z".parse().expect("ts");
        assert_eq!(excel_serial(t), Some(45_943.5));
        assert_eq!(excel_serial(jiff::Timestamp::UNIX_EPOCH), Some(25_569.0));
        let old: jiff::Timestamp = "1800-01-01T00:00:00Z".parse().expect("ts");
        assert_eq!(excel_serial(old), None);
    }

    #[test]
    fn long_text_is_cut_for_excel() {
        let long = "ñ".repeat(MAX_CELL_CHARS + 10);
        assert_eq!(cell_text(&long).chars().count(), MAX_CELL_CHARS);
        assert_eq!(cell_text("short"), "short");
    }
}
