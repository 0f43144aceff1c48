//! `GET /admin/stats?days=N`: the numbers per day and their cost, from the
//! usage ledger, priced with the configured table.
//!
//! A "conversation" is one user's activity on one (UTC) day, as WhatsApp
//! counted conversations: a user who writes on three days is three. The
//! totals' cost per conversation divides by that.

use domain::error::{Error, Result};
use domain::ports::UsageLedger;
use domain::usage::{self, Counters, Prices, Summary};
use serde::Serialize;

pub const DEFAULT_DAYS: i64 = 30;
pub const MAX_DAYS: i64 = 90;

#[derive(Serialize)]
struct Day {
    day: String,
    #[serde(flatten)]
    summary: Summary,
}

#[derive(Serialize)]
struct Totals {
    #[serde(flatten)]
    summary: Summary,
    cost_per_conversation: Option<f64>,
    cost_per_1000_conversations: Option<f64>,
}

#[derive(Serialize)]
struct Stats {
    currency: String,
    from: String,
    to: String,
    days: Vec<Day>,
    totals: Totals,
}

fn days_param(query: Option<&str>) -> Result<i64> {
    let mut days = DEFAULT_DAYS;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == "days" {
            days = v
                .trim()
                .parse()
                .ok()
                .filter(|d| (1..=MAX_DAYS).contains(d))
                .ok_or_else(|| {
                    Error::Invalid(format!("days must be a number from 1 to {MAX_DAYS}"))
                })?;
        }
    }
    Ok(days)
}

/// The last `days` UTC days up to today, oldest first.
fn range(days: i64, now_ms: i64) -> Result<Vec<String>> {
    let today: jiff::civil::Date = usage::day_of(now_ms)
        .parse()
        .map_err(|e| Error::Invalid(format!("today: {e}")))?;
    (0..days)
        .rev()
        .map(|back| {
            today
                .checked_sub(jiff::Span::new().days(back))
                .map(|d| d.to_string())
                .map_err(|e| Error::Invalid(format!("date out of range: {e}")))
        })
        .collect()
}

pub async fn serve(
    ledger: &dyn UsageLedger,
    prices: &Prices,
    query: Option<&str>,
    now_ms: i64,
) -> Result<serde_json::Value> {
    let range = range(days_param(query)?, now_ms)?;
    let (Some(from), Some(to)) = (range.first(), range.last()) else {
        return Err(Error::Invalid("no days".into()));
    };
    let stored: std::collections::HashMap<String, Counters> =
        ledger.days(from, to).await?.into_iter().collect();
    let mut all = Counters::new();
    let days = range
        .iter()
        .map(|day| {
            let counters = stored.get(day).cloned().unwrap_or_default();
            usage::merge(&mut all, &counters);
            Day {
                day: day.clone(),
                summary: Summary::of(&counters, prices),
            }
        })
        .collect();
    let summary = Summary::of(&all, prices);
    let per = (summary.conversations > 0)
        .then(|| summary.cost.total / summary.conversations as f64)
        .map(|c| (c * 1e6).round() / 1e6);
    let stats = Stats {
        currency: prices.currency.clone(),
        from: from.clone(),
        to: to.clone(),
        days,
        totals: Totals {
            cost_per_conversation: per,
            cost_per_1000_conversations: per.map(|c| (c * 1000.0 * 1e4).round() / 1e4),
            summary,
        },
    };
    Ok(serde_json::to_value(stats)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ports::TurnNote;
    use domain::usage::{Sent, UsageEvent};
    use domain::UserId;
    use test_support::memory::MemoryUsage;

    const NOW: i64 = 1_732_147_200_000; // 2024-11-21T00:00:00Z
    const DAY: i64 = 86_400_000;

    fn user(n: u32) -> UserId {
        UserId::parse(&format!("54911555{n:05}")).expect("valid")
    }

    async fn turn(ledger: &MemoryUsage, who: u32, id: &str, at: i64, via: &'static str) {
        let note = TurnNote {
            via,
            model_calls: u32::from(via == "model"),
            model: "openai:gpt-4o-mini".into(),
            tokens_in: if via == "model" { 1_000 } else { 0 },
            ..TurnNote::default()
        };
        let sent = Sent {
            messages: 1,
            templates: 0,
        };
        let event = UsageEvent::turn(&user(who), id, at, &note, sent, 15);
        ledger.add(&event).await.expect("add");
    }

    #[tokio::test]
    async fn every_day_of_the_range_is_listed_with_its_numbers_and_the_totals_priced() {
        let ledger = MemoryUsage::default();
        turn(&ledger, 1, "a", NOW + 1_000, "playbook").await;
        turn(&ledger, 1, "b", NOW + 2_000, "model").await;
        turn(&ledger, 2, "c", NOW - 2 * DAY, "playbook").await;
        turn(&ledger, 3, "old", NOW - 40 * DAY, "model").await;
        let body = serve(&ledger, &Prices::default(), Some("days=7"), NOW + 5_000)
            .await
            .expect("stats");
        let days = body["days"].as_array().expect("days");
        assert_eq!(days.len(), 7);
        assert_eq!(body["from"], "2024-11-15");
        assert_eq!(body["to"], "2024-11-21");
        assert_eq!(days[6]["day"], "2024-11-21");
        assert_eq!(days[6]["turns"], 2);
        assert_eq!(days[6]["playbook_turns"], 1);
        assert_eq!(days[6]["model_turns"], 1);
        assert_eq!(days[6]["conversations"], 1);
        assert_eq!(days[6]["latency_ms"]["p50"], 20);
        assert_eq!(days[4]["turns"], 1);
        assert_eq!(days[0]["turns"], 0);
        assert!(days[0]["latency_ms"].is_null());
        let totals = &body["totals"];
        assert_eq!(totals["turns"], 3, "the 40-day-old turn is outside");
        assert_eq!(totals["conversations"], 2);
        // 1,000 tokens in of gpt-4o-mini ($0.15/M) and three turns of AWS.
        let total = totals["cost"]["total"].as_f64().expect("total");
        assert!(
            (total - (0.000_15 + 3.0 * 0.000_04)).abs() < 1e-9,
            "{total}"
        );
        let per = totals["cost_per_conversation"].as_f64().expect("per");
        assert!((per - total / 2.0).abs() < 1e-6);
        assert_eq!(body["currency"], "USD");
    }

    #[tokio::test]
    async fn days_outside_one_to_ninety_are_refused() {
        let ledger = MemoryUsage::default();
        for q in ["days=0", "days=91", "days=ten", "days=-1"] {
            let err = serve(&ledger, &Prices::default(), Some(q), NOW)
                .await
                .expect_err(q);
            assert!(matches!(err, Error::Invalid(_)), "{q}: {err:?}");
        }
        let body = serve(&ledger, &Prices::default(), None, NOW)
            .await
            .expect("default");
        assert_eq!(body["days"].as_array().map(Vec::len), Some(30));
        assert!(body["totals"]["cost_per_conversation"].is_null());
    }
}
