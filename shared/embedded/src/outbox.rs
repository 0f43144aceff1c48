//! The local stand-in for the Graph API when no access token is configured:
//! every send becomes one JSON line in `{dir}/outbox.jsonl`, is kept in
//! memory for the local chat, and is echoed to stderr.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use domain::error::{Error, Result};
use domain::ports::{Clock, MessageSender, SystemClock};
use domain::whatsapp::errors::GraphErrorClass;
use domain::whatsapp::outbound::OutboundMessage;
use domain::UserId;
use runtime::observability;

const SERVICE: &str = "outbox";
const FILE_NAME: &str = "outbox.jsonl";
/// Entries kept in memory for the chat; older ones stay in the file only.
const KEEP_IN_MEMORY: usize = 100_000;
/// The longest text echoed to stderr.
const ECHO_CHARS: usize = 200;
/// The Graph API's "invalid parameter": what an invalid message would get.
const INVALID_PARAMETER: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OutboxKind {
    /// A message sent to a user.
    #[default]
    Message,
    /// A user message marked read (`wamid` is that message's id).
    Read,
}

/// One line of the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub seq: u64,
    #[serde(default)]
    pub kind: OutboxKind,
    pub at_ms: i64,
    pub phone_number_id: String,
    /// The user's `wa_id`; `None` for read marks (the Graph API call does
    /// not name the user either).
    pub to: Option<String>,
    pub reply_to: Option<String>,
    pub message: Option<OutboundMessage>,
    /// The synthetic wamid given to a message, or the wamid marked read.
    pub wamid: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub typing: bool,
}

struct Inner {
    file: File,
    last_seq: u64,
    entries: VecDeque<OutboxEntry>,
}

/// The outbox sender. Share it behind an `Arc`.
pub struct Outbox {
    path: PathBuf,
    inner: Mutex<Inner>,
    notify: Notify,
    echo: bool,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn io_error(context: String, e: std::io::Error) -> Error {
    Error::dependency(SERVICE, context, true, e)
}

impl Outbox {
    /// Opens `{dir}/outbox.jsonl` (creating both if needed) and reloads what
    /// it holds, so sequence numbers carry on.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
        let path = dir.join(FILE_NAME);
        let ctx = |what: &str| format!("{what} {}", path.display());
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| io_error(ctx("opening"), e))?;
        let mut entries = VecDeque::new();
        let mut last_seq = 0;
        for (n, line) in BufReader::new(&file).lines().enumerate() {
            let line = line.map_err(|e| io_error(ctx("reading"), e))?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<OutboxEntry>(&line) {
                Ok(entry) => {
                    last_seq = last_seq.max(entry.seq);
                    entries.push_back(entry);
                    if entries.len() > KEEP_IN_MEMORY {
                        entries.pop_front();
                    }
                }
                // A torn last line (killed mid-write) or a hand edit: skip it.
                Err(e) => tracing::warn!(line = n + 1, error = %e, "skipping an outbox line"),
            }
        }
        // A line torn by a kill has no newline: end it, so the next entry
        // starts on a line of its own.
        let len = file
            .seek(SeekFrom::End(0))
            .map_err(|e| io_error(ctx("seeking"), e))?;
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(|e| io_error(ctx("reading"), e))?;
            if last[0] != b'\n' {
                file.write_all(b"\n")
                    .map_err(|e| io_error(ctx("writing"), e))?;
            }
        }
        entries.make_contiguous().sort_by_key(|e| e.seq);
        Ok(Outbox {
            path,
            inner: Mutex::new(Inner {
                file,
                last_seq,
                entries,
            }),
            notify: Notify::new(),
            echo: true,
        })
    }

    /// Whether each message is echoed to stderr (on by default).
    pub fn with_echo(mut self, echo: bool) -> Self {
        self.echo = echo;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Appends are whole lines written under the lock: a panic elsewhere
        // leaves nothing half-done.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The highest sequence number so far (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// Entries for user `to` (messages sent to them) after `after_seq`,
    /// in order.
    pub fn since(&self, to: &str, after_seq: u64) -> Vec<OutboxEntry> {
        self.collect(after_seq, |e| e.to.as_deref() == Some(to))
    }

    /// Every entry after `after_seq` (messages and read marks), in order.
    pub fn all_since(&self, after_seq: u64) -> Vec<OutboxEntry> {
        self.collect(after_seq, |_| true)
    }

    fn collect(&self, after_seq: u64, keep: impl Fn(&OutboxEntry) -> bool) -> Vec<OutboxEntry> {
        let inner = self.lock();
        let start = inner.entries.partition_point(|e| e.seq <= after_seq);
        inner
            .entries
            .range(start..)
            .filter(|e| keep(e))
            .cloned()
            .collect()
    }

    /// Like [`Outbox::since`], but waits up to `timeout` for a first entry
    /// (a long poll). Empty when none came.
    pub async fn wait_since(
        &self,
        to: &str,
        after_seq: u64,
        timeout: Duration,
    ) -> Vec<OutboxEntry> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before looking, so an append in between is not missed.
            notified.as_mut().enable();
            let found = self.since(to, after_seq);
            if !found.is_empty() {
                return found;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Vec::new();
            }
        }
    }

    fn append(&self, mut entry: OutboxEntry) -> Result<OutboxEntry> {
        let mut inner = self.lock();
        entry.seq = inner.last_seq + 1;
        let mut line = serde_json::to_vec(&entry)?;
        line.push(b'\n');
        // One write of the whole line, in append mode: lines never interleave.
        inner
            .file
            .write_all(&line)
            .and_then(|_| inner.file.flush())
            .map_err(|e| io_error(format!("appending to {}", self.path.display()), e))?;
        inner.last_seq = entry.seq;
        inner.entries.push_back(entry.clone());
        if inner.entries.len() > KEEP_IN_MEMORY {
            inner.entries.pop_front();
        }
        drop(inner);
        self.notify.notify_waiters();
        Ok(entry)
    }
}

