//! In-memory adapters for handler tests and benchmarks.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use domain::error::{Error, Result};
use domain::identity::IdentityLinks;
use domain::ports::{AgentRecords, ArchiveKind, Clock, PayloadArchive, Queue, QueueMessage};
use domain::*;

/// Keeps what was sent, in order.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<QueueMessage>>,
}

impl MemoryQueue {
    pub fn messages(&self) -> Vec<QueueMessage> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, msg: &QueueMessage) -> Result<()> {
        if let Ok(mut v) = self.sent.lock() {
            v.push(msg.clone());
        }
        Ok(())
    }
}

/// Keeps archived payloads.
#[derive(Debug, Default)]
pub struct MemoryArchive {
    pub items: Mutex<Vec<(ArchiveKind, Vec<u8>, String)>>,
}

impl MemoryArchive {
    pub fn kinds(&self) -> Vec<ArchiveKind> {
        self.items
            .lock()
            .map(|v| v.iter().map(|(k, _, _)| *k).collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl PayloadArchive for MemoryArchive {
    async fn put(&self, kind: ArchiveKind, body: &[u8], reason: &str) -> Result<String> {
        let mut v = self
            .items
            .lock()
            .map_err(|_| domain::Error::Conflict("archive lock poisoned".into()))?;
        v.push((kind, body.to_vec(), reason.to_string()));
        Ok(format!("{}/{}", kind.prefix(), v.len()))
    }
}

/// [`IdentityLinks`] in memory (the identity contract runs on it).
#[derive(Debug, Default)]
pub struct MemoryIdentities {
    links: Mutex<HashMap<UserId, UserId>>,
    phones: Mutex<HashMap<UserId, UserId>>,
}

fn locked<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| Error::Conflict("identity lock poisoned".into()))
}

#[async_trait]
impl IdentityLinks for MemoryIdentities {
    async fn link_of(&self, id: &UserId) -> Result<Option<UserId>> {
        Ok(locked(&self.links)?.get(id).cloned())
    }

    async fn link_if_absent(&self, id: &UserId, user: &UserId, _at_ms: i64) -> Result<UserId> {
        Ok(locked(&self.links)?
            .entry(id.clone())
            .or_insert_with(|| user.clone())
            .clone())
    }

    async fn relink(&self, id: &UserId, user: &UserId, _at_ms: i64) -> Result<()> {
        locked(&self.links)?.insert(id.clone(), user.clone());
        Ok(())
    }

    async fn phone_of(&self, user: &UserId) -> Result<Option<UserId>> {
        Ok(locked(&self.phones)?.get(user).cloned())
    }

