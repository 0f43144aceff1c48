//! Business hours and appointment slots, in the business's time zone.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use crate::profile::Hours;

const DAY_MS: i64 = 86_400_000;

fn zoned(ms: i64, tz: &TimeZone) -> Option<Zoned> {
    Timestamp::from_millisecond(ms)
        .ok()
        .map(|t| t.to_zoned(tz.clone()))
}

fn to_ms(dt: DateTime, tz: &TimeZone) -> Option<i64> {
    dt.to_zoned(tz.clone())
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}

/// `YYYY-MM-DDTHH:MM` (or with a space) in the business's time zone, or a
/// full RFC 3339 time with an offset. The error says what is expected.
pub fn parse_local(text: &str, hours: &Hours) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let civil = t
        .replacen(' ', "T", 1)
        .parse::<DateTime>()
        .map_err(|_| format!("{t:?} is not a date and time like 2026-11-25T10:00"))?;
    to_ms(civil, &hours.time_zone)
        .ok_or_else(|| format!("{t:?} does not exist in {}", hours.time_zone_name))
}

/// Whether the business is open at `ms`.
pub fn is_open(ms: i64, hours: &Hours) -> bool {
    let Some(z) = zoned(ms, &hours.time_zone) else {
        return false;
    };
    hours
        .on(z.weekday())
        .is_some_and(|d| z.time() >= d.open && z.time() < d.close)
}

/// The next opening time after `ms` (within two weeks).
pub fn next_opening(ms: i64, hours: &Hours) -> Option<i64> {
    let z = zoned(ms, &hours.time_zone)?;
    let mut date = z.date();
    for _ in 0..15 {
        if let Some(d) = hours.on(date.weekday()) {
            if let Some(open) = to_ms(date.to_datetime(d.open), &hours.time_zone) {
                if open > ms {
                    return Some(open);
                }
            }
        }
        date = date.tomorrow().ok()?;
    }
    None
}

/// Why `start` cannot be booked, if it cannot.
pub fn check_slot(start: i64, now: i64, hours: &Hours) -> Result<(), String> {
    if start <= now {
        return Err("that time has passed".into());
    }
    if start > now + hours.booking_days_ahead * DAY_MS {
        return Err(format!(
            "bookings are open for the next {} days only",
            hours.booking_days_ahead
        ));
    }
    let z = zoned(start, &hours.time_zone).ok_or("not a valid time")?;
    let Some(day) = hours.on(z.weekday()) else {
        return Err("the business is closed that day".into());
    };
    let end = z.time().to_datetime(z.date()) + jiff::SignedDuration::from_mins(hours.slot_minutes);
    if z.time() < day.open || end.time() > day.close || end.date() != z.date() {
        return Err(format!(
            "outside business hours ({} to {})",
            day.open.strftime("%H:%M"),
            day.close.strftime("%H:%M")
        ));
    }
    let minutes = (i64::from(z.hour()) * 60 + i64::from(z.minute()))
        - (i64::from(day.open.hour()) * 60 + i64::from(day.open.minute()));
    if minutes % hours.slot_minutes != 0 || z.second() != 0 {
        return Err(format!(
            "appointments start every {} minutes from {}",
            hours.slot_minutes,
            day.open.strftime("%H:%M")
        ));
    }
    Ok(())
}

/// Up to `n` free slot starts from `from` on, skipping `taken`.
pub fn free_slots(hours: &Hours, from: i64, n: usize, taken: &[i64]) -> Vec<i64> {
    let mut out = Vec::new();
    let Some(z) = zoned(from, &hours.time_zone) else {
        return out;
    };
    let mut date: Date = z.date();
    for _ in 0..hours.booking_days_ahead.max(1) + 1 {
        if let Some(day) = hours.on(date.weekday()) {
            let mut t = date.to_datetime(day.open);
            let close = date.to_datetime(day.close);
            while t + jiff::SignedDuration::from_mins(hours.slot_minutes) <= close {
                if let Some(ms) = to_ms(t, &hours.time_zone) {
                    if ms > from && !taken.contains(&ms) {
                        out.push(ms);
                        if out.len() == n {
                            return out;
                        }
                    }
                }
                t += jiff::SignedDuration::from_mins(hours.slot_minutes);
            }
        }
        match date.tomorrow() {
            Ok(d) => date = d,
            Err(_) => break,
        }
    }
    out
}

fn weekday_name(day: Weekday, lang: &str) -> &'static str {
    let i = day.to_monday_zero_offset() as usize;
    let names: [&str; 7] = match lang {
        "es" => [
            "lunes",
            "martes",
            "miércoles",
            "jueves",
            "viernes",
            "sábado",
            "domingo",
        ],
        "pt" => [
            "segunda-feira",
            "terça-feira",
            "quarta-feira",
            "quinta-feira",
            "sexta-feira",
            "sábado",
            "domingo",
        ],
        _ => [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ],
    };
    names[i]
}

