//! What an eval run prints and writes: a table per suite (case, turn,
//! pass/fail, what differed), the suite's figures, and JUnit XML.

use std::time::Duration;

use super::check::shorten;
use super::harness::Observed;

#[derive(Debug, Clone, Default)]
pub struct TurnResult {
    pub case: String,
    pub turn: usize,
    /// What the user did, shortly.
    pub did: String,
    pub pass: bool,
    pub diffs: Vec<String>,
    /// Said but not a failure (a rubric with no model to grade it).
    pub notes: Vec<String>,
    pub replies: Vec<String>,
    /// Who answered: playbook, local, model (none: nothing answered).
    pub via: Vec<&'static str>,
    /// Webhook in to the last reply out.
    pub elapsed: Option<Duration>,
}

/// One conversation's cost.
#[derive(Debug, Clone, Default)]
pub struct CaseFigures {
    pub answered: u32,
    pub by_playbook: u32,
    pub model_calls: u32,
    pub tokens: u64,
    /// Spent grading and playing the user, not by the agent.
    pub judge_tokens: u64,
    pub turn_times: Vec<Duration>,
}

impl CaseFigures {
    pub fn add(&mut self, seen: &Observed) {
        for r in &seen.reports {
            self.answered += 1;
            if r.via_playbook {
                self.by_playbook += 1;
            }
            self.model_calls += r.model_calls;
            self.tokens += r.usage.input_tokens + r.usage.output_tokens;
        }
        // Time per answered turn: a silent one (a status, people have the
        // conversation) only measures how long the pipeline took to settle.
        if !seen.replies.is_empty() {
            self.turn_times.push(seen.elapsed);
        }
    }
}

/// The suite's figures, as printed under its table.
pub fn summary(figures: &[CaseFigures]) -> String {
    let cases = figures.len().max(1) as f64;
    let answered: u32 = figures.iter().map(|f| f.answered).sum();
    let playbook: u32 = figures.iter().map(|f| f.by_playbook).sum();
    let calls: u32 = figures.iter().map(|f| f.model_calls).sum();
    let tokens: u64 = figures.iter().map(|f| f.tokens).sum();
    let judge: u64 = figures.iter().map(|f| f.judge_tokens).sum();
    let mut times: Vec<Duration> = figures.iter().flat_map(|f| f.turn_times.clone()).collect();
    times.sort();
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let mean = if times.is_empty() {
        0.0
    } else {
        times.iter().map(|d| d.as_secs_f64() * 1000.0).sum::<f64>() / times.len() as f64
    };
    let share = if answered == 0 {
        0.0
    } else {
        100.0 * f64::from(playbook) / f64::from(answered)
    };
    format!(
        "playbook answered {playbook} of {answered} turns ({share:.0}%); per conversation: \
         {:.1} model calls, {:.0} tokens{}; time per turn: mean {mean:.0} ms, p50 {:.0} ms, max {:.0} ms",
        f64::from(calls) / cases,
        tokens as f64 / cases,
        if judge > 0 {
            format!(" (+{judge} tokens grading and simulating)")
        } else {
            String::new()
        },
        ms(times.get(times.len() / 2)),
        ms(times.last()),
    )
}

pub fn print_suite(name: &str, results: &[TurnResult], figures: &[CaseFigures]) {
    let passed = results.iter().filter(|r| r.pass).count();
    println!("\n{name}: {passed} of {} turns passed", results.len());
    let case_w = results
        .iter()
        .map(|r| r.case.chars().count().min(34))
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "  {:<case_w$}  {:>4}  {:<44}  {:<4}  what differed",
        "case", "turn", "user", "ok"
    );
    for r in results {
        let first = r
            .diffs
            .first()
            .or(r.notes.first())
            .cloned()
            .unwrap_or_default();
        println!(
            "  {:<case_w$}  {:>4}  {:<44}  {:<4}  {}",
            shorten(&r.case, case_w),
            r.turn,
            shorten(&r.did, 44),
            if r.pass { "pass" } else { "FAIL" },
            first
        );
        for more in r
            .diffs
            .iter()
            .skip(1)
            .chain(r.notes.iter().skip(usize::from(r.diffs.is_empty())))
        {
            println!(
                "  {:<case_w$}  {:>4}  {:<44}  {:<4}  {more}",
                "", "", "", ""
            );
        }
        if !r.pass {
            for reply in &r.replies {
                println!(
                    "  {:<case_w$}  {:>4}  {:<44}  {:<4}  bot: {}",
                    "",
                    "",
                    "",
                    "",
                    shorten(reply, 140)
                );
            }
        }
    }
    println!("  {}", summary(figures));
}

fn xml(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: a testsuite per suite, a testcase per turn.
pub fn junit(suites: &[(String, Vec<TurnResult>, Vec<CaseFigures>)]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for (name, results, figures) in suites {
        let failures = results.iter().filter(|r| !r.pass).count();
        let time: f64 = results
            .iter()
            .filter_map(|r| r.elapsed)
            .map(|d| d.as_secs_f64())
            .sum();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{time:.3}\">\n",
            xml(name),
            results.len()
        ));
        out.push_str(&format!(
            "    <properties><property name=\"figures\" value=\"{}\"/></properties>\n",
            xml(&summary(figures))
        ));
        for r in results {
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{} / turn {}: {}\" time=\"{:.3}\">",
                xml(name),
                xml(&r.case),
                r.turn,
                xml(&r.did),
                r.elapsed.map_or(0.0, |d| d.as_secs_f64())
            ));
            if !r.pass {
                out.push_str(&format!(
                    "\n      <failure message=\"{}\">{}</failure>\n    ",
                    xml(r.diffs.first().map(String::as_str).unwrap_or("failed")),
                    xml(&format!(
                        "{}\n\nbot:\n{}",
                        r.diffs.join("\n"),
                        r.replies.join("\n")
                    ))
                ));
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_escapes_and_counts_failures() {
        let r = vec![
            TurnResult {
                case: "a<b".into(),
                turn: 1,
                did: "hola".into(),
                pass: true,
                ..Default::default()
            },
            TurnResult {
                case: "c".into(),
                turn: 2,
                did: "x".into(),
                pass: false,
                diffs: vec!["contains \"&\"".into()],
                ..Default::default()
            },
        ];
        let x = junit(&[("s".into(), r, vec![])]);
        assert!(x.contains("tests=\"2\" failures=\"1\""), "{x}");
        assert!(x.contains("a&lt;b / turn 1"), "{x}");
        assert!(
            x.contains("<failure message=\"contains &quot;&amp;&quot;\">"),
            "{x}"
        );
    }
}
