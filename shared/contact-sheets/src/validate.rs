//! One cell's value: a phone number, a time zone, a language.

use std::collections::HashMap;

use domain::UserId;
use jiff::tz::TimeZoneDatabase;
use phonenumber::country::Id;
use phonenumber::Mode;

use crate::SheetError;

/// The default country of the options, as phone numbers know it.
pub(crate) fn country(code: &str) -> Result<Id, SheetError> {
    let code = code.trim().to_ascii_uppercase();
    if code.len() == 2 {
        if let Ok(id) = code.parse::<Id>() {
            return Ok(id);
        }
    }
    Err(SheetError::UnknownCountry(code))
}

/// Digits in a plausible phone number, at most (E.164 allows 15; a
/// national trunk or international prefix adds a few).
const MAX_DIGITS: usize = 20;
/// Digits below which a number without `+` is not tried as international.
/// Ten digits is a national number in much of the Americas; tried as
/// international, a US "2015550123" in an Argentine sheet would be a valid
/// number in Egypt (+20).
const MIN_INTERNATIONAL_DIGITS: usize = 11;

/// A phone number as written in a sheet, to E.164.
///
/// Spaces, dashes, dots, slashes and parentheses are layout; a leading `+`
/// or `00` starts an international number. Anything else (letters, `ext`,
/// two numbers in one cell) is not a number. A number without a country
/// code is read in `country`; if it is not a valid number there and has at
/// least 11 digits, it is tried as international without its `+` (how
/// WhatsApp writes numbers: `5491155551234`, often typed so in sheets).
pub(crate) fn phone(raw: &str, country: Id) -> Option<UserId> {
    let mut digits = String::with_capacity(raw.len());
    let mut plus = false;
    for c in raw.trim().chars() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if digits.is_empty() && !plus => plus = true,
            // Word and Excel turn a typed `-` into a Unicode dash.
            ' ' | '\u{a0}' | '\t' | '-' | '\u{2010}'..='\u{2015}' | '.' | '/' | '(' | ')' => {}
            _ => return None,
        }
    }
    if !plus {
        if let Some(rest) = digits.strip_prefix("00") {
            digits = rest.to_string();
            plus = true;
        }
    }
    if digits.len() < 3 || digits.len() > MAX_DIGITS {
        return None;
    }
    // Only digits (and a `+`) reach the parser: layout characters carry
    // nothing it needs, and its grammar then has the least to get wrong.
    let international = |digits: &str| valid(None, &format!("+{digits}"));
    if plus {
        international(&digits)
    } else {
        valid(Some(country), &digits).or_else(|| {
            (digits.len() >= MIN_INTERNATIONAL_DIGITS)
                .then(|| international(&digits))
                .flatten()
        })
    }
}

fn valid(country: Option<Id>, number: &str) -> Option<UserId> {
    let e164 = crate::guarded(|| {
        let parsed = phonenumber::parse(country, number).ok()?;
        phonenumber::is_valid(&parsed).then(|| parsed.format().mode(Mode::E164).to_string())
    })??;
    UserId::phone(&e164).ok()
}

/// IANA time zone names, looked up once each per file.
pub(crate) struct Zones {
    /// The database compiled in: the same answers on Lambda as here, and
    /// no file read.
    db: TimeZoneDatabase,
    seen: HashMap<String, Option<String>>,
}

impl Zones {
    pub(crate) fn new() -> Self {
        Zones {
            db: TimeZoneDatabase::bundled(),
            seen: HashMap::new(),
        }
    }

    /// The zone's name as the database spells it, if it is one.
    pub(crate) fn get(&mut self, raw: &str) -> Option<String> {
        if let Some(known) = self.seen.get(raw) {
            return known.clone();
        }
        let found = self
            .db
            .get(raw)
            .ok()
            .map(|tz| tz.iana_name().unwrap_or(raw).to_string());
        // A sheet has a handful of zones; a hostile one could have a new
        // one per row, so the cache stops growing (lookups still work).
        if self.seen.len() < 1024 {
            self.seen.insert(raw.to_string(), found.clone());
        }
        found
    }
}

/// A language: a code (`es`, `es-AR`, `pt_BR` -> `es`, `pt`) or the name
/// of one of the three languages Charla speaks, in any of them.
pub(crate) fn language(raw: &str) -> Option<String> {
    let lower = raw.trim().to_lowercase();
    let mut parts = lower.split(['-', '_']);
    let primary = parts.next().unwrap_or_default();
    let subtags_ok =
        parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if primary.len() == 2 && primary.chars().all(|c| c.is_ascii_alphabetic()) && subtags_ok {
        return Some(primary.to_string());
    }
    let code = match crate::header::key(&lower).as_str() {
        "espanol" | "spanish" | "castellano" | "spa" => "es",
        "english" | "ingles" | "eng" => "en",
        "portugues" | "portuguese" | "por" => "pt",
        _ => return None,
    };
    Some(code.into())
}

