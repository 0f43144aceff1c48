//! The tool registry, shared by text now and voice calls later. Each tool
//! has a fixed name, a JSON schema the model sees, arguments validated here
//! (never trusted from the model), a timeout, and ports behind it.
//!
//! What a tool records is keyed by the turn (`{turn_id}:lead`, ...), so a
//! turn retried after a crash records nothing twice. Tools act only on the
//! conversation they run in: the user's own leads, bookings and calls; the
//! only way to another record is `lookup_customer` with an exact id.

use std::sync::Arc;
use std::time::Duration;

use domain::ports::{
    AgentRecords, Clock, CustomerDirectory, KnowledgeBase, LeadSink, Queue, QueueMessage,
};
use domain::Result;
use domain::*;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::profile::Profile;
use crate::schedule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ToolName {
    KbSearch,
    LookupCustomer,
    CreateLead,
    BookAppointment,
    RequestCall,
    HandoffToHuman,
}

impl ToolName {
    pub const ALL: [ToolName; 6] = [
        ToolName::KbSearch,
        ToolName::LookupCustomer,
        ToolName::CreateLead,
        ToolName::BookAppointment,
        ToolName::RequestCall,
        ToolName::HandoffToHuman,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ToolName::KbSearch => "kb_search",
            ToolName::LookupCustomer => "lookup_customer",
            ToolName::CreateLead => "create_lead",
            ToolName::BookAppointment => "book_appointment",
            ToolName::RequestCall => "request_call",
            ToolName::HandoffToHuman => "handoff_to_human",
        }
    }

    pub fn parse(s: &str) -> Option<ToolName> {
        ToolName::ALL.into_iter().find(|t| t.as_str() == s)
    }

    fn description(self) -> &'static str {
        match self {
            ToolName::KbSearch => "Search the business's knowledge base (plans, prices, hours, policies). Returns passages with their source. Use it before stating any fact about the business.",
            ToolName::LookupCustomer => "Look up the customer by the national ID or account number THEY gave for themselves. Returns their account data, or found=false.",
            ToolName::CreateLead => "Record a sales lead for this user: their name and what they are interested in.",
            ToolName::BookAppointment => "Book an appointment for this user at a local date and time (YYYY-MM-DDTHH:MM, the business's time zone) within business hours. Returns the confirmed time, or the free slots nearby when it is not possible.",
            ToolName::RequestCall => "Ask for a phone call to this user (they want to talk). Optionally when (YYYY-MM-DDTHH:MM, business time zone). Returns when to expect it. A user who writes by username may have no number on record: then it answers needs_number, and you ask them for the number to call and pass it as phone.",
            ToolName::HandoffToHuman => "Hand this conversation to a human agent. The bot stops answering it. Use when the user asks for a person, is upset, or you cannot help.",
        }
    }

    fn schema(self) -> Value {
        let s = |max: usize, what: &str| json!({"type": "string", "minLength": 1, "maxLength": max, "description": what});
        let (props, required): (Value, &[&str]) = match self {
            ToolName::KbSearch => (
                json!({"query": s(300, "what to look for, in the user's words")}),
                &["query"],
            ),
            ToolName::LookupCustomer => (
                json!({"id": s(32, "the national ID or account number, as the user wrote it")}),
                &["id"],
            ),
            ToolName::CreateLead => (
                json!({
                    "name": s(100, "the user's name"),
                    "interest": s(300, "what they want"),
                    "notes": s(1000, "anything else worth knowing"),
                }),
                &["name", "interest"],
            ),
            ToolName::BookAppointment => (
                json!({
                    "datetime": s(25, "local date and time, YYYY-MM-DDTHH:MM"),
                    "topic": s(200, "what the appointment is about"),
                }),
                &["datetime", "topic"],
            ),
            ToolName::RequestCall => (
                json!({
                    "reason": s(300, "why the user wants a call"),
                    "when": s(25, "optional local date and time, YYYY-MM-DDTHH:MM"),
                    "phone": s(25, "optional number the user gave to be called on, with the country code (+5491155551234)"),
                }),
                &["reason"],
            ),
            ToolName::HandoffToHuman => (
                json!({"reason": s(300, "why a person should take over")}),
                &["reason"],
            ),
        };
        json!({
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": false,
        })
    }

    pub fn spec(self) -> ToolSpec {
        ToolSpec {
            name: self.as_str().to_string(),
            description: self.description().to_string(),
            input_schema: self.schema(),
        }
    }
}