fn month_name(month: i8, lang: &str) -> &'static str {
    let i = (month.clamp(1, 12) - 1) as usize;
    let names: [&str; 12] = match lang {
        "es" => [
            "enero",
            "febrero",
            "marzo",
            "abril",
            "mayo",
            "junio",
            "julio",
            "agosto",
            "septiembre",
            "octubre",
            "noviembre",
            "diciembre",
        ],
        "pt" => [
            "janeiro",
            "fevereiro",
            "março",
            "abril",
            "maio",
            "junho",
            "julho",
            "agosto",
            "setembro",
            "outubro",
            "novembro",
            "dezembro",
        ],
        _ => [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ],
    };
    names[i]
}

/// `martes 25 de noviembre, 10:00 (America/Argentina/Buenos_Aires)`.
pub fn format_in(ms: i64, tz: &TimeZone, tz_name: &str, lang: &str) -> String {
    let Some(z) = zoned(ms, tz) else {
        return ms.to_string();
    };
    let day = weekday_name(z.weekday(), lang);
    let month = month_name(z.month(), lang);
    let time = z.time().strftime("%H:%M");
    match lang {
        "es" | "pt" => format!("{day} {} de {month}, {time} ({tz_name})", z.day()),
        _ => format!("{day}, {month} {}, {time} ({tz_name})", z.day()),
    }
}

/// [`format_in`] the business's time zone.
pub fn format_local(ms: i64, hours: &Hours, lang: &str) -> String {
    format_in(ms, &hours.time_zone, &hours.time_zone_name, lang)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;

    fn hours() -> Hours {
        Profile::parse(
            include_str!("../../profiles/demo/agent.toml"),
            std::path::Path::new("."),
        )
        .expect("demo")
        .hours
    }

    fn at(s: &str) -> i64 {
        parse_local(s, &hours()).expect("valid")
    }

    #[test]
    fn local_times_are_read_in_the_business_zone() {
        // Buenos Aires is UTC-3 all year.
        assert_eq!(
            at("2026-11-24T10:00"),
            "2026-11-24T13:00:00Z"
                .parse::<Timestamp>()
                .expect("ts")
                .as_millisecond()
        );
        assert_eq!(at("2026-11-24 10:00"), at("2026-11-24T10:00"));
        assert_eq!(at("2026-11-24T13:00:00Z"), at("2026-11-24T10:00"));
        assert!(parse_local("mañana a las 10", &hours()).is_err());
    }

    #[test]
    fn slots_follow_the_hours() {
        let h = hours();
        let now = at("2026-11-23T08:00"); // a Monday
        assert_eq!(check_slot(at("2026-11-24T10:00"), now, &h), Ok(()));
        assert_eq!(check_slot(at("2026-11-24T17:30"), now, &h), Ok(()));
        assert!(check_slot(at("2026-11-24T17:45"), now, &h).is_err());
        assert!(check_slot(at("2026-11-24T18:00"), now, &h).is_err());
        assert!(check_slot(at("2026-11-24T08:30"), now, &h).is_err());
        assert!(
            check_slot(at("2026-11-29T10:00"), now, &h).is_err(),
            "a Sunday"
        );
        assert!(check_slot(at("2026-11-22T10:00"), now, &h).is_err(), "past");
        assert!(
            check_slot(at("2027-01-20T10:00"), now, &h).is_err(),
            "too far"
        );
    }

    #[test]
    fn free_slots_skip_taken_ones_and_closed_days() {
        let h = hours();
        let sat_noon = at("2026-11-28T13:00");
        let taken = [at("2026-11-28T13:30")];
        let free = free_slots(&h, sat_noon, 2, &taken);
        assert_eq!(free, vec![at("2026-11-30T09:00"), at("2026-11-30T09:30")]);
    }

    #[test]
    fn openings_and_formatting() {
        let h = hours();
        assert!(is_open(at("2026-11-24T10:00"), &h));
        assert!(!is_open(at("2026-11-24T19:00"), &h));
        assert_eq!(
            next_opening(at("2026-11-28T15:00"), &h),
            Some(at("2026-11-30T09:00"))
        );
        assert_eq!(
            format_local(at("2026-11-24T10:00"), &h, "es"),
            "martes 24 de noviembre, 10:00 (America/Argentina/Buenos_Aires)"
        );
        assert_eq!(
            format_local(at("2026-11-24T10:00"), &h, "en"),
            "Tuesday, November 24, 10:00 (America/Argentina/Buenos_Aires)"
        );
    }
}
