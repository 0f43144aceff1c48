//! Contact spreadsheets for outbound campaigns, and report tables.
//!
//! Operators upload a CSV or XLSX of contacts to start a campaign (AI phone
//! calls, WhatsApp templates). [`read_contacts`] turns the bytes into
//! validated [`Contact`]s and a list of [`Rejected`] rows that the operator
//! can fix, by the row numbers they see in their spreadsheet program.
//! [`write_xlsx`] and [`write_csv`] write a report [`Table`] back.
//!
//! Everything here is a pure function over bytes: no network, no files, no
//! async runtime.

mod grid;
mod header;
mod import;
mod validate;
mod write;

use std::collections::BTreeMap;

pub use write::{write_csv, write_csv_rows, write_xlsx, write_xlsx_rows, Cell, Table};

/// The two spreadsheet formats operators upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SheetKind {
    /// Comma-, semicolon- or tab-separated UTF-8 text.
    Csv,
    /// An Excel 2007+ workbook (Office Open XML).
    Xlsx,
}

impl SheetKind {
    /// From a Content-Type (`text/csv`, `application/csv`,
    /// `application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`),
    /// with parameters ignored; None otherwise.
    ///
    /// Browsers on Windows send `application/vnd.ms-excel` for a `.csv`
    /// (and for an old `.xls`), and many clients send
    /// `application/octet-stream`: those give None, and the caller then
    /// [sniffs](SheetKind::sniff) the bytes.
    pub fn from_content_type(ct: &str) -> Option<SheetKind> {
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("text/csv")
            || essence.eq_ignore_ascii_case("application/csv")
        {
            Some(SheetKind::Csv)
        } else if essence.eq_ignore_ascii_case(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ) {
            Some(SheetKind::Xlsx)
        } else {
            None
        }
    }

    /// From the bytes: an XLSX is a zip (`PK\x03\x04`); else CSV if it is
    /// valid UTF-8 text; else None.
    ///
    /// Text with a NUL byte is not taken for CSV: that is a binary file
    /// that happens to be valid UTF-8.
    pub fn sniff(bytes: &[u8]) -> Option<SheetKind> {
        if bytes.starts_with(b"PK\x03\x04") {
            Some(SheetKind::Xlsx)
        } else if !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok() {
            Some(SheetKind::Csv)
        } else {
            None
        }
    }
}

/// How to read a contact sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetOptions {
    /// ISO 3166 alpha-2 region for numbers written without a country code
    /// ("AR", "MX", "BR", "US").
    pub default_country: String,
    /// Refuse bigger files (default 20 MiB).
    pub max_bytes: usize,
    /// Refuse files with more data rows (default 200_000).
    pub max_rows: usize,
    /// Variable columns every contact must have a value for (the template's
    /// parameters), by header as written (matched folded).
    pub required: Vec<String>,
}

impl Default for SheetOptions {
    fn default() -> Self {
        SheetOptions {
            default_country: "US".into(),
            max_bytes: 20 * 1024 * 1024,
            max_rows: 200_000,
            required: Vec::new(),
        }
    }
}

/// One valid contact row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// 1-based row number as the operator sees it in the spreadsheet
    /// (header row counted, title rows counted).
    pub row: usize,
    /// The number in E.164, as WhatsApp names users.
    pub phone: domain::UserId,
    pub name: Option<String>,
    /// A valid IANA zone name, e.g. "America/Mexico_City", in the
    /// database's spelling (the lookup ignores ASCII case, so
    /// "america/mexico_city" is read as "America/Mexico_City").
    pub time_zone: Option<String>,
    /// Lowercased 2-letter code ("es", "en", "pt") when given.
    pub language: Option<String>,
    /// Every other column: header (trimmed, as written) -> cell text
    /// (trimmed). Empty cells are absent.
    pub variables: BTreeMap<String, String>,
}

/// A row that was not taken, and the first problem found in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based row number as the operator sees it.
    pub row: usize,
    /// What is wrong, for the operator (`bad number: "11 5555"`).
    pub reason: String,
}

/// What a contact sheet held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The valid rows, in row order.
    pub contacts: Vec<Contact>,
    /// The other rows, in row order, one reason each.
    pub rejected: Vec<Rejected>,
    /// Every header of the header row, in order, trimmed, a repeated one
    /// suffixed " (2)", " (3)"...: the phone, name, time zone and language
    /// columns and the variables' names.
    pub columns: Vec<String>,
}

