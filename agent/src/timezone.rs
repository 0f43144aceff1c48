//! A user's time zone from their phone number's country calling code, for
//! the countries Charla's users write from most. Countries that span
//! several zones get their most populous one; where that guess could be
//! wrong by hours (the US, Canada, Russia), there is no guess.

use domain::UserId;
use jiff::tz::TimeZone;

/// Longest prefix first.
const BY_PREFIX: &[(&str, &str)] = &[
    ("598", "America/Montevideo"),
    ("595", "America/Asuncion"),
    ("593", "America/Guayaquil"),
    ("591", "America/La_Paz"),
    ("507", "America/Panama"),
    ("506", "America/Costa_Rica"),
    ("505", "America/Managua"),
    ("504", "America/Tegucigalpa"),
    ("503", "America/El_Salvador"),
    ("502", "America/Guatemala"),
    ("351", "Europe/Lisbon"),
    ("58", "America/Caracas"),
    ("57", "America/Bogota"),
    ("56", "America/Santiago"),
    ("55", "America/Sao_Paulo"),
    ("54", "America/Argentina/Buenos_Aires"),
    ("53", "America/Havana"),
    ("52", "America/Mexico_City"),
    ("51", "America/Lima"),
    ("44", "Europe/London"),
    ("39", "Europe/Rome"),
    ("34", "Europe/Madrid"),
    ("33", "Europe/Paris"),
    ("49", "Europe/Berlin"),
];

/// The zone's name and the zone, when the number tells.
pub fn for_user_id(user_id: &UserId) -> Option<(String, TimeZone)> {
    let digits = user_id.as_str();
    let (_, name) = BY_PREFIX.iter().find(|(p, _)| digits.starts_with(p))?;
    let tz = jiff::tz::db().get(name).ok()?;
    Some((name.to_string(), tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(n: &str) -> Option<String> {
        for_user_id(&UserId::parse(n).expect("valid")).map(|(name, _)| name)
    }

    #[test]
    fn numbers_tell_their_zone_where_the_country_has_one() {
        assert_eq!(
            zone("5491155551234").as_deref(),
            Some("America/Argentina/Buenos_Aires")
        );
        assert_eq!(
            zone("5215512345678").as_deref(),
            Some("America/Mexico_City")
        );
        assert_eq!(zone("59899123456").as_deref(), Some("America/Montevideo"));
        assert_eq!(zone("351912345678").as_deref(), Some("Europe/Lisbon"));
        assert_eq!(zone("15551234567"), None);
    }
}