    async fn set_phone(&self, user: &UserId, phone: &UserId, _at_ms: i64) -> Result<()> {
        locked(&self.phones)?.insert(user.clone(), phone.clone());
        Ok(())
    }
}

/// A clock that only moves when told.
#[derive(Debug, Default)]
pub struct FixedClock(pub AtomicI64);

impl FixedClock {
    pub fn at(ms: i64) -> Self {
        FixedClock(AtomicI64::new(ms))
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// [`AgentRecords`] in memory, with the same semantics as the real stores
/// (the records contract runs on it). It keeps no conversations, only their
/// states: seed one with [`MemoryRecords::with_state`] or
/// [`MemoryRecords::user_writes`]. As in the real stores, `set_state` on a
/// conversation it does not know is `Error::NotFound`.
#[derive(Debug, Default)]
pub struct MemoryRecords {
    inner: Mutex<Records>,
}

#[derive(Debug, Default)]
struct Records {
    /// By `(wa_id, id)`, in the order saved.
    leads: Vec<Lead>,
    /// By slot start.
    appointments: BTreeMap<i64, Appointment>,
    call_requests: Vec<CallRequest>,
    states: HashMap<UserId, ConversationState>,
    memory: HashMap<UserId, Memory>,
    usage: Vec<TurnUsage>,
}

/// Oldest first, ties by id, as the stores list them.
fn by_time<T>(items: &mut [T], key: impl Fn(&T) -> (i64, String)) {
    items.sort_by_key(key);
}

impl MemoryRecords {
    pub fn new() -> Self {
        Self::default()
    }

    /// With `wa_id`'s conversation in `state`.
    pub fn with_state(self, user_id: &UserId, state: ConversationState) -> Self {
        self.lock().states.insert(user_id.clone(), state);
        self
    }

    /// What a user message does to the conversation's state: starts it as
    /// `bot` if new, leaves it as it is otherwise.
    pub fn user_writes(&self, user_id: &UserId) {
        self.lock().states.entry(user_id.clone()).or_default();
    }

    /// The conversation's state; `None` when it is not known.
    pub fn state(&self, user_id: &UserId) -> Option<ConversationState> {
        self.lock().states.get(user_id).copied()
    }

    /// The usage recorded for `wa_id`'s turns, oldest first.
    pub fn usage(&self, user_id: &UserId) -> Vec<TurnUsage> {
        let mut usage: Vec<TurnUsage> = self
            .lock()
            .usage
            .iter()
            .filter(|u| &u.user_id == user_id)
            .cloned()
            .collect();
        by_time(&mut usage, |u| (u.at_ms, u.turn_id.clone()));
        usage
    }

    /// Every call holds the lock without panicking, so a poisoned lock
    /// still holds consistent data.
    fn lock(&self) -> MutexGuard<'_, Records> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl AgentRecords for MemoryRecords {
    async fn save_lead(&self, lead: &Lead) -> Result<bool> {
        let mut r = self.lock();
        if r.leads
            .iter()
            .any(|l| l.user_id == lead.user_id && l.id == lead.id)
        {
            return Ok(false);
        }
        r.leads.push(lead.clone());
        Ok(true)
    }

    async fn leads(&self, user_id: &UserId) -> Result<Vec<Lead>> {
        let mut leads: Vec<Lead> = self
            .lock()
            .leads
            .iter()
            .filter(|l| &l.user_id == user_id)
            .cloned()
            .collect();
        by_time(&mut leads, |l| (l.created_at_ms, l.id.clone()));
        Ok(leads)
    }

    async fn book(&self, appointment: &Appointment) -> Result<BookOutcome> {
        let mut r = self.lock();
        Ok(match r.appointments.get(&appointment.start_ms) {
            Some(held) if held.id == appointment.id => BookOutcome::AlreadyBooked,
            Some(_) => BookOutcome::Taken,
            None => {
                r.appointments
                    .insert(appointment.start_ms, appointment.clone());
                BookOutcome::Booked
            }
        })
    }

    async fn appointments_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Appointment>> {
        if from_ms >= to_ms {
            return Ok(Vec::new());
        }
        Ok(self
            .lock()
            .appointments
            .range(from_ms..to_ms)
            .map(|(_, a)| a.clone())
            .collect())
    }

    async fn save_call_request(&self, request: &CallRequest) -> Result<bool> {
        let mut r = self.lock();
        if r.call_requests
            .iter()
            .any(|c| c.user_id == request.user_id && c.id == request.id)
        {
            return Ok(false);
        }
        r.call_requests.push(request.clone());
        Ok(true)
    }

    async fn call_requests(&self, user_id: &UserId) -> Result<Vec<CallRequest>> {
        let mut requests: Vec<CallRequest> = self
            .lock()
            .call_requests
            .iter()
            .filter(|c| &c.user_id == user_id)
            .cloned()
            .collect();
        by_time(&mut requests, |c| (c.created_at_ms, c.id.clone()));
        Ok(requests)
    }

    async fn set_state(
        &self,
        user_id: &UserId,
        from: ConversationState,
        to: ConversationState,
    ) -> Result<bool> {
        let mut r = self.lock();
        let state = r.states.get_mut(user_id).ok_or_else(|| {
            Error::NotFound(format!("conversation of {}", mask(user_id.as_str())))
        })?;
        if *state != from {
            return Ok(false);
        }
        *state = to;
        Ok(true)
    }

    async fn memory(&self, user_id: &UserId) -> Result<Memory> {
        Ok(self.lock().memory.get(user_id).cloned().unwrap_or_default())
    }

    async fn save_memory(&self, user_id: &UserId, memory: &Memory) -> Result<()> {
        self.lock().memory.insert(user_id.clone(), memory.clone());
        Ok(())
    }

    async fn record_usage(&self, usage: &TurnUsage) -> Result<()> {
        let mut r = self.lock();
        if !r
            .usage
            .iter()
            .any(|u| u.user_id == usage.user_id && u.turn_id == usage.turn_id)
        {
            r.usage.push(usage.clone());
        }
        Ok(())
    }
}

/// Usage in memory: every event kept, counters summed when read.
#[derive(Default)]
pub struct MemoryUsage {
    events: Mutex<Vec<usage::UsageEvent>>,
}

impl MemoryUsage {
    fn events(&self) -> MutexGuard<'_, Vec<usage::UsageEvent>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every event counted, in the order added.
    pub fn all(&self) -> Vec<usage::UsageEvent> {
        self.events().clone()
    }
}

#[async_trait]
impl ports::UsageLedger for MemoryUsage {
    async fn add(&self, event: &usage::UsageEvent) -> Result<()> {
        let mut events = self.events();
        if !events
            .iter()
            .any(|e| e.user_id == event.user_id && e.id == event.id)
        {
            events.push(event.clone());
        }
        Ok(())
    }

    async fn days(&self, from: &str, to: &str) -> Result<Vec<(String, usage::Counters)>> {
        let mut days: BTreeMap<String, (usage::Counters, Vec<UserId>)> = BTreeMap::new();
        for e in self.events().iter() {
            let day = e.day();
            if day.as_str() < from || day.as_str() > to {
                continue;
            }
            let (counters, users) = days.entry(day).or_default();
            usage::merge(counters, &e.counters);
            if !users.contains(&e.user_id) {
                users.push(e.user_id.clone());
                *counters
                    .entry(usage::key::CONVERSATIONS.to_string())
                    .or_default() += 1;
            }
        }
        Ok(days.into_iter().map(|(d, (c, _))| (d, c)).collect())
    }

    async fn conversation(&self, user_id: &UserId) -> Result<usage::Counters> {
        let mut counters = usage::Counters::new();
        for e in self.events().iter().filter(|e| &e.user_id == user_id) {
            usage::merge(&mut counters, &e.counters);
        }
        Ok(counters)
    }

    async fn log(&self, user_id: &UserId, from_ms: i64, to_ms: i64) -> Result<Vec<usage::TurnLog>> {
        let mut log: Vec<usage::TurnLog> = self
            .events()
            .iter()
            .filter(|e| &e.user_id == user_id && e.at_ms >= from_ms && e.at_ms <= to_ms)
            .filter_map(|e| e.log.clone())
            .collect();
        log.sort_by_key(|l| l.at_ms);
        Ok(log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records_contract;

    #[tokio::test]
    async fn memory_identities_keep_the_identity_contract() {
        crate::identity_contract::run_all(&MemoryIdentities::default()).await;
    }

    #[tokio::test]
    async fn memory_usage_keeps_the_usage_contract() {
        crate::usage_contract::run_all(&MemoryUsage::default()).await;
    }

    #[tokio::test]
    async fn memory_records_keep_the_records_contract() {
        records_contract::run_all(&MemoryRecords::new()).await;
    }

    #[tokio::test]
    async fn a_seeded_state_can_be_handed_off() {
        let wa = UserId::parse("5491155551234").expect("valid");
        let records = MemoryRecords::new().with_state(&wa, ConversationState::Human);
        assert!(records
            .set_state(&wa, ConversationState::Human, ConversationState::Bot)
            .await
            .expect("set"));
        assert_eq!(records.state(&wa), Some(ConversationState::Bot));
    }
}