/// Why a whole file was refused (a single bad row is a [`Rejected`]), or a
/// report could not be written. The messages are for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SheetError {
    #[error("this file is not a spreadsheet we can read: {0}")]
    NotASpreadsheet(String),
    #[error("the spreadsheet is empty")]
    Empty,
    #[error(
        "no phone number column: none of the first {looked_at} rows has a header such as \
         \"Phone\", \"Teléfono\", \"Celular\" or \"WhatsApp\""
    )]
    NoPhoneColumn { looked_at: usize },
    #[error("the file is too large: the limit is {}", size(*.limit))]
    TooLarge { limit: usize },
    #[error("the file has too many rows: the limit is {limit} contacts")]
    TooManyRows { limit: usize },
    /// A required variable (a template parameter) has no column.
    #[error("the spreadsheet has no \"{0}\" column, which the message template needs")]
    MissingColumn(String),
    /// [`SheetOptions::default_country`] is not an ISO 3166 alpha-2 code
    /// that phone numbers know (a configuration error, not the file's).
    #[error("unknown default country: \"{0}\" (expected a 2-letter code such as AR, MX, BR, US)")]
    UnknownCountry(String),
    /// A report could not be written (an XLSX beyond Excel's limits).
    #[error("could not write the spreadsheet: {0}")]
    Write(String),
}

/// Runs a third-party parser over outside data, a panic in it taken for
/// None: a hostile file must not take the process down. (calamine 0.38
/// overflows a `u32` on a cell reference such as `AAAAAAAAAAAAAAA1`, which
/// panics where overflow checks are on.) The parser's state is dropped
/// after a panic, never used again: hence `AssertUnwindSafe`.
pub(crate) fn guarded<T>(parse: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)).ok()
}

/// A byte limit as people say it.
fn size(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Reads a contact sheet: the first worksheet of an XLSX (the first
/// visible one, as Excel opens it), or a CSV (`,`, `;` or tab separated,
/// UTF-8 with or without a byte order mark).
///
/// The header is the first row, among the first 20, that has a phone
/// column; rows above it are titles. Every data row becomes a [`Contact`]
/// or a [`Rejected`]; entirely empty rows are skipped. The whole file is
/// refused ([`SheetError`]) when it is too large, not a spreadsheet, has no
/// phone column, lacks a required column, or has too many rows.
pub fn read_contacts(
    bytes: &[u8],
    kind: SheetKind,
    opts: &SheetOptions,
) -> Result<Import, SheetError> {
    // Before any parsing: the limit is what protects the parsers' memory.
    if bytes.len() > opts.max_bytes {
        return Err(SheetError::TooLarge {
            limit: opts.max_bytes,
        });
    }
    let country = validate::country(&opts.default_country)?;
    match kind {
        SheetKind::Csv => grid::read_csv(bytes, |rows, header| {
            import::import(rows, header, opts, country)
        }),
        SheetKind::Xlsx => grid::read_xlsx(bytes, |rows, header| {
            import::import(rows, header, opts, country)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            SheetKind::from_content_type("text/csv"),
            Some(SheetKind::Csv)
        );
        assert_eq!(
            SheetKind::from_content_type("text/csv; charset=utf-8"),
            Some(SheetKind::Csv)
        );
        assert_eq!(
            SheetKind::from_content_type("Application/CSV"),
            Some(SheetKind::Csv)
        );
        assert_eq!(
            SheetKind::from_content_type(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            ),
            Some(SheetKind::Xlsx)
        );
        assert_eq!(
            SheetKind::from_content_type("application/vnd.ms-excel"),
            None
        );
        assert_eq!(SheetKind::from_content_type("application/pdf"), None);
        assert_eq!(SheetKind::from_content_type(""), None);
    }

    #[test]
    fn sniffing() {
        assert_eq!(SheetKind::sniff(b"PK\x03\x04rest"), Some(SheetKind::Xlsx));
        assert_eq!(SheetKind::sniff(b"phone,name\n1,2\n"), Some(SheetKind::Csv));
        assert_eq!(
            SheetKind::sniff("\u{feff}teléfono;nombre\r\n".as_bytes()),
            Some(SheetKind::Csv)
        );
        assert_eq!(SheetKind::sniff(b"%PDF-1.7\n\xe2\xe3\xcf\xd3"), None);
        assert_eq!(SheetKind::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), None);
        assert_eq!(
            SheetKind::sniff(b"tel\xe9fono"),
            None,
            "Latin-1 is not UTF-8"
        );
        assert_eq!(SheetKind::sniff(b"a\0b"), None);
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            SheetError::TooLarge {
                limit: 20 * 1024 * 1024
            }
            .to_string(),
            "the file is too large: the limit is 20 MiB"
        );
        assert_eq!(
            SheetError::TooLarge { limit: 1000 }.to_string(),
            "the file is too large: the limit is 1000 bytes"
        );
        assert!(SheetError::NoPhoneColumn { looked_at: 20 }
            .to_string()
            .contains("first 20 rows"));
    }
}