/// What a tool call came to, for the model and for the agent.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolOutcome {
    /// The tool ran; its answer (JSON) goes back to the model.
    Done(Value),
    /// The arguments or the request were refused; the reason goes back to
    /// the model, which may try again or tell the user.
    Refused(String),
}

/// The ports the tools stand on. Missing optional ports switch their tools
/// off (the model is not offered them).
#[derive(Clone)]
pub struct ToolDeps {
    pub knowledge: Option<Arc<dyn KnowledgeBase>>,
    pub customers: Option<Arc<dyn CustomerDirectory>>,
    pub lead_sink: Option<Arc<dyn LeadSink>>,
    pub records: Arc<dyn AgentRecords>,
    pub call_queue: Arc<dyn Queue>,
    pub escalation_queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
}

/// The turn a tool runs in. Identity comes from here, never from the
/// model's arguments.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub turn_id: String,
    pub user_id: UserId,
    pub phone_number_id: String,
    /// The number the user can be called on: the user id when it is one,
    /// else the number they shared; `None` for a user known only by
    /// username.
    pub phone: Option<UserId>,
    pub language: String,
    /// Where a handoff or call request came from: `playbook` or `model`.
    pub source: &'static str,
}

/// What the tools did in one turn (bounds and effects the agent reports).
#[derive(Debug, Clone, Default)]
pub struct TurnEffects {
    pub looked_up: Vec<String>,
    /// The tools called, in order (for the metrics).
    pub tools: Vec<&'static str>,
    /// The same calls with their arguments (for `local eval`'s checks).
    pub tool_args: Vec<(&'static str, Value)>,
    pub handed_off: bool,
    pub call_requested: bool,
    pub calls: u32,
    /// The answer was the fallback: the agent did not understand.
    pub fallback: bool,
    /// The playbook intent the turn matched.
    pub intent: Option<String>,
}

/// The tools a profile turns on, with their ports.
#[derive(Clone)]
pub struct Registry {
    profile: Arc<Profile>,
    deps: ToolDeps,
    enabled: Vec<ToolName>,
}

impl Registry {
    pub fn new(profile: Arc<Profile>, deps: ToolDeps) -> Registry {
        let enabled = profile
            .tools
            .iter()
            .copied()
            .filter(|t| match t {
                ToolName::KbSearch => deps.knowledge.is_some(),
                ToolName::LookupCustomer => deps.customers.is_some(),
                _ => true,
            })
            .collect();
        Registry {
            profile,
            deps,
            enabled,
        }
    }

    pub fn enabled(&self, tool: ToolName) -> bool {
        self.enabled.contains(&tool)
    }

    pub fn specs(&self) -> Vec<ToolSpec> {
        self.enabled.iter().map(|t| t.spec()).collect()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.deps.clock
    }

    pub fn records(&self) -> &Arc<dyn AgentRecords> {
        &self.deps.records
    }

