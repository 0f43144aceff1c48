//! The suite file: scripted conversations a support lead writes in YAML.
//! Every map refuses unknown keys, so a typo is an error that names its
//! line instead of a check that silently never runs.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One YAML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// What the suite is about (default: the file's name).
    #[serde(default)]
    pub suite: Option<String>,
    pub cases: Vec<Case>,
    /// Where the file is: photos and documents are read relative to it.
    #[serde(skip)]
    pub dir: PathBuf,
    #[serde(skip)]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    pub user: User,
    /// The simulated time the case starts at: `sunday 20:00` (the next one,
    /// in the business's time zone) or a full RFC 3339 time. Default: now.
    #[serde(default)]
    pub at: Option<String>,
    /// Settings for this case only (`CHARLA_CALLING_HOURS: always`).
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// `local`: runs only without a model; `model`: only with one
    /// (`CHARLA_MODEL`). Default: both.
    #[serde(default)]
    pub only: Option<Only>,
    #[serde(default)]
    pub turns: Vec<Turn>,
    /// A user played by the model, instead of (or after) the turns.
    #[serde(default)]
    pub simulated_user: Option<SimulatedUser>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Only {
    Local,
    Model,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    #[serde(default)]
    pub name: Option<String>,
    /// Digits with the country code, as WhatsApp sends it.
    #[serde(default)]
    pub number: Option<String>,
    /// ISO country (AR, US, BR...): a number of that country is made up
    /// when `number` is not given.
    #[serde(default)]
    pub country: Option<String>,
}

/// One thing the user does, and what must be true after it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Text typed.
    #[serde(default)]
    pub say: Option<String>,
    /// A reply button pressed, by its title or id (of the last buttons).
    #[serde(default)]
    pub tap: Option<String>,
    /// A list row chosen, by its title or id.
    #[serde(default)]
    pub choose: Option<String>,
    /// A photo (a file beside the suite).
    #[serde(default)]
    pub photo: Option<String>,
    /// A document (a file beside the suite).
    #[serde(default)]
    pub document: Option<String>,
    /// Caption of the photo or document.
    #[serde(default)]
    pub caption: Option<String>,
    /// A voice note; this is what its transcript says.
    #[serde(default)]
    pub voice: Option<String>,
    /// A tap on WhatsApp's call-permission request: `accept` or `reject`.
    #[serde(default)]
    pub call_permission: Option<String>,
    /// Time passes (`90s`, `10m`, `2h`, `1d`) on the simulated clock.
    #[serde(default)]
    pub wait: Option<String>,
    /// Meta delivers the last message again (same wamid): `true`.
    #[serde(default)]
    pub duplicate: Option<bool>,
    /// A delivery status for the bot's last message: `sent`, `delivered`,
    /// `read` or `failed`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub expect: Expect,
}