/// What was written, quoted for a message: at most 30 characters, control
/// characters as spaces.
pub(crate) fn quote(raw: &str) -> String {
    const MAX: usize = 30;
    let clean = |c: char| if c.is_control() { ' ' } else { c };
    let mut out: String = raw.chars().take(MAX).map(clean).collect();
    if raw.chars().nth(MAX).is_some() {
        out.pop();
        out.push('…');
    }
    format!("\"{out}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e164(raw: &str, country: &str) -> Option<String> {
        phone(raw, super::country(country).expect("country")).map(|u| u.as_str().to_string())
    }

    #[test]
    fn countries() {
        assert_eq!(country("AR").ok(), Some(Id::AR));
        assert_eq!(country(" mx ").ok(), Some(Id::MX));
        assert_eq!(country("XX"), Err(SheetError::UnknownCountry("XX".into())));
        assert_eq!(country(""), Err(SheetError::UnknownCountry("".into())));
        assert_eq!(
            country("ARG"),
            Err(SheetError::UnknownCountry("ARG".into()))
        );
    }

    #[test]
    fn national_numbers_in_the_default_country() {
        assert_eq!(e164("(201) 555-0123", "US").as_deref(), Some("12015550123"));
        assert_eq!(e164("201.555.0123", "US").as_deref(), Some("12015550123"));
        assert_eq!(e164("201–555–0123", "US").as_deref(), Some("12015550123"));
        // Buenos Aires mobile: trunk 0, area 11, the mobile 15.
        assert_eq!(
            e164("011 15 5555-1234", "AR").as_deref(),
            Some("5491155551234")
        );
        assert_eq!(e164("11 5555 1234", "AR").as_deref(), Some("541155551234"));
        assert_eq!(e164("55 1234 5678", "MX").as_deref(), Some("525512345678"));
        assert_eq!(
            e164("(11) 91234-5678", "BR").as_deref(),
            Some("5511912345678")
        );
    }

    #[test]
    fn international_numbers() {
        assert_eq!(
            e164("+54 9 11 5555-1234", "US").as_deref(),
            Some("5491155551234")
        );
        assert_eq!(
            e164("0054 9 11 5555 1234", "US").as_deref(),
            Some("5491155551234")
        );
        assert_eq!(
            e164("+1 (201) 555-0123", "AR").as_deref(),
            Some("12015550123")
        );
        // WhatsApp's own form, no `+`, in another default country.
        assert_eq!(
            e164("5491155551234", "US").as_deref(),
            Some("5491155551234")
        );
        assert_eq!(
            e164("5511912345678", "MX").as_deref(),
            Some("5511912345678")
        );
        assert_eq!(e164("447911123456", "AR").as_deref(), Some("447911123456"));
        // Ten digits are a national number, never a foreign one.
        assert_eq!(e164("2015550123", "AR"), None);
    }

    #[test]
    fn not_numbers() {
        for raw in [
            "",
            "11 5555",
            "abc",
            "+",
            "++54 9 11 5555 1234",
            "54 + 9 11 5555 1234",
            "1155551234 ext 12",
            "11 5555-1234 / 11 5555-4321",
            "123456789012345678901234567890",
            "555-0123",
            "+999 1234 5678",
            "0",
            "-",
            "1e12",
        ] {
            assert_eq!(e164(raw, "AR"), None, "{raw:?}");
        }
    }

    #[test]
    fn zones() {
        let mut zones = Zones::new();
        assert_eq!(
            zones.get("America/Mexico_City").as_deref(),
            Some("America/Mexico_City")
        );
        assert_eq!(
            zones.get("america/argentina/buenos_aires").as_deref(),
            Some("America/Argentina/Buenos_Aires")
        );
        assert_eq!(zones.get("UTC").as_deref(), Some("UTC"));
        assert_eq!(zones.get("Mars/Base"), None);
        assert_eq!(zones.get("../../etc/passwd"), None);
        assert_eq!(zones.get("GMT-3 Buenos Aires"), None);
        assert_eq!(zones.get("Mars/Base"), None, "cached");
    }

    #[test]
    fn languages() {
        for (raw, code) in [
            ("es", "es"),
            ("ES", "es"),
            ("es-AR", "es"),
            ("pt_BR", "pt"),
            ("en-US", "en"),
            (" fr ", "fr"),
            ("Español", "es"),
            ("espanol", "es"),
            ("Spanish", "es"),
            ("English", "en"),
            ("Inglés", "en"),
            ("Portugués", "pt"),
            ("Português", "pt"),
            ("portuguese", "pt"),
        ] {
            assert_eq!(language(raw).as_deref(), Some(code), "{raw}");
        }
        for raw in ["klingon", "e", "e5", "es-", "esp-AR", "12", "es AR x"] {
            assert_eq!(language(raw), None, "{raw}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("11 5555"), "\"11 5555\"");
        assert_eq!(quote("a\nb"), "\"a b\"");
        let long = "1".repeat(40);
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), 32);
        assert!(quoted.ends_with("…\""));
        assert_eq!(quote(&"ñ".repeat(30)), format!("\"{}\"", "ñ".repeat(30)));
    }
}