/// `→ 5491155551234: Hola ... [Menú | Horarios]`, the phone masked unless
/// content logging is on.
fn echo_line(to: &str, msg: &OutboundMessage) -> String {
    let summary = msg.summary().replace('\n', " ");
    let text = if summary.chars().count() > ECHO_CHARS {
        let head: String = summary.chars().take(ECHO_CHARS).collect();
        format!("{head}…")
    } else {
        summary
    };
    format!("→ {}: {text}", observability::phone(to))
}

#[async_trait]
impl MessageSender for Outbox {
    async fn send(
        &self,
        phone_number_id: &str,
        to: &UserId,
        msg: &OutboundMessage,
        reply_to: Option<&str>,
    ) -> Result<String> {
        // Refuse what the Graph API would refuse, so local runs find it too.
        msg.validate().map_err(|e| Error::Graph {
            code: INVALID_PARAMETER,
            message: e.to_string(),
            class: GraphErrorClass::from_code(INVALID_PARAMETER),
        })?;
        let wamid = format!("wamid.local.{}", uuid::Uuid::new_v4().simple());
        self.append(OutboxEntry {
            seq: 0,
            kind: OutboxKind::Message,
            at_ms: SystemClock.now_ms(),
            phone_number_id: phone_number_id.to_string(),
            to: Some(to.as_str().to_string()),
            reply_to: reply_to.map(str::to_string),
            message: Some(msg.clone()),
            wamid: wamid.clone(),
            typing: false,
        })?;
        if self.echo {
            eprintln!("{}", echo_line(to.as_str(), msg));
        }
        Ok(wamid)
    }

    async fn mark_read(&self, phone_number_id: &str, wamid: &str, typing: bool) -> Result<()> {
        self.append(OutboxEntry {
            seq: 0,
            kind: OutboxKind::Read,
            at_ms: SystemClock.now_ms(),
            phone_number_id: phone_number_id.to_string(),
            to: None,
            reply_to: None,
            message: None,
            wamid: wamid.to_string(),
            typing,
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::whatsapp::outbound::ReplyButton;
    use std::sync::Arc;

    fn wa(s: &str) -> UserId {
        UserId::parse(s).expect("valid")
    }

    fn text(s: &str) -> OutboundMessage {
        OutboundMessage::Text { body: s.into() }
    }

    #[tokio::test]
    async fn sends_are_lines_with_synthetic_wamids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path()).expect("open").with_echo(false);
        let to = wa("5491155551234");
        let id = outbox
            .send("pn1", &to, &text("Hola"), Some("wamid.IN"))
            .await
            .expect("send");
        assert!(id.starts_with("wamid.local."));
        outbox
            .mark_read("pn1", "wamid.IN", true)
            .await
            .expect("read");
        let raw = std::fs::read_to_string(outbox.path()).expect("file");
        let lines: Vec<serde_json::Value> = raw
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["seq"], 1);
        assert_eq!(lines[0]["kind"], "message");
        assert_eq!(lines[0]["to"], "5491155551234");
        assert_eq!(lines[0]["phone_number_id"], "pn1");
        assert_eq!(lines[0]["reply_to"], "wamid.IN");
        assert_eq!(lines[0]["wamid"], id.as_str());
        assert_eq!(lines[0]["message"]["kind"], "text");
        assert_eq!(lines[0]["message"]["body"], "Hola");
        assert!(lines[0]["at_ms"].as_i64().expect("at_ms") > 0);
        assert_eq!(lines[1]["seq"], 2);
        assert_eq!(lines[1]["kind"], "read");
        assert_eq!(lines[1]["wamid"], "wamid.IN");
        assert_eq!(lines[1]["typing"], true);
    }