/// What the user did, once checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Say(String),
    Tap(String),
    Choose(String),
    Photo {
        file: PathBuf,
        caption: Option<String>,
    },
    Document {
        file: PathBuf,
        caption: Option<String>,
    },
    Voice(String),
    CallPermission(bool),
    Wait(i64),
    Duplicate,
    Status(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The language every reply is in (`es`, `en`, `pt`).
    #[serde(default)]
    pub language: Option<String>,
    /// Each must be in the replies: plain text (any case) or `/regex/`.
    #[serde(default)]
    pub contains: OneOrMany,
    /// None may be in the replies.
    #[serde(default)]
    pub not_contains: OneOrMany,
    /// Reply buttons (or list rows) offered, by title.
    #[serde(default)]
    pub buttons: OneOrMany,
    /// Tools called, by name, or with arguments that must match.
    #[serde(default)]
    pub tools: Vec<ToolCall>,
    /// Tools that must not be called.
    #[serde(default)]
    pub no_tools: OneOrMany,
    /// A lead recorded (by this turn or before).
    #[serde(default)]
    pub lead: Option<bool>,
    #[serde(default)]
    pub appointment: Option<bool>,
    #[serde(default)]
    pub call_request: Option<bool>,
    /// People have the conversation now.
    #[serde(default)]
    pub handoff: Option<bool>,
    /// Nothing sent for this turn.
    #[serde(default)]
    pub silent: Option<bool>,
    /// `bot`, `pending_human`, `human`, `closed`.
    #[serde(default)]
    pub state: Option<String>,
    /// Who answered: `playbook`, `local` (no model) or `model`.
    #[serde(default)]
    pub answered_by: Option<String>,
    /// The agent answered with its fallback.
    #[serde(default)]
    pub fallback: Option<bool>,
    /// Each must be in the transcript operators see in the admin API
    /// (what the agent was given for a photo or document, for one).
    #[serde(default)]
    pub transcript: OneOrMany,
    /// A rubric the model grades the replies on (needs `CHARLA_MODEL`).
    #[serde(default)]
    pub rubric: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ToolCall {
    Name(String),
    WithArgs(ToolWithArgs),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolWithArgs {
    pub name: String,
    /// Each argument given must match (strings as in `contains`).
    #[serde(default)]
    pub args: serde_json::Map<String, serde_json::Value>,
}

impl ToolCall {
    pub fn name(&self) -> &str {
        match self {
            ToolCall::Name(n) => n,
            ToolCall::WithArgs(t) => &t.name,
        }
    }
}

/// A single string or a list of them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "OneOrManyRaw")]
pub struct OneOrMany(pub Vec<String>);

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrManyRaw {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrManyRaw> for OneOrMany {
    fn from(r: OneOrManyRaw) -> Self {
        match r {
            OneOrManyRaw::One(s) => OneOrMany(vec![s]),
            OneOrManyRaw::Many(v) => OneOrMany(v),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatedUser {
    /// What the user wants; the model says whether they got it.
    pub goal: String,
    /// Who they are and how they write.
    #[serde(default)]
    pub persona: Option<String>,
    /// The most messages the simulated user sends (default 6).
    #[serde(default)]
    pub max_turns: Option<usize>,
}

/// A suite that could not be read: the file and what is wrong, with its
/// line where the parser knows it.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct SuiteError {
    pub file: String,
    pub message: String,
}

impl Suite {
    pub fn load(path: &Path) -> Result<Suite, SuiteError> {
        let err = |message: String| SuiteError {
            file: path.display().to_string(),
            message,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| err(format!("cannot read it: {e}")))?;
        let mut suite = Suite::parse(&text).map_err(err)?;
        suite.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        suite.file = path.to_path_buf();
        if suite.suite.is_none() {
            suite.suite = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        }
        Ok(suite)
    }

    /// Parses and checks a suite's text; the message names the line.
    pub fn parse(text: &str) -> Result<Suite, String> {
        let suite: Suite = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        if suite.cases.is_empty() {
            return Err("no cases".into());
        }
        for case in &suite.cases {
            let at = |m: String| format!("case {:?}: {m}", case.name);
            if case.turns.is_empty() && case.simulated_user.is_none() {
                return Err(at("no turns and no simulated_user".into()));
            }
            if let Some(when) = &case.at {
                parse_at(when, jiff::tz::TimeZone::UTC).map_err(at)?;
            }
            for (i, turn) in case.turns.iter().enumerate() {
                turn.action(Path::new(""))
                    .map_err(|m| at(format!("turn {}: {m}", i + 1)))?;
                for pattern in turn
                    .expect
                    .contains
                    .0
                    .iter()
                    .chain(&turn.expect.not_contains.0)
                    .chain(&turn.expect.transcript.0)
                {
                    Matcher::parse(pattern).map_err(|m| at(format!("turn {}: {m}", i + 1)))?;
                }
                if let Some(s) = &turn.expect.state {
                    if domain::ConversationState::parse(s).is_none() {
                        return Err(at(format!(
                            "turn {}: state {s:?}: expected bot, pending_human, human or closed",
                            i + 1
                        )));
                    }
                }
                if let Some(by) = &turn.expect.answered_by {
                    if !["playbook", "local", "model"].contains(&by.as_str()) {
                        return Err(at(format!(
                            "turn {}: answered_by {by:?}: expected playbook, local or model",
                            i + 1
                        )));
                    }
                }
            }
        }
        Ok(suite)
    }
}

impl Turn {
    /// The one thing this turn does; files resolved against `dir`.
    pub fn action(&self, dir: &Path) -> Result<Action, String> {
        let mut actions = Vec::new();
        if let Some(s) = &self.say {
            actions.push(Action::Say(s.clone()));
        }
        if let Some(s) = &self.tap {
            actions.push(Action::Tap(s.clone()));
        }
        if let Some(s) = &self.choose {
            actions.push(Action::Choose(s.clone()));
        }
        if let Some(f) = &self.photo {
            actions.push(Action::Photo {
                file: dir.join(f),
                caption: self.caption.clone(),
            });
        }
        if let Some(f) = &self.document {
            actions.push(Action::Document {
                file: dir.join(f),
                caption: self.caption.clone(),
            });
        }
        if let Some(s) = &self.voice {
            actions.push(Action::Voice(s.clone()));
        }
        if let Some(s) = &self.call_permission {
            actions.push(Action::CallPermission(match s.as_str() {
                "accept" => true,
                "reject" => false,
                other => return Err(format!("call_permission {other:?}: accept or reject")),
            }));
        }
        if let Some(w) = &self.wait {
            actions.push(Action::Wait(parse_duration_ms(w)?));
        }
        match self.duplicate {
            Some(true) => actions.push(Action::Duplicate),
            Some(false) => return Err("duplicate: only `true` means something".into()),
            None => {}
        }
        if let Some(st) = &self.status {
            if !["sent", "delivered", "read", "failed"].contains(&st.as_str()) {
                return Err(format!("status {st:?}: sent, delivered, read or failed"));
            }
            actions.push(Action::Status(st.clone()));
        }
        if self.caption.is_some() && self.photo.is_none() && self.document.is_none() {
            return Err("caption without a photo or document".into());
        }
        match actions.len() {
            1 => Ok(actions.remove(0)),
            0 => Err(format!("nothing to do: {ACTIONS}")),
            _ => Err(format!("one of {ACTIONS} per turn")),
        }
    }
}

const ACTIONS: &str =
    "say, tap, choose, photo, document, voice, call_permission, wait, duplicate or status";

/// `90s`, `10m`, `2h`, `1d` in milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let bad = || format!("wait {s:?}: expected a number and s, m, h or d (10m)");
    let unit = s.chars().last().ok_or_else(bad)?;
    let n: i64 = s[..s.len() - unit.len_utf8()]
        .trim()
        .parse()
        .map_err(|_| bad())?;
    let ms = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return Err(bad()),
    };
    // Time goes forward only, and not past what a clock can hold.
    match n.checked_mul(ms) {
        Some(total) if n >= 0 => Ok(total),
        _ => Err(bad()),
    }
}

/// The case's start: `sunday 20:00` (the next one from now, in `tz`) or
/// an RFC 3339 time.
pub fn parse_at(s: &str, tz: jiff::tz::TimeZone) -> Result<jiff::Timestamp, String> {
    parse_at_from(s, tz, jiff::Timestamp::now())
}

pub fn parse_at_from(
    s: &str,
    tz: jiff::tz::TimeZone,
    now: jiff::Timestamp,
) -> Result<jiff::Timestamp, String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let bad = || {
        format!(
            "at {s:?}: expected a weekday and a time (sunday 20:00) or 2026-11-29T20:00:00-03:00"
        )
    };
    let (day, time) = s.trim().split_once(' ').ok_or_else(bad)?;
    let weekday = match day.to_lowercase().as_str() {
        "monday" | "lunes" => jiff::civil::Weekday::Monday,
        "tuesday" | "martes" => jiff::civil::Weekday::Tuesday,
        "wednesday" | "miercoles" | "miércoles" => jiff::civil::Weekday::Wednesday,
        "thursday" | "jueves" => jiff::civil::Weekday::Thursday,
        "friday" | "viernes" => jiff::civil::Weekday::Friday,
        "saturday" | "sabado" | "sábado" => jiff::civil::Weekday::Saturday,
        "sunday" | "domingo" => jiff::civil::Weekday::Sunday,
        _ => return Err(bad()),
    };
    let time: jiff::civil::Time = time.trim().parse().map_err(|_| bad())?;
    let today = now.to_zoned(tz.clone()).date();
    // The next such day, today included, a week ahead at most.
    let date = (0..7)
        .map(|d| today.saturating_add(jiff::Span::new().days(d)))
        .find(|d| d.weekday() == weekday)
        .ok_or_else(bad)?;
    date.to_datetime(time)
        .to_zoned(tz)
        .map(|z| z.timestamp())
        .map_err(|e| format!("at {s:?}: {e}"))
}

/// A `contains` entry: text (any case) or `/regex/` (`/regex/i`).
#[derive(Debug, Clone)]
pub enum Matcher {
    Text(String),
    Regex(regex::Regex),
}

impl Matcher {
    pub fn parse(s: &str) -> Result<Matcher, String> {
        if let Some(rest) = s.strip_prefix('/') {
            let (body, flags) = rest
                .rsplit_once('/')
                .ok_or_else(|| format!("{s:?}: a regular expression ends with /"))?;
            let pattern = if flags.contains('i') {
                format!("(?i){body}")
            } else {
                body.to_string()
            };
            return regex::Regex::new(&pattern)
                .map(Matcher::Regex)
                .map_err(|e| format!("{s:?}: {e}"));
        }
        Ok(Matcher::Text(s.to_lowercase()))
    }

    pub fn is_match(&self, text: &str) -> bool {
        match self {
            Matcher::Text(t) => text.to_lowercase().contains(t.as_str()),
            Matcher::Regex(r) => r.is_match(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_is_refused_with_its_line() {
        let text = "cases:\n  - name: a\n    turns:\n      - say: hola\n        expect:\n          langauge: es\n";
        let e = Suite::parse(text).expect_err("unknown key");
        assert!(e.contains("langauge"), "{e}");
        assert!(e.contains("line 6"), "{e}");
    }

    #[test]
    fn a_turn_does_one_thing() {
        let two = "cases:\n  - name: a\n    turns:\n      - say: hola\n        tap: Horarios\n";
        assert!(Suite::parse(two).expect_err("two").contains("one of"));
        let none = "cases:\n  - name: a\n    turns:\n      - expect: {silent: true}\n";
        assert!(Suite::parse(none)
            .expect_err("none")
            .contains("nothing to do"));
    }

    #[test]
    fn bad_values_name_the_case_and_turn() {
        let text =
            "cases:\n  - name: horarios\n    turns:\n      - say: hola\n      - wait: soon\n";
        let e = Suite::parse(text).expect_err("bad wait");
        assert!(e.contains("horarios") && e.contains("turn 2"), "{e}");
        let text = "cases:\n  - name: x\n    turns:\n      - say: hola\n        expect: {contains: \"/[a/\"}\n";
        assert!(Suite::parse(text).is_err());
    }

    #[test]
    fn waits_and_times_parse() {
        assert_eq!(parse_duration_ms("10m"), Ok(600_000));
        assert_eq!(parse_duration_ms("2h"), Ok(7_200_000));
        assert!(parse_duration_ms("m").is_err());
        assert!(parse_duration_ms("-5m").is_err());
        assert!(parse_duration_ms("99999999999999999d").is_err());
        let tz = jiff::tz::db()
            .get("America/Argentina/Buenos_Aires")
            .expect("tz");
        // A Monday.
        let now: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().expect("now");
        let at = parse_at_from("sunday 20:00", tz.clone(), now).expect("at");
        assert_eq!(at.to_string(), "2026-12-06T23:00:00Z");
        let at = parse_at_from("lunes 08:30", tz, now).expect("at");
        assert_eq!(at.to_string(), "2026-11-30T11:30:00Z");
    }

    #[test]
    fn matchers_take_text_or_regex() {
        let m = Matcher::parse("Horario").expect("text");
        assert!(m.is_match("nuestro horario es"));
        let r = Matcher::parse("/\\b(9|09):00\\b/").expect("regex");
        assert!(r.is_match("abrimos a las 9:00"));
        assert!(!r.is_match("abrimos a las 19:00"));
        assert!(Matcher::parse("/abc/i").expect("i").is_match("ABC"));
    }
}
