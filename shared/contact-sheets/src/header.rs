//! The header row: which column is the phone, the name, the time zone and
//! the language, in English, Spanish and Portuguese spellings.

use std::collections::HashSet;

use crate::grid::RawRow;

/// Rows searched for the header (titles, a logo row, blank rows above it).
pub(crate) const HEADER_SEARCH_ROWS: usize = 20;

/// A header as compared: folded (lowercase, no accents), every run of
/// punctuation, `_`, `-`, `.` and spaces one space, trimmed.
pub(crate) fn key(header: &str) -> String {
    domain::text::fold(header).trim().to_string()
}

/// Spellings (as [`key`]s) that name a phone column for sure.
const PHONE: &[&str] = &[
    "phone",
    "phone number",
    "telephone",
    "telephone number",
    "tel",
    "mobile",
    "mobile number",
    "mobile phone",
    "cell",
    "cellphone",
    "cell phone",
    "whatsapp",
    "whatsapp number",
    "msisdn",
    "telefono",
    "celular",
    "movil",
    "numero de telefono",
    "numero de celular",
    "numero de whatsapp",
    "telefono celular",
    "fone",
    "telefone",
    "numero de telefone",
];
/// Spellings that name a phone column only when no column has one of the
/// above ("Número" next to "Teléfono" is more likely an order number).
const PHONE_WEAK: &[&str] = &["number", "numero", "contato"];

const NAME: &[&str] = &[
    "name",
    "full name",
    "customer name",
    "contact name",
    "nombre",
    "nombre completo",
    "nombre del cliente",
    "nome",
    "nome completo",
    "nome do cliente",
];
/// "Cliente" next to "Nombre" is more likely a customer id.
const NAME_WEAK: &[&str] = &["customer", "contact", "cliente", "contacto"];

const ZONE: &[&str] = &[
    "time zone",
    "timezone",
    "tz",
    "zona horaria",
    "huso horario",
    "fuso horario",
    "fuso",
];

const LANGUAGE: &[&str] = &["language", "lang", "idioma", "lingua"];

/// How sure a spelling is of its role: a strong one wins over a weak one,
/// and the leftmost wins among equals.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Strength {
    Weak,
    Strong,
}

/// A role's column, if any: (strength, slot).
type Found = Option<(Strength, usize)>;

fn consider(found: &mut Found, strength: Strength, slot: usize) {
    if found.is_none_or(|(s, _)| strength > s) {
        *found = Some((strength, slot));
    }
}

/// The header row, once found.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// The headers, trimmed, repeated ones suffixed.
    pub columns: Vec<String>,
    /// The columns' [`key`]s, for matching required variables.
    pub keys: Vec<String>,
    /// Sheet column index -> slot in `columns` (None: no header there, the
    /// cells below are ignored).
    pub slot_of_col: Vec<Option<usize>>,
    pub phone: usize,
    pub name: Option<usize>,
    pub zone: Option<usize>,
    pub language: Option<usize>,
}

impl Header {
    /// The row as a header, if it has a phone column.
    pub(crate) fn from_row(row: &RawRow) -> Option<Header> {
        let mut cells: Vec<&(usize, String)> = row.cells.iter().collect();
        cells.sort_by_key(|(col, _)| *col);
        let mut phone: Found = None;
        let mut name: Found = None;
        let mut zone: Found = None;
        let mut language: Found = None;
        for (slot, (_, text)) in cells.iter().enumerate() {
            let k = key(text);
            let k = k.as_str();
            if PHONE.contains(&k) {
                consider(&mut phone, Strength::Strong, slot);
            } else if PHONE_WEAK.contains(&k) {
                consider(&mut phone, Strength::Weak, slot);
            } else if NAME.contains(&k) {
                consider(&mut name, Strength::Strong, slot);
            } else if NAME_WEAK.contains(&k) {
                consider(&mut name, Strength::Weak, slot);
            } else if ZONE.contains(&k) {
                consider(&mut zone, Strength::Strong, slot);
            } else if LANGUAGE.contains(&k) {
                consider(&mut language, Strength::Strong, slot);
            }
        }
        let (_, phone) = phone?;

        let max_col = cells.last().map_or(0, |(col, _)| *col);
        let mut slot_of_col = vec![None; max_col + 1];
        let mut columns = Vec::with_capacity(cells.len());
        let mut used = HashSet::new();
        for (slot, (col, text)) in cells.iter().enumerate() {
            let mut header = text.clone();
            let mut n = 1;
            while used.contains(&header) {
                n += 1;
                header = format!("{text} ({n})");
            }
            used.insert(header.clone());
            columns.push(header);
            if let Some(s) = slot_of_col.get_mut(*col) {
                *s = Some(slot);
            }
        }
        let keys = columns.iter().map(|c| key(c)).collect();
        Some(Header {
            columns,
            keys,
            slot_of_col,
            phone,
            name: name.map(|(_, s)| s),
            zone: zone.map(|(_, s)| s),
            language: language.map(|(_, s)| s),
        })
    }