    /// Runs the tool `name` with the model's `args`: unknown or disabled
    /// tools and bad arguments are refused; a tool that takes longer than
    /// the profile allows is refused as timed out. Errors are faults of
    /// the ports (the turn fails and is retried, its writes idempotent).
    pub async fn call(
        &self,
        ctx: &ToolContext,
        effects: &mut TurnEffects,
        name: &str,
        args: &Value,
    ) -> Result<ToolOutcome> {
        let Some(tool) = ToolName::parse(name).filter(|t| self.enabled(*t)) else {
            return Ok(ToolOutcome::Refused(format!(
                "there is no tool named {name:?}; the tools are: {}",
                self.enabled
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        effects.calls += 1;
        effects.tools.push(tool.as_str());
        effects.tool_args.push((tool.as_str(), args.clone()));
        let limit = Duration::from_millis(self.profile.model.tool_timeout_ms);
        let run = async {
            match tool {
                ToolName::KbSearch => self.kb_search(args).await,
                ToolName::LookupCustomer => self.lookup_customer(ctx, effects, args).await,
                ToolName::CreateLead => self.create_lead(ctx, args).await,
                ToolName::BookAppointment => self.book_appointment(ctx, args).await,
                ToolName::RequestCall => self.request_call(ctx, effects, args).await,
                ToolName::HandoffToHuman => self.handoff(ctx, effects, args).await,
            }
        };
        match tokio::time::timeout(limit, run).await {
            Ok(outcome) => outcome,
            Err(_) => Ok(ToolOutcome::Refused(format!(
                "{} did not answer within {} ms; tell the user it is not available right now",
                tool.as_str(),
                limit.as_millis()
            ))),
        }
    }

    async fn kb_search(&self, args: &Value) -> Result<ToolOutcome> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            query: String,
        }
        let a: Args = match parse_args(args) {
            Ok(a) => a,
            Err(refused) => return Ok(refused),
        };
        if let Some(r) = check_len("query", &a.query, 300) {
            return Ok(r);
        }
        let Some(kb) = &self.deps.knowledge else {
            return Ok(ToolOutcome::Refused("no knowledge base".into()));
        };
        // Five: the passages of one topic in each of the profile's languages
        // fit, so the one in the user's language is among them.
        let passages = kb.search(&a.query, 5).await?;
        Ok(ToolOutcome::Done(json!({
            "passages": passages.iter().map(|p| json!({"text": p.text, "source": p.source})).collect::<Vec<_>>(),
        })))
    }

    /// Normalises a customer id as users write it (`12.345.678`).
    /// The id as the profile's `id_pattern` writes it (see
    /// [`crate::playbook::normalised_id`]).
    pub fn normalise_customer_id(&self, id: &str) -> Option<String> {
        crate::playbook::normalised_id(&self.profile.customer_id, id)
    }

    async fn lookup_customer(
        &self,
        ctx: &ToolContext,
        effects: &mut TurnEffects,
        args: &Value,
    ) -> Result<ToolOutcome> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            id: String,
        }
        let a: Args = match parse_args(args) {
            Ok(a) => a,
            Err(refused) => return Ok(refused),
        };
        let Some(id) = self.normalise_customer_id(&a.id) else {
            return Ok(ToolOutcome::Refused(
                "that is not a customer id: give exactly one id, as the user wrote it".into(),
            ));
        };
        // A user (or text pasted into the chat) cannot walk the customer
        // base: one turn looks up at most this many distinct ids.
        if !effects.looked_up.contains(&id) {
            if effects.looked_up.len() >= self.profile.customers.lookups_per_turn {
                return Ok(ToolOutcome::Refused(
                    "only the user's own record can be looked up, once per message".into(),
                ));
            }
            effects.looked_up.push(id.clone());
        }
        let Some(customers) = &self.deps.customers else {
            return Ok(ToolOutcome::Refused("no customer directory".into()));
        };
        Ok(ToolOutcome::Done(match customers.lookup(&id).await? {
            Some(c) if self.belongs_to(&c, &ctx.user_id) => {
                json!({"found": true, "customer": self.visible_fields(&c)})
            }
            // Someone else's record reads as no record: whether an id
            // exists is not given away either.
            Some(_) | None => json!({"found": false}),
        }))
    }

    /// With `customers.phone_field`, a record is shown only to the WhatsApp
    /// number on file (compared on the last 8 digits, which survive the
    /// ways numbers are written: `+54 9 11 ...`, `011 15 ...`).
    fn belongs_to(&self, customer: &Customer, user_id: &UserId) -> bool {
        let Some(field) = &self.profile.customers.phone_field else {
            return true;
        };
        let digits = |s: &str| -> String { s.chars().filter(char::is_ascii_digit).collect() };
        let on_file = digits(customer.fields.get(field).map(String::as_str).unwrap_or(""));
        let theirs = digits(user_id.as_str());
        let tail = |s: &str| s.get(s.len().saturating_sub(8)..).unwrap_or("").to_string();
        on_file.len() >= 8 && tail(&on_file) == tail(&theirs)
    }

