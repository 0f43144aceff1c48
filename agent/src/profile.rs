//! The agent profile: one TOML file that describes a business's agent. It is
//! read once at start; a wrong profile stops the start with a message that
//! names the field and the problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use domain::whatsapp::outbound::BUTTON_TITLE_MAX;
use domain::{Error, Result};
use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use regex::Regex;
use serde::Deserialize;

use crate::tools::ToolName;

/// Text in each of the profile's languages (`es`, `en`, `pt`, ...).
pub type Localized = BTreeMap<String, String>;

/// Words per language.
pub type Keywords = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    agent: AgentSection,
    greeting: Localized,
    fallback: Localized,
    #[serde(default)]
    menu: Vec<MenuItem>,
    #[serde(default)]
    knowledge: KnowledgeSection,
    tools: ToolsSection,
    #[serde(default)]
    customers: CustomersSection,
    #[serde(default)]
    escalation: EscalationSection,
    #[serde(default)]
    templates: TemplatesSection,
    hours: HoursSection,
    #[serde(default)]
    model: ModelSection,
    #[serde(default)]
    intents: Vec<Intent>,
    #[serde(default)]
    voice: RawVoiceSection,
    #[serde(default)]
    campaigns: CampaignsSection,
}

/// `[campaigns]`: what the campaigns take from the business.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignsSection {
    /// The business's own ways of saying "stop" per language, beside STOP,
    /// BAJA, PARAR and the like: the number goes on the do-not-contact list.
    #[serde(default)]
    opt_out_words: Keywords,
}

/// `[voice]`: phone calls (the voice issue). Every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVoiceSection {
    /// `vapi` or `retell`; `CHARLA_VOICE_PROVIDER` overrides it.
    #[serde(default)]
    provider: Option<String>,
    /// `HH:MM-HH:MM` in the customer's time zone, or `always`;
    /// `CHARLA_CALLING_HOURS` overrides it.
    #[serde(default)]
    calling_hours: Option<String>,
    /// Where a call goes when the caller wants a person: an E.164 number or
    /// a SIP URI of the company's PBX; `CHARLA_TRANSFER_TO` overrides it.
    #[serde(default)]
    transfer_to: Option<String>,
}

/// The profile's voice settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceSettings {
    pub provider: Option<domain::voice::ProviderKind>,
    pub calling_hours: domain::voice::CallingHours,
    pub transfer_to: Option<domain::voice::TransferTarget>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// The agent's name, as it introduces itself.
    pub name: String,
    pub business: String,
    /// The first is the default, used when the user's language is not one
    /// of these or cannot be told.
    pub languages: Vec<String>,
    pub persona: String,
    #[serde(default)]
    pub instructions: String,
}