    #[tokio::test]
    async fn since_filters_by_user_and_sequence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path()).expect("open").with_echo(false);
        let (a, b) = (wa("5491155551234"), wa("15551234567"));
        outbox
            .send("pn", &a, &text("a1"), None)
            .await
            .expect("send");
        outbox
            .send("pn", &b, &text("b1"), None)
            .await
            .expect("send");
        outbox
            .mark_read("pn", "wamid.X", false)
            .await
            .expect("read");
        outbox
            .send("pn", &a, &text("a2"), None)
            .await
            .expect("send");
        let all_a = outbox.since(a.as_str(), 0);
        assert_eq!(all_a.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 4]);
        assert_eq!(all_a[1].message, Some(text("a2")));
        assert_eq!(outbox.since(a.as_str(), 1).len(), 1);
        assert!(outbox.since(a.as_str(), 4).is_empty());
        assert_eq!(outbox.since(b.as_str(), 0).len(), 1);
        assert_eq!(outbox.all_since(2).len(), 2);
        assert_eq!(outbox.last_seq(), 4);
    }

    #[tokio::test]
    async fn reopening_carries_the_sequence_on_past_a_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let to = wa("5491155551234");
        {
            let outbox = Outbox::open(dir.path()).expect("open").with_echo(false);
            outbox
                .send("pn", &to, &text("uno"), None)
                .await
                .expect("send");
            outbox
                .send("pn", &to, &text("dos"), None)
                .await
                .expect("send");
        }
        // Killed in the middle of a third line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE_NAME))
            .expect("open");
        f.write_all(br#"{"seq":3,"kind":"mess"#).expect("write");
        drop(f);
        let outbox = Outbox::open(dir.path()).expect("reopen").with_echo(false);
        assert_eq!(outbox.last_seq(), 2);
        outbox
            .send("pn", &to, &text("tres"), None)
            .await
            .expect("send");
        let entries = outbox.since(to.as_str(), 0);
        assert_eq!(
            entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        // The new line is whole and parses after another reopen.
        drop(outbox);
        let outbox = Outbox::open(dir.path()).expect("reopen").with_echo(false);
        assert_eq!(outbox.since(to.as_str(), 2)[0].message, Some(text("tres")));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wait_since_returns_when_a_message_arrives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Arc::new(Outbox::open(dir.path()).expect("open").with_echo(false));
        let to = wa("5491155551234");
        let waiter = {
            let outbox = Arc::clone(&outbox);
            let to = to.clone();
            tokio::spawn(async move {
                outbox
                    .wait_since(to.as_str(), 0, Duration::from_secs(10))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        // Someone else's message does not end the wait.
        outbox
            .send("pn", &wa("15551234567"), &text("x"), None)
            .await
            .expect("send");
        outbox
            .send("pn", &to, &text("hola"), None)
            .await
            .expect("send");
        let got = tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("woke")
            .expect("task");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].seq, 2);
        let none = outbox
            .wait_since(to.as_str(), 2, Duration::from_millis(30))
            .await;
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn invalid_messages_are_refused_like_the_graph_api_would() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path()).expect("open").with_echo(false);
        let err = outbox
            .send("pn", &wa("5491155551234"), &text(&"x".repeat(5000)), None)
            .await
            .expect_err("too long");
        assert!(matches!(
            err,
            Error::Graph {
                code: 100,
                class: GraphErrorClass::Final,
                ..
            }
        ));
        assert_eq!(outbox.last_seq(), 0);
    }

    #[test]
    fn echo_is_readable_and_masks_the_phone() {
        let msg = OutboundMessage::Buttons {
            body: "Hola".into(),
            buttons: vec![
                ReplyButton {
                    id: "m".into(),
                    title: "Menú".into(),
                },
                ReplyButton {
                    id: "h".into(),
                    title: "Horarios".into(),
                },
            ],
            footer: None,
        };
        let line = echo_line("5491155551234", &msg);
        if observability::log_content() {
            assert_eq!(line, "→ 5491155551234: Hola [Menú | Horarios]");
        } else {
            assert_eq!(line, "→ *********1234: Hola [Menú | Horarios]");
        }
        let long = echo_line("5491155551234", &text(&"a".repeat(300)));
        assert!(long.ends_with('…'));
    }
}