    /// The fields the profile shows, in its order; all when it names none.
    pub fn visible_fields(&self, customer: &Customer) -> serde_json::Map<String, Value> {
        let wanted = &self.profile.customers.fields;
        let mut out = serde_json::Map::new();
        if wanted.is_empty() {
            for (k, v) in &customer.fields {
                out.insert(k.clone(), Value::String(v.clone()));
            }
        } else {
            for k in wanted {
                if let Some(v) = customer.fields.get(k) {
                    out.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
        out
    }

    async fn create_lead(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutcome> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            name: String,
            interest: String,
            #[serde(default)]
            notes: Option<String>,
        }
        let a: Args = match parse_args(args) {
            Ok(a) => a,
            Err(refused) => return Ok(refused),
        };
        for (field, value, max) in [("name", &a.name, 100), ("interest", &a.interest, 300)] {
            if let Some(r) = check_len(field, value, max) {
                return Ok(r);
            }
        }
        if let Some(notes) = &a.notes {
            if notes.chars().count() > 1000 {
                return Ok(ToolOutcome::Refused(
                    "notes: at most 1000 characters".into(),
                ));
            }
        }
        let lead = Lead {
            id: format!("{}:lead", ctx.turn_id),
            user_id: ctx.user_id.clone(),
            name: a.name.trim().to_string(),
            interest: a.interest.trim().to_string(),
            notes: a
                .notes
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty()),
            created_at_ms: self.deps.clock.now_ms(),
        };
        let new = self.deps.records.save_lead(&lead).await?;
        if let Some(sink) = &self.deps.lead_sink {
            // Idempotent at the CRM (the lead id travels as the key), so a
            // retried turn may send it again safely.
            sink.export(&lead).await?;
        }
        Ok(ToolOutcome::Done(
            json!({"saved": true, "new": new, "lead_id": lead.id}),
        ))
    }

    async fn book_appointment(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutcome> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            datetime: String,
            topic: String,
        }
        let a: Args = match parse_args(args) {
            Ok(a) => a,
            Err(refused) => return Ok(refused),
        };
        if let Some(r) = check_len("topic", &a.topic, 200) {
            return Ok(r);
        }
        let hours = &self.profile.hours;
        let now = self.deps.clock.now_ms();
        let start = match schedule::parse_local(&a.datetime, hours) {
            Ok(t) => t,
            Err(problem) => return Ok(ToolOutcome::Refused(problem)),
        };
        let booked = self
            .deps
            .records
            .appointments_between(now, now + hours.booking_days_ahead * 86_400_000)
            .await?;
        let taken: Vec<i64> = booked.iter().map(|b| b.start_ms).collect();
        let free_near = |from: i64| {
            schedule::free_slots(hours, from.max(now), 3, &taken)
                .into_iter()
                .map(|s| schedule::format_local(s, hours, &ctx.language))
                .collect::<Vec<_>>()
        };
        if let Err(problem) = schedule::check_slot(start, now, hours) {
            return Ok(ToolOutcome::Refused(format!(
                "{problem}; free slots: {}",
                free_near(start).join("; ")
            )));
        }
        let appointment = Appointment {
            id: format!("{}:appointment", ctx.turn_id),
            user_id: ctx.user_id.clone(),
            start_ms: start,
            end_ms: start + hours.slot_minutes * 60_000,
            topic: a.topic.trim().to_string(),
            created_at_ms: now,
        };
        match self.deps.records.book(&appointment).await? {
            BookOutcome::Booked | BookOutcome::AlreadyBooked => {
                let when = schedule::format_local(start, hours, &ctx.language);
                let user_tz = crate::timezone::for_user_id(&ctx.user_id);
                let theirs = match user_tz {
                    Some((name, tz)) if name != hours.time_zone_name => {
                        Some(schedule::format_in(start, &tz, &name, &ctx.language))
                    }
                    _ => None,
                };
                Ok(ToolOutcome::Done(json!({
                    "booked": true,
                    "when": when,
                    "when_for_the_user": theirs.unwrap_or_else(|| when.clone()),
                    "topic": appointment.topic,
                })))
            }
            BookOutcome::Taken => Ok(ToolOutcome::Refused(format!(
                "that slot was just taken; free slots: {}",
                free_near(start).join("; ")
            ))),
        }
    }