    /// The slot of a column by header as written, compared folded.
    pub(crate) fn slot_named(&self, name: &str) -> Option<usize> {
        let k = key(name);
        if k.is_empty() {
            return None;
        }
        self.keys.iter().position(|c| *c == k)
    }

    /// Whether the slot is one of the four known roles (not a variable).
    pub(crate) fn is_role(&self, slot: usize) -> bool {
        slot == self.phone
            || self.name == Some(slot)
            || self.zone == Some(slot)
            || self.language == Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> RawRow {
        RawRow {
            row: 1,
            cells: cells
                .iter()
                .enumerate()
                .filter(|(_, t)| !t.trim().is_empty())
                .map(|(i, t)| (i, t.trim().to_string()))
                .collect(),
        }
    }

    fn phone_of(cells: &[&str]) -> Option<String> {
        Header::from_row(&row(cells)).map(|h| h.columns[h.phone].clone())
    }

    #[test]
    fn every_listed_phone_spelling() {
        for spelling in [
            "phone",
            "Phone Number",
            "PHONE_NUMBER",
            "phone-number",
            "Telephone",
            "tel",
            "Tel.",
            "Mobile",
            "cell",
            "Cellphone",
            "WhatsApp",
            "number",
            "MSISDN",
            "Teléfono",
            "telefono",
            "Celular",
            "Móvil",
            "movil",
            "Número",
            "numero",
            "Número de teléfono",
            "Numero de celular",
            "Fone",
            "Telefone",
            "Número de telefone",
            "Contato",
            "  phone   number ",
        ] {
            let found = phone_of(&["Nombre", spelling]);
            assert_eq!(found.as_deref(), Some(spelling.trim()), "{spelling}");
        }
    }

    #[test]
    fn other_roles() {
        for (name, zone, lang) in [
            ("Name", "Time zone", "Language"),
            ("full_name", "timezone", "lang"),
            ("Customer", "TZ", "Idioma"),
            ("Contact", "Zona horaria", "Língua"),
            ("Nombre", "Huso horario", "lingua"),
            ("Nombre completo", "Fuso horário", "idioma"),
            ("Cliente", "fuso", "language"),
            ("Contacto", "time-zone", "LANGUAGE"),
            ("Nome", "zona_horaria", "lang"),
            ("Nome completo", "Time.Zone", "lang"),
        ] {
            let h =
                Header::from_row(&row(&["Phone", name, zone, lang, "Amount"])).expect("a header");
            assert_eq!(h.phone, 0);
            assert_eq!(h.name, Some(1), "{name}");
            assert_eq!(h.zone, Some(2), "{zone}");
            assert_eq!(h.language, Some(3), "{lang}");
            assert!(!h.is_role(4));
        }
    }

    #[test]
    fn no_phone_column_is_no_header() {
        assert!(Header::from_row(&row(&["Customer list 2024"])).is_none());
        assert!(Header::from_row(&row(&["name", "email", "amount"])).is_none());
        assert!(Header::from_row(&row(&["phone list"])).is_none());
        assert!(Header::from_row(&row(&[])).is_none());
    }

    #[test]
    fn strong_spelling_beats_weak_and_leftmost_wins() {
        let h = Header::from_row(&row(&[
            "Número",
            "Cliente",
            "Nombre",
            "Teléfono",
            "Celular",
        ]))
        .expect("a header");
        assert_eq!(h.phone, 3, "Teléfono over Número");
        assert_eq!(h.name, Some(2), "Nombre over Cliente");
        let h = Header::from_row(&row(&["Cliente", "Número"])).expect("a header");
        assert_eq!(h.phone, 1);
        assert_eq!(h.name, Some(0));
    }

    #[test]
    fn duplicates_are_suffixed_and_gaps_ignored() {
        let h = Header::from_row(&row(&[
            " Phone ",
            "Amount",
            "",
            "Amount",
            "Amount",
            "Amount (2)",
        ]))
        .expect("a header");
        assert_eq!(
            h.columns,
            [
                "Phone",
                "Amount",
                "Amount (2)",
                "Amount (3)",
                "Amount (2) (2)"
            ]
        );
        assert_eq!(
            h.slot_of_col,
            [Some(0), Some(1), None, Some(2), Some(3), Some(4)]
        );
        assert_eq!(h.slot_named("amount"), Some(1));
        assert_eq!(h.slot_named("AMOUNT (3)"), Some(3));
        assert_eq!(h.slot_named("missing"), None);
        assert_eq!(h.slot_named("  "), None);
    }
}