/// A reply button of the menu. Pressing it runs `intent`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuItem {
    pub id: String,
    pub title: Localized,
    pub intent: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeSection {
    /// Markdown folder for the local index, relative to the profile file.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolsSection {
    enabled: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomersSection {
    /// What a customer id looks like once normalised (digits and letters,
    /// no dots, dashes or spaces). Lookups of anything else are refused.
    #[serde(default = "default_id_pattern")]
    pub id_pattern: String,
    /// Finds an id inside a user's message (the playbook's lookup). Unset:
    /// `id_pattern` itself, unanchored and in any case (the default id's
    /// own finder for the default pattern).
    #[serde(default)]
    pub id_in_message: Option<String>,
    /// The fields shown to the user, in order, with their labels; the rest
    /// of the record stays private. Empty: every field.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Labels per language for the fields: `labels.es.balance = "Saldo"`.
    #[serde(default)]
    pub labels: BTreeMap<String, BTreeMap<String, String>>,
    /// Distinct ids one conversation may look up in one turn.
    #[serde(default = "one")]
    pub lookups_per_turn: usize,
    /// When set, a customer's record is shown only to the WhatsApp number
    /// in this field: an id alone is not proof of who is asking.
    #[serde(default)]
    pub phone_field: Option<String>,
    /// The CRM endpoint (`GET {url}/customers/{id}`, `POST {url}/leads`);
    /// its key comes from the secrets. `CHARLA_CRM_URL` overrides it.
    #[serde(default)]
    pub crm_url: Option<String>,
}

impl Default for CustomersSection {
    fn default() -> Self {
        CustomersSection {
            id_pattern: default_id_pattern(),
            id_in_message: None,
            fields: Vec::new(),
            labels: BTreeMap::new(),
            lookups_per_turn: 1,
            phone_field: None,
            crm_url: None,
        }
    }
}

fn default_id_pattern() -> String {
    r"^[0-9]{7,8}$".into()
}
fn default_id_in_message() -> String {
    r"\b[0-9]{1,2}\.?[0-9]{3}\.?[0-9]{3}\b".into()
}
/// A finder for ids of `pattern` inside a message: the pattern without
/// its anchors, between word boundaries, in any case (`vm-48213` is
/// `VM-48213` once normalised).
fn id_finder(pattern: &str) -> String {
    let inner = pattern.strip_prefix('^').unwrap_or(pattern);
    let inner = inner.strip_suffix('$').unwrap_or(inner);
    format!(r"(?i)\b(?:{inner})\b")
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationSection {
    /// Words that send a conversation to people at once.
    #[serde(default)]
    pub keywords: Keywords,
    /// Minutes without a person answering before the user is told and
    /// offered a call-back (the escalation stays open).
    #[serde(default = "default_no_human_minutes")]
    pub no_human_minutes: u64,
    /// The usual wait for a person during business hours, in minutes: what
    /// the user is told.
    #[serde(default = "default_expected_wait_minutes")]
    pub expected_wait_minutes: u64,
    /// The policy's numbers; unset ones keep the defaults of
    /// `domain::escalation::EscalationPolicy`.
    #[serde(default)]
    pub negative_threshold: Option<f32>,
    #[serde(default)]
    pub negative_streak: Option<u32>,
    #[serde(default)]
    pub very_negative_threshold: Option<f32>,
    #[serde(default)]
    pub fallback_streak: Option<u32>,
    /// Playbook intents that people should handle.
    #[serde(default)]
    pub high_value_intents: Vec<String>,
}

fn default_no_human_minutes() -> u64 {
    5
}
fn default_expected_wait_minutes() -> u64 {
    15
}

impl Default for EscalationSection {
    fn default() -> Self {
        EscalationSection {
            keywords: Keywords::new(),
            no_human_minutes: default_no_human_minutes(),
            expected_wait_minutes: default_expected_wait_minutes(),
            negative_threshold: None,
            negative_streak: None,
            very_negative_threshold: None,
            fallback_streak: None,
            high_value_intents: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    pub name: String,
    pub language: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplatesSection {
    /// Sent instead of free text outside the 24-hour window.
    pub reengage: Option<TemplateRef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoursSection {
    time_zone: String,
    #[serde(default)]
    mon: Option<String>,
    #[serde(default)]
    tue: Option<String>,
    #[serde(default)]
    wed: Option<String>,
    #[serde(default)]
    thu: Option<String>,
    #[serde(default)]
    fri: Option<String>,
    #[serde(default)]
    sat: Option<String>,
    #[serde(default)]
    sun: Option<String>,
    #[serde(default = "default_slot")]
    slot_minutes: i64,
    #[serde(default = "default_days_ahead")]
    booking_days_ahead: i64,
}

fn default_slot() -> i64 {
    30
}
fn default_days_ahead() -> i64 {
    14
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Model rounds per turn (each may ask for tools).
    #[serde(default = "default_max_steps")]
    pub max_steps: usize,
    /// The whole turn: model rounds and tools.
    #[serde(default = "default_turn_timeout")]
    pub turn_timeout_ms: u64,
    #[serde(default = "default_tool_timeout")]
    pub tool_timeout_ms: u64,
    /// Recent messages given to the model.
    #[serde(default = "default_history")]
    pub history_messages: usize,
    /// Once a conversation has this many messages before the recent ones,
    /// they are folded into a rolling summary.
    #[serde(default = "default_summarize_after")]
    pub summarize_after: usize,
    #[serde(default)]
    pub guardrail_id: Option<String>,
    #[serde(default)]
    pub guardrail_version: Option<String>,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            max_tokens: default_max_tokens(),
            temperature: None,
            max_steps: default_max_steps(),
            turn_timeout_ms: default_turn_timeout(),
            tool_timeout_ms: default_tool_timeout(),
            history_messages: default_history(),
            summarize_after: default_summarize_after(),
            guardrail_id: None,
            guardrail_version: None,
        }
    }
}

fn default_max_tokens() -> u32 {
    700
}
fn default_max_steps() -> usize {
    5
}
fn default_turn_timeout() -> u64 {
    25_000
}
fn default_tool_timeout() -> u64 {
    5_000
}
fn default_history() -> usize {
    20
}
fn default_summarize_after() -> usize {
    30
}

/// What a playbook intent does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentAction {
    /// Answers with the intent's fixed text.
    Answer,
    /// Searches the knowledge base with the user's words.
    Knowledge,
    /// The greeting and the menu.
    Menu,
    /// `handoff_to_human`.
    Handoff,
    /// `request_call`.
    Call,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub name: String,
    pub action: IntentAction,
    /// Whole words (accents and case ignored) per language.
    #[serde(default)]
    pub keywords: Keywords,
    /// Regular expressions, any language.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// For `answer`.
    #[serde(default)]
    pub answer: Localized,
    /// For `knowledge`: the query to run instead of the user's words, per
    /// language (the knowledge base may hold a section per language).
    #[serde(default)]
    pub query: Localized,
}

/// Opening hours of one day, local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayHours {
    pub open: Time,
    pub close: Time,
}

/// Business hours in the business's time zone.
#[derive(Debug, Clone)]
pub struct Hours {
    pub time_zone: TimeZone,
    pub time_zone_name: String,
    /// Monday first.
    pub days: [Option<DayHours>; 7],
    pub slot_minutes: i64,
    pub booking_days_ahead: i64,
}

impl Hours {
    pub fn on(&self, day: Weekday) -> Option<DayHours> {
        self.days[day.to_monday_zero_offset() as usize]
    }
}

/// A playbook intent, compiled.
#[derive(Debug, Clone)]
pub struct CompiledIntent {
    pub intent: Intent,
    pub patterns: Vec<Regex>,
    /// Keywords folded (lowercase, no accents), all languages together.
    pub words: Vec<String>,
}

/// A valid profile. Only [`Profile::load`] and [`Profile::parse`] make one.
#[derive(Debug, Clone)]
pub struct Profile {
    pub agent: AgentSection,
    pub greeting: Localized,
    pub fallback: Localized,
    pub menu: Vec<MenuItem>,
    /// Resolved against the profile's folder.
    pub knowledge_dir: Option<PathBuf>,
    pub tools: Vec<ToolName>,
    pub customers: CustomersSection,
    pub customer_id: Regex,
    pub customer_id_in_message: Regex,
    pub escalation_words: Vec<String>,
    /// The `[escalation]` section as written (the escalation function's).
    pub escalation: EscalationSection,
    pub templates: TemplatesSection,
    pub hours: Hours,
    pub model: ModelSection,
    pub intents: Vec<CompiledIntent>,
    pub voice: VoiceSettings,
    /// `[campaigns] opt_out_words`, as (language, phrase).
    pub opt_out_words: Vec<(String, String)>,
}

fn invalid(field: &str, problem: impl std::fmt::Display) -> Error {
    Error::Config(format!("agent profile: {field}: {problem}"))
}

impl Profile {
    /// The template for outside the 24-hour window: (name, language).
    pub fn reengage_template(&self) -> Option<(String, String)> {
        self.templates
            .reengage
            .as_ref()
            .map(|t| (t.name.clone(), t.language.clone()))
    }

    /// Reads and checks the profile at `path`.
    pub fn load(path: &Path) -> Result<Profile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "agent profile {}: cannot be read: {e}",
                path.display()
            ))
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Profile::parse(&text, base).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{} ({})", m, path.display())),
            other => other,
        })
    }

    /// Checks a profile's text; relative folders are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Profile> {
        let raw: RawProfile = toml::from_str(text)
            .map_err(|e| Error::Config(format!("agent profile: {}", e.to_string().trim())))?;
        let langs = &raw.agent.languages;
        if langs.is_empty() {
            return Err(invalid("agent.languages", "needs at least one language"));
        }
        for l in langs {
            if !(2..=3).contains(&l.len()) || !l.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(invalid(
                    "agent.languages",
                    format!("{l:?} is not a language code such as \"es\""),
                ));
            }
        }
        for (field, value) in [
            ("agent.name", &raw.agent.name),
            ("agent.business", &raw.agent.business),
            ("agent.persona", &raw.agent.persona),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(field, "must not be empty"));
            }
        }
        check_localized("greeting", &raw.greeting, langs)?;
        check_localized("fallback", &raw.fallback, langs)?;

        let mut tools = Vec::new();
        for name in &raw.tools.enabled {
            let tool = ToolName::parse(name).ok_or_else(|| {
                invalid(
                    "tools.enabled",
                    format!(
                        "unknown tool {name:?}; the tools are {}",
                        ToolName::ALL
                            .iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            if !tools.contains(&tool) {
                tools.push(tool);
            }
        }

        let mut intents = Vec::new();
        for (i, intent) in raw.intents.iter().enumerate() {
            let field = format!("intents[{i}] ({})", intent.name);
            if intent.name.trim().is_empty() {
                return Err(invalid(&format!("intents[{i}].name"), "must not be empty"));
            }
            if intents
                .iter()
                .any(|c: &CompiledIntent| c.intent.name == intent.name)
            {
                return Err(invalid(&field, "the name is used twice"));
            }
            let patterns = intent
                .patterns
                .iter()
                .map(|p| {
                    Regex::new(p)
                        .map_err(|e| invalid(&format!("{field}.patterns"), format!("{p:?}: {e}")))
                })
                .collect::<Result<Vec<_>>>()?;
            check_keyword_langs(&format!("{field}.keywords"), &intent.keywords, langs)?;
            if intent.action == IntentAction::Answer {
                check_localized(&format!("{field}.answer"), &intent.answer, langs)?;
            }
            if !intent.query.is_empty() {
                check_localized(&format!("{field}.query"), &intent.query, langs)?;
            }
            let needs_tool = match intent.action {
                IntentAction::Handoff => Some(ToolName::HandoffToHuman),
                IntentAction::Call => Some(ToolName::RequestCall),
                IntentAction::Knowledge => Some(ToolName::KbSearch),
                _ => None,
            };
            if let Some(t) = needs_tool {
                if !tools.contains(&t) {
                    return Err(invalid(
                        &field,
                        format!("needs the tool {} in tools.enabled", t.as_str()),
                    ));
                }
            }
            let words = intent
                .keywords
                .values()
                .flatten()
                .map(|w| crate::text::fold(w))
                .filter(|w| !w.is_empty())
                .collect();
            intents.push(CompiledIntent {
                intent: intent.clone(),
                patterns,
                words,
            });
        }

        if raw.menu.len() > 3 {
            return Err(invalid("menu", "WhatsApp shows at most 3 reply buttons"));
        }
        for (i, item) in raw.menu.iter().enumerate() {
            let field = format!("menu[{i}]");
            check_localized(&format!("{field}.title"), &item.title, langs)?;
            if let Some((lang, title)) = item
                .title
                .iter()
                .find(|(_, t)| t.chars().count() > BUTTON_TITLE_MAX)
            {
                return Err(invalid(
                    &format!("{field}.title.{lang}"),
                    format!("{title:?} is longer than {BUTTON_TITLE_MAX} characters"),
                ));
            }
            if !intents.iter().any(|c| c.intent.name == item.intent) {
                return Err(invalid(
                    &format!("{field}.intent"),
                    format!("no intent is named {:?}", item.intent),
                ));
            }
        }

        let customer_id = Regex::new(&raw.customers.id_pattern)
            .map_err(|e| invalid("customers.id_pattern", e))?;
        let in_message = match &raw.customers.id_in_message {
            Some(p) => p.clone(),
            None if raw.customers.id_pattern == default_id_pattern() => default_id_in_message(),
            None => id_finder(&raw.customers.id_pattern),
        };
        let customer_id_in_message =
            Regex::new(&in_message).map_err(|e| invalid("customers.id_in_message", e))?;
        if let Some(url) = &raw.customers.crm_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) || url.ends_with('/') {
                return Err(invalid(
                    "customers.crm_url",
                    format!("{url:?} is not an http(s) URL without a trailing slash"),
                ));
            }
        }
        if raw.customers.lookups_per_turn == 0 {
            return Err(invalid("customers.lookups_per_turn", "must be at least 1"));
        }

        check_keyword_langs("escalation.keywords", &raw.escalation.keywords, langs)?;
        check_keyword_langs(
            "campaigns.opt_out_words",
            &raw.campaigns.opt_out_words,
            langs,
        )?;
        let opt_out_words = raw
            .campaigns
            .opt_out_words
            .iter()
            .flat_map(|(lang, words)| {
                words
                    .iter()
                    .filter(|w| !w.trim().is_empty())
                    .map(move |w| (lang.clone(), w.trim().to_string()))
            })
            .collect();
        let escalation_words = raw
            .escalation
            .keywords
            .values()
            .flatten()
            .map(|w| crate::text::fold(w))
            .filter(|w| !w.is_empty())
            .collect();

        let hours = parse_hours(&raw.hours)?;
        let m = &raw.model;
        if m.max_steps == 0 || m.max_steps > 20 {
            return Err(invalid("model.max_steps", "must be between 1 and 20"));
        }
        if m.max_tokens == 0 {
            return Err(invalid("model.max_tokens", "must be at least 1"));
        }
        if let Some(t) = m.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(invalid("model.temperature", "must be between 0 and 2"));
            }
        }
        if m.guardrail_id.is_some() != m.guardrail_version.is_some() {
            return Err(invalid(
                "model.guardrail_id",
                "guardrail_id and guardrail_version go together",
            ));
        }
        if m.turn_timeout_ms < 1000 || m.tool_timeout_ms == 0 {
            return Err(invalid(
                "model.turn_timeout_ms",
                "the turn needs at least 1000 ms and tools more than 0",
            ));
        }

        let voice = parse_voice(&raw.voice)?;
        let knowledge_dir = raw.knowledge.dir.as_ref().map(|d| base.join(d));
        if tools.contains(&ToolName::KbSearch) && knowledge_dir.is_none() {
            // Fine in AWS with a Bedrock knowledge base; the wiring checks.
        }

        Ok(Profile {
            agent: raw.agent,
            greeting: raw.greeting,
            fallback: raw.fallback,
            menu: raw.menu,
            knowledge_dir,
            tools,
            customers: raw.customers,
            customer_id,
            customer_id_in_message,
            escalation_words,
            escalation: raw.escalation,
            templates: raw.templates,
            hours,
            model: raw.model,
            intents,
            voice,
            opt_out_words,
        })
    }

    pub fn default_language(&self) -> &str {
        self.agent
            .languages
            .first()
            .map(String::as_str)
            .unwrap_or("es")
    }

    /// The text in `lang`, else in the default language.
    pub fn text<'a>(&self, texts: &'a Localized, lang: &str) -> &'a str {
        texts
            .get(lang)
            .or_else(|| texts.get(self.default_language()))
            .map(String::as_str)
            .unwrap_or_default()
    }

    pub fn tool_enabled(&self, tool: ToolName) -> bool {
        self.tools.contains(&tool)
    }

    pub fn intent(&self, name: &str) -> Option<&CompiledIntent> {
        self.intents.iter().find(|c| c.intent.name == name)
    }
}

