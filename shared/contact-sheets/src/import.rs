//! From rows to contacts: the header, then each data row validated.

use std::collections::{BTreeMap, HashMap};

use phonenumber::country::Id;

use crate::grid::Rows;
use crate::header::{Header, HEADER_SEARCH_ROWS};
use crate::validate::{self, quote, Zones};
use crate::{Contact, Import, Rejected, SheetError, SheetOptions};

/// The header: the first row among the first 20 with a phone column.
pub(crate) fn find_header(rows: &mut dyn Rows) -> Result<Header, SheetError> {
    let mut anything = false;
    let mut looked_at = 0;
    while let Some(row) = rows.next_row()? {
        if row.row > HEADER_SEARCH_ROWS {
            return Err(SheetError::NoPhoneColumn {
                looked_at: HEADER_SEARCH_ROWS,
            });
        }
        looked_at = row.row;
        if row.cells.is_empty() {
            continue;
        }
        anything = true;
        if let Some(header) = Header::from_row(&row) {
            return Ok(header);
        }
    }
    if anything {
        Err(SheetError::NoPhoneColumn { looked_at })
    } else {
        Err(SheetError::Empty)
    }
}

/// Every data row below the header, validated.
pub(crate) fn import(
    rows: &mut dyn Rows,
    header: Header,
    opts: &SheetOptions,
    country: Id,
) -> Result<Import, SheetError> {
    // A template parameter with no column fails the whole file: every row
    // would be rejected for it.
    let mut required = Vec::new();
    for name in &opts.required {
        if name.trim().is_empty() {
            continue;
        }
        let slot = header
            .slot_named(name)
            .ok_or_else(|| SheetError::MissingColumn(name.trim().to_string()))?;
        required.push(slot);
    }

    let mut contacts = Vec::new();
    let mut rejected = Vec::new();
    let mut first_row_of: HashMap<String, usize> = HashMap::new();
    let mut zones = Zones::new();
    let mut values: Vec<Option<String>> = vec![None; header.columns.len()];
    let mut data_rows = 0;
    while let Some(row) = rows.next_row()? {
        values.iter_mut().for_each(|v| *v = None);
        for (col, text) in row.cells {
            if let Some(Some(slot)) = header.slot_of_col.get(col) {
                if let Some(v) = values.get_mut(*slot) {
                    *v = Some(text);
                }
            }
        }
        // Empty, or only cells under no header (a note in the margin).
        if values.iter().all(Option::is_none) {
            continue;
        }
        data_rows += 1;
        if data_rows > opts.max_rows {
            return Err(SheetError::TooManyRows {
                limit: opts.max_rows,
            });
        }
        let mut checks = RowChecks {
            header: &header,
            country,
            required: &required,
            first_row_of: &mut first_row_of,
            zones: &mut zones,
        };
        match checks.contact(row.row, &mut values) {
            Ok(contact) => contacts.push(contact),
            Err(reason) => rejected.push(Rejected {
                row: row.row,
                reason,
            }),
        }
    }
    Ok(Import {
        contacts,
        rejected,
        columns: header.columns,
    })
}

/// What validating a row needs, and what it remembers across rows.
struct RowChecks<'a> {
    header: &'a Header,
    country: Id,
    required: &'a [usize],
    /// E.164 digits -> the first row with the number.
    first_row_of: &'a mut HashMap<String, usize>,
    zones: &'a mut Zones,
}

impl RowChecks<'_> {
    /// The row's contact, or the first problem found, in this order: the
    /// number, a duplicate, the time zone, the language, a required
    /// variable. A number counts as seen from its first row on, even if
    /// that row is rejected later for another reason: the operator fixes
    /// that row, and the later one is still a duplicate.
    fn contact(&mut self, row: usize, values: &mut [Option<String>]) -> Result<Contact, String> {
        let h = self.header;

        let raw_phone = value(values, Some(h.phone)).ok_or("missing phone number")?;
        let phone = validate::phone(raw_phone, self.country)
            .ok_or_else(|| format!("bad number: {}", quote(raw_phone)))?;
        if let Some(first) = self.first_row_of.get(phone.as_str()) {
            return Err(format!("duplicate of row {first}"));
        }
        self.first_row_of.insert(phone.as_str().to_string(), row);

        let time_zone = match value(values, h.zone) {
            Some(raw) => Some(
                self.zones
                    .get(raw)
                    .ok_or_else(|| format!("unknown time zone: {}", quote(raw)))?,
            ),
            None => None,
        };
        let language = match value(values, h.language) {
            Some(raw) => Some(
                validate::language(raw)
                    .ok_or_else(|| format!("unknown language: {}", quote(raw)))?,
            ),
            None => None,
        };
        for &slot in self.required {
            if value(values, Some(slot)).is_none() {
                let name = h.columns.get(slot).map_or("", String::as_str);
                return Err(format!("missing required variable: {name}"));
            }
        }

        let name = h
            .name
            .and_then(|s| values.get_mut(s))
            .and_then(Option::take);
        let mut variables = BTreeMap::new();
        for (slot, value) in values.iter_mut().enumerate() {
            if h.is_role(slot) {
                continue;
            }
            if let (Some(v), Some(column)) = (value.take(), h.columns.get(slot)) {
                variables.insert(column.clone(), v);
            }
        }
        Ok(Contact {
            row,
            phone,
            name,
            time_zone,
            language,
            variables,
        })
    }
}

/// A column's value in the row, if the column exists and the cell is not
/// empty.
fn value(values: &[Option<String>], slot: Option<usize>) -> Option<&str> {
    values.get(slot?)?.as_deref()
}