    async fn request_call(
        &self,
        ctx: &ToolContext,
        effects: &mut TurnEffects,
        args: &Value,
    ) -> Result<ToolOutcome> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            reason: String,
            #[serde(default)]
            when: Option<String>,
            #[serde(default)]
            phone: Option<String>,
        }
        let a: Args = match parse_args(args) {
            Ok(a) => a,
            Err(refused) => return Ok(refused),
        };
        if let Some(r) = check_len("reason", &a.reason, 300) {
            return Ok(r);
        }
        // A number typed in the chat is used for this call only: never
        // linked to the user (anyone can type anyone's number).
        let given = match a.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => match UserId::phone(&p.replace([' ', '-', '(', ')', '.'], "")) {
                Ok(p) => Some(p),
                Err(_) => {
                    return Ok(ToolOutcome::Refused(
                        "phone: not a number with its country code, like +5491155551234".into(),
                    ))
                }
            },
            None => None,
        };
        if given.is_none() && ctx.phone.is_none() {
            return Ok(ToolOutcome::Done(json!({
                "requested": false,
                "needs_number": true,
            })));
        }
        let phone = given.filter(|g| Some(g) != ctx.phone.as_ref());
        let hours = &self.profile.hours;
        let now = self.deps.clock.now_ms();
        let when_ms = match a.when.as_deref().map(str::trim).filter(|w| !w.is_empty()) {
            None => None,
            Some(w) => match schedule::parse_local(w, hours) {
                Ok(t) if t > now => Some(t),
                Ok(_) => None,
                Err(problem) => return Ok(ToolOutcome::Refused(problem)),
            },
        };
        // An AI call goes out in the calling hours, in the zone of the
        // number called (what call-trigger does); a person answers in the
        // business's hours (`handoff_to_human`).
        let at = when_ms.unwrap_or(now);
        let called = phone
            .as_ref()
            .or(ctx.phone.as_ref())
            .unwrap_or(&ctx.user_id);
        let zone = crate::timezone::for_user_id(called)
            .map_or_else(|| hours.time_zone.clone(), |(_, tz)| tz);
        let expected =
            match domain::voice::calling_window(at, self.profile.voice.calling_hours, &zone) {
                domain::voice::CallWindow::Now => at,
                domain::voice::CallWindow::At(t) => t,
            };
        let request = CallRequest {
            id: format!("{}:call", ctx.turn_id),
            user_id: ctx.user_id.clone(),
            phone_number_id: ctx.phone_number_id.clone(),
            reason: a.reason.trim().to_string(),
            when_ms: when_ms.or((expected != now).then_some(expected)),
            language: ctx.language.clone(),
            state: CallRequestState::Requested,
            created_at_ms: now,
            phone: phone.clone(),
            campaign: None,
        };
        self.deps.records.save_call_request(&request).await?;
        self.deps
            .call_queue
            .send(&QueueMessage {
                group_id: format!("{}:{}", ctx.phone_number_id, ctx.user_id),
                dedup_id: request.id.clone(),
                body: serde_json::to_string(&request)?,
            })
            .await?;
        effects.call_requested = true;
        let mut done = json!({
            "requested": true,
            "soon": expected <= now,
            "expected": schedule::format_local(expected, hours, &ctx.language),
        });
        if let Some(number) = phone.as_ref().and_then(UserId::e164) {
            done["number"] = json!(number);
        }
        Ok(ToolOutcome::Done(done))
    }

    async fn handoff(
        &self,
        ctx: &ToolContext,
        effects: &mut TurnEffects,
        args: &Value,
    ) -> Result<ToolOutcome> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            reason: String,
        }
        let a: Args = match parse_args(args) {
            Ok(a) => a,
            Err(refused) => return Ok(refused),
        };
        if let Some(r) = check_len("reason", &a.reason, 300) {
            return Ok(r);
        }
        let now = self.deps.clock.now_ms();
        // Queue first, then the state: if the state change failed after the
        // enqueue, the retry enqueues the same id (dropped as a duplicate);
        // the other way round, a crash could leave the bot silent with no
        // human told.
        let request = HandoffRequest {
            id: format!("{}:handoff", ctx.turn_id),
            user_id: ctx.user_id.clone(),
            phone_number_id: ctx.phone_number_id.clone(),
            reason: a.reason.trim().to_string(),
            source: ctx.source.to_string(),
            created_at_ms: now,
        };
        self.deps
            .escalation_queue
            .send(&QueueMessage {
                group_id: format!("{}:{}", ctx.phone_number_id, ctx.user_id),
                dedup_id: request.id.clone(),
                body: serde_json::to_string(&request)?,
            })
            .await?;
        self.deps
            .records
            .set_state(
                &ctx.user_id,
                ConversationState::Bot,
                ConversationState::PendingHuman,
            )
            .await?;
        effects.handed_off = true;
        let hours = &self.profile.hours;
        let open = schedule::is_open(now, hours);
        Ok(ToolOutcome::Done(json!({
            "handed_off": true,
            "open_now": open,
            "next_opening": (!open).then(|| schedule::next_opening(now, hours)
                .map(|t| schedule::format_local(t, hours, &ctx.language))).flatten(),
        })))
    }
}

fn parse_args<T: serde::de::DeserializeOwned>(args: &Value) -> std::result::Result<T, ToolOutcome> {
    serde_json::from_value(args.clone())
        .map_err(|e| ToolOutcome::Refused(format!("invalid arguments: {e}")))
}

fn check_len(field: &str, value: &str, max: usize) -> Option<ToolOutcome> {
    if value.trim().is_empty() {
        Some(ToolOutcome::Refused(format!("{field} must not be empty")))
    } else if value.chars().count() > max {
        Some(ToolOutcome::Refused(format!(
            "{field}: at most {max} characters"
        )))
    } else {
        None
    }
}