fn check_localized(field: &str, texts: &Localized, langs: &[String]) -> Result<()> {
    for lang in langs {
        match texts.get(lang) {
            Some(t) if !t.trim().is_empty() => {}
            _ => return Err(invalid(field, format!("needs a text for {lang:?}"))),
        }
    }
    for lang in texts.keys() {
        if !langs.contains(lang) {
            return Err(invalid(
                field,
                format!("{lang:?} is not one of agent.languages"),
            ));
        }
    }
    Ok(())
}

fn check_keyword_langs(field: &str, words: &Keywords, langs: &[String]) -> Result<()> {
    match words.keys().find(|l| !langs.contains(l)) {
        Some(lang) => Err(invalid(
            field,
            format!("{lang:?} is not one of agent.languages"),
        )),
        None => Ok(()),
    }
}

fn parse_voice(raw: &RawVoiceSection) -> Result<VoiceSettings> {
    use domain::voice::{CallingHours, ProviderKind, TransferTarget, DEFAULT_CALLING_HOURS};
    Ok(VoiceSettings {
        provider: raw
            .provider
            .as_deref()
            .map(ProviderKind::parse)
            .transpose()
            .map_err(|e| invalid("voice.provider", e))?,
        calling_hours: CallingHours::parse(
            raw.calling_hours
                .as_deref()
                .unwrap_or(DEFAULT_CALLING_HOURS),
        )
        .map_err(|e| invalid("voice.calling_hours", e))?,
        transfer_to: raw
            .transfer_to
            .as_deref()
            .map(TransferTarget::parse)
            .transpose()
            .map_err(|e| invalid("voice.transfer_to", e))?,
    })
}

fn parse_hours(raw: &HoursSection) -> Result<Hours> {
    let time_zone = jiff::tz::db().get(&raw.time_zone).map_err(|_| {
        invalid(
            "hours.time_zone",
            format!("unknown time zone {:?}", raw.time_zone),
        )
    })?;
    let mut days = [None; 7];
    for (i, (name, value)) in [
        ("mon", &raw.mon),
        ("tue", &raw.tue),
        ("wed", &raw.wed),
        ("thu", &raw.thu),
        ("fri", &raw.fri),
        ("sat", &raw.sat),
        ("sun", &raw.sun),
    ]
    .into_iter()
    .enumerate()
    {
        let Some(value) = value else { continue };
        if value.trim().eq_ignore_ascii_case("closed") {
            continue;
        }
        let field = format!("hours.{name}");
        let (open, close) = value
            .split_once('-')
            .ok_or_else(|| invalid(&field, format!("{value:?} is not like \"09:00-18:00\"")))?;
        let parse = |s: &str| {
            Time::strptime("%H:%M", s.trim())
                .map_err(|_| invalid(&field, format!("{s:?} is not a time like 09:00")))
        };
        let (open, close) = (parse(open)?, parse(close)?);
        if open >= close {
            return Err(invalid(&field, "opens after it closes"));
        }
        days[i] = Some(DayHours { open, close });
    }
    if !(5..=240).contains(&raw.slot_minutes) {
        return Err(invalid("hours.slot_minutes", "must be between 5 and 240"));
    }
    if !(1..=365).contains(&raw.booking_days_ahead) {
        return Err(invalid(
            "hours.booking_days_ahead",
            "must be between 1 and 365",
        ));
    }
    Ok(Hours {
        time_zone,
        time_zone_name: raw.time_zone.clone(),
        days,
        slot_minutes: raw.slot_minutes,
        booking_days_ahead: raw.booking_days_ahead,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const DEMO: &str = include_str!("../../profiles/demo/agent.toml");

    fn parse(text: &str) -> Result<Profile> {
        Profile::parse(text, Path::new("/p"))
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("accepted a wrong profile"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_demo_profile_is_valid() {
        let p = parse(DEMO).expect("demo profile");
        assert_eq!(p.default_language(), "es");
        assert!(p.tools.len() >= 6);
        assert_eq!(p.knowledge_dir, Some(PathBuf::from("/p/knowledge")));
        assert!(p.hours.on(Weekday::Monday).is_some());
        assert_eq!(
            p.voice.transfer_to,
            Some(domain::voice::TransferTarget::Number(
                "+541143215678".into()
            ))
        );
        assert!(matches!(
            p.voice.calling_hours,
            domain::voice::CallingHours::Window { .. }
        ));
        assert!(p.hours.on(Weekday::Sunday).is_none());
        assert!(p
            .opt_out_words
            .contains(&("en".to_string(), "remove me from your list".to_string())));
    }

    #[test]
    fn wrong_profiles_name_the_field_and_the_problem() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "time_zone = \"America/Argentina/Buenos_Aires\"",
                "time_zone = \"Mars/Olympus\"",
                "hours.time_zone: unknown time zone",
            ),
            ("mon = \"09:00-18:00\"", "mon = \"9 to 6\"", "hours.mon"),
            (
                "mon = \"09:00-18:00\"",
                "mon = \"18:00-09:00\"",
                "hours.mon: opens after it closes",
            ),
            (
                "\"kb_search\",",
                "\"kb_search\", \"launch_rockets\",",
                "unknown tool \"launch_rockets\"",
            ),
            (
                "languages = [\"es\", \"en\", \"pt\"]",
                "languages = [\"es\", \"en\", \"pt\", \"Spanish\"]",
                "agent.languages",
            ),
            ("max_steps = 5", "max_steps = 0", "model.max_steps"),
            ("max_steps = 5", "max_stepz = 5", "max_stepz"),
            (
                "calling_hours = \"09:00-20:00\"",
                "calling_hours = \"20:00-09:00\"",
                "voice.calling_hours",
            ),
            (
                "transfer_to = \"+541143215678\"",
                "transfer_to = \"43215678\"",
                "voice.transfer_to",
            ),
            (
                "transfer_to = \"+541143215678\"",
                "provider = \"twilio\"",
                "voice.provider",
            ),
            (
                "en = [\"remove me from your list\"]",
                "fr = [\"laissez-moi\"]",
                "campaigns.opt_out_words: \"fr\" is not one of agent.languages",
            ),
        ];
        for (from, to, expected) in cases {
            assert!(DEMO.contains(from), "the demo profile has no {from:?}");
            let message = err(&DEMO.replacen(from, to, 1));
            assert!(
                message.contains(expected),
                "{to:?}: {message:?} does not say {expected:?}"
            );
        }
    }

    #[test]
    fn a_missing_translation_is_named() {
        let message = err(&DEMO.replacen(
            "languages = [\"es\", \"en\", \"pt\"]",
            "languages = [\"es\", \"en\", \"pt\", \"fr\"]",
            1,
        ));
        assert!(message.contains("needs a text for \"fr\""), "{message}");
    }

    #[test]
    fn a_bad_regex_is_named() {
        let message = err(&DEMO.replacen("id_pattern = ", "id_pattern = \"([\" # ", 1));
        assert!(message.contains("customers.id_pattern"), "{message}");
    }

    #[test]
    fn a_missing_file_is_a_config_error() {
        match Profile::load(Path::new("/nonexistent/agent.toml")) {
            Err(Error::Config(m)) => assert!(m.contains("/nonexistent/agent.toml")),
            other => panic!("{other:?}"),
        }
    }
}
