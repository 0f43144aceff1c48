//! The intake journal: webhooks appended to a file before they are answered,
//! and applied into SQLite afterwards by one reader.
//!
//! Recording a webhook in SQLite before the 200 (several indexes, several
//! calls) held intake to a fraction of what one `write()` allows. An append
//! here is that one write, shared by every concurrent caller; once it is in
//! the page cache a process crash loses nothing, and a background fsync
//! bounds what a power cut may lose: the promise of SQLite's WAL with
//! `synchronous=NORMAL`.
//!
//! On disk, in one directory: segment files `{number:020}.log`, each a run of
//! records `[u32 body length][u32 crc32 of at_ms and body][i64 at_ms][body]`
//! (little endian), and `applied`: the position processed up to, with its
//! crc32. One [`Journal`] per directory at a time.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{oneshot, watch};

use domain::error::{Error, Result};

use crate::files::sync_dir;

const SERVICE: &str = "journal";

/// A record's length, checksum and time.
const HEADER: usize = 16;

/// A larger body is refused at append; in a file, a larger length is taken
/// for a torn header rather than read.
const MAX_BODY: usize = 16 << 20;

/// Appends written together at most: bounds the first caller's wait and the
/// group buffer.
const GROUP_ENTRIES: usize = 1024;
const GROUP_BYTES: usize = 4 << 20;

const READ_BUFFER: usize = 64 << 10;

const APPLIED_FILE: &str = "applied";
const LOCK_FILE: &str = "lock";
/// Segment, offset and the crc32 of both.
const APPLIED_LEN: usize = 20;

#[derive(Clone, Debug)]
pub struct JournalSettings {
    /// A new segment file is started past this size (default 64 MiB).
    pub segment_bytes: u64,
    /// Appends are refused (a retryable error: the handler answers 503 and
    /// Meta retries later) while more than this many bytes wait to be applied
    /// (default 1 GiB). Nothing accepted is ever dropped.
    pub max_backlog_bytes: u64,
    /// How often the active segment and the applied position are fsynced by
    /// a background thread (default 500 ms); a power cut may lose what came
    /// after the last sync, as with SQLite's WAL in NORMAL mode.
    pub sync_every: Duration,
    /// Appends are refused (retryable, as above) while the filesystem that
    /// holds the journal has less than this free (default 256 MiB): the
    /// room is left for the work behind the 200s (the store's writes),
    /// which cannot refuse as cleanly. Looked at every `sync_every`.
    pub min_free_bytes: u64,
}

impl Default for JournalSettings {
    fn default() -> Self {
        JournalSettings {
            segment_bytes: 64 << 20,
            max_backlog_bytes: 1 << 30,
            sync_every: Duration::from_millis(500),
            min_free_bytes: 256 << 20,
        }
    }
}

/// A place in the journal, just past an entry; ordered as the entries are.
/// Only the journal makes them (from [`Entry::end`]), so that a position
/// handed to [`Journal::applied`] is one that exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    segment: u64,
    offset: u64,
}

impl Position {
    const fn at(segment: u64, offset: u64) -> Self {
        Position { segment, offset }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub at_ms: i64,
    pub body: Bytes,
    /// Just past this entry: what to hand to [`Journal::applied`].
    pub end: Position,
}

/// What waits to be applied; bytes as written (with the record headers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub entries: u64,
    pub bytes: u64,
}

/// The journal of one directory. Clones share it; its threads end when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    max_backlog_bytes: u64,
    min_free_bytes: u64,
    /// Free bytes on the journal's filesystem, as last measured.
    free_bytes: Arc<AtomicU64>,
    appends: mpsc::Sender<Append>,
    state: Arc<Mutex<State>>,
    reader: tokio::sync::Mutex<Reader>,
    /// Written under the state's lock; synced by the sync thread.
    applied_file: Arc<File>,
    _syncer: Syncer,
    /// Held while the journal is open (see [`lock_dir`]).
    _lock: File,
}

struct State {
    backlog: Backlog,
    applied: Position,
    /// The end of the last entry the reader handed out.
    read_to: Position,
    /// The entries handed out and not applied yet: their ends and sizes, to
    /// take them off the backlog when they are.
    unapplied: VecDeque<(Position, u64)>,
}

struct Append {
    header: [u8; HEADER],
    body: Bytes,
    done: oneshot::Sender<Result<()>>,
}

impl Journal {
    /// Opens or creates the journal in `dir`: finds the segments, reads the
    /// applied position, and cuts off a torn tail of the last segment (a
    /// record half-written when the process died was never acknowledged).
    pub fn open(dir: &Path, settings: JournalSettings) -> Result<Self> {
        let ctx = |what: &str| format!("{what} the journal in {}", dir.display());
        let lock = lock_dir(dir)?;
        let Recovered {
            start,
            end,
            backlog,
        } = recover(dir).map_err(|e| io_error(ctx("recovering"), e))?;
        let applied_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(APPLIED_FILE))
            // What was read, set right (a missing or corrupt file, a moved start).
            .and_then(|file| write_applied(&file, start).map(|()| file))
            .map_err(|e| io_error(ctx("writing the applied position of"), e))?;
        let applied_file = Arc::new(applied_file);

        let file = OpenOptions::new()
            .write(true)
            .open(segment_path(dir, end.segment))
            .and_then(|mut file| file.seek(SeekFrom::Start(end.offset)).map(|_| file))
            .map_err(|e| io_error(ctx("opening the last segment of"), e))?;
        let file = Arc::new(file);
        let targets = Arc::new(Mutex::new(SyncTargets {
            active: file.clone(),
            retired: Vec::new(),
            dir_changed: true,
        }));
        let state = Arc::new(Mutex::new(State {
            backlog,
            applied: start,
            read_to: start,
            unapplied: VecDeque::new(),
        }));
        let (committed, committed_rx) = watch::channel(end);
        let writer = Writer {
            dir: dir.to_path_buf(),
            segment: end.segment,
            len: end.offset,
            file,
            segment_bytes: settings.segment_bytes,
            state: state.clone(),
            targets: targets.clone(),
            committed,
            buf: Vec::new(),
        };
        let (appends, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| Error::dependency(SERVICE, "writer thread", false, e))?;
        // A filesystem that cannot say its free space does not stop the
        // runner: the floor is then not applied.
        let free_bytes = Arc::new(AtomicU64::new(free_space(dir).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "journal: could not measure the free disk");
            u64::MAX
        })));
        let syncer = Syncer::start(
            dir.to_path_buf(),
            settings.sync_every,
            targets,
            applied_file.clone(),
            free_bytes.clone(),
        )?;
        Ok(Journal {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                max_backlog_bytes: settings.max_backlog_bytes,
                min_free_bytes: settings.min_free_bytes,
                free_bytes,
                appends,
                state,
                reader: tokio::sync::Mutex::new(Reader {
                    dir: dir.to_path_buf(),
                    committed: committed_rx,
                    cursor: start,
                    file: None,
                }),
                applied_file,
                _syncer: syncer,
                _lock: lock,
            }),
        })
    }

    /// Appends one entry; returns once it is written to the segment file.
    /// Concurrent appends are written together, in one write, by the
    /// journal's thread. Err (retryable) when the backlog is over
    /// `max_backlog_bytes`, the disk is short of `min_free_bytes`, or the
    /// write failed.
    pub async fn append(&self, at_ms: i64, body: Bytes) -> Result<()> {
        if body.len() > MAX_BODY {
            return Err(Error::Invalid(format!(
                "a journal entry of {} bytes (at most {MAX_BODY})",
                body.len()
            )));
        }
        let waiting = self.backlog().bytes;
        if waiting > self.inner.max_backlog_bytes {
            return Err(Error::dependency(
                SERVICE,
                "append",
                true,
                format!("{waiting} bytes wait to be applied"),
            ));
        }
        let free = self.free_bytes();
        if free < self.inner.min_free_bytes {
            return Err(Error::dependency(
                SERVICE,
                "append",
                true,
                format!(
                    "{} MiB free on the disk of {} (at least {} MiB are kept free)",
                    free >> 20,
                    self.inner.dir.display(),
                    self.inner.min_free_bytes >> 20
                ),
            ));
        }
        let (done, answer) = oneshot::channel();
        self.inner
            .appends
            .send(Append {
                header: header(at_ms, &body),
                body,
                done,
            })
            .map_err(|_| Error::dependency(SERVICE, "writer thread", false, "stopped"))?;
        answer.await.map_err(|_| {
            Error::dependency(
                SERVICE,
                "writer thread",
                true,
                "the append did not complete",
            )
        })?
    }

    /// The next entries after the reader's cursor, in append order, at most
    /// `max` of them (at least one); waits until there is one. Cancel-safe:
    /// the cursor only moves when entries are returned. Its reads hit the
    /// page cache (they are of what was just written), so they are made on
    /// the caller's thread.
    pub async fn next(&self, max: usize) -> Result<Vec<Entry>> {
        let mut reader = self.inner.reader.lock().await;
        loop {
            let end = *reader.committed.borrow_and_update();
            let read = match reader.read(end, max.max(1)) {
                Ok(read) => read,
                Err(e) => {
                    // Reopened at the cursor on the next call.
                    reader.file = None;
                    return Err(io_error(format!("reading {}", self.inner.dir.display()), e));
                }
            };
            if let Some((last, _)) = read.last() {
                let mut state = lock(&self.inner.state);
                state.read_to = last.end;
                state
                    .unapplied
                    .extend(read.iter().map(|(entry, size)| (entry.end, *size)));
                return Ok(read.into_iter().map(|(entry, _)| entry).collect());
            }
            reader
                .committed
                .changed()
                .await
                .map_err(|_| Error::dependency(SERVICE, "writer thread", false, "stopped"))?;
        }
    }

    /// Everything up to `upto` (an [`Entry::end`]) has been processed:
    /// persists the position and deletes the segment files before its
    /// segment. Err if `upto` is past what [`Journal::next`] returned.
    pub fn applied(&self, upto: Position) -> Result<()> {
        let before = {
            let mut state = lock(&self.inner.state);
            if upto <= state.applied {
                return Ok(());
            }
            if upto > state.read_to {
                return Err(Error::dependency(
                    SERVICE,
                    "applied",
                    false,
                    format!("{upto:?} is past what was read, {:?}", state.read_to),
                ));
            }
            write_applied(&self.inner.applied_file, upto)
                .map_err(|e| io_error("writing the applied position".into(), e))?;
            while let Some((end, size)) = state.unapplied.front().copied() {
                if end > upto {
                    break;
                }
                state.unapplied.pop_front();
                state.backlog.entries = state.backlog.entries.saturating_sub(1);
                state.backlog.bytes = state.backlog.bytes.saturating_sub(size);
            }
            std::mem::replace(&mut state.applied, upto)
        };
        if upto.segment > before.segment {
            remove_segments_before(&self.inner.dir, upto.segment);
        }
        Ok(())
    }

    /// What waits to be applied (appended but not yet marked applied).
    pub fn backlog(&self) -> Backlog {
        lock(&self.inner.state).backlog
    }

    /// Free bytes on the journal's filesystem, as last measured (every
    /// `sync_every`).
    pub fn free_bytes(&self) -> u64 {
        self.inner.free_bytes.load(Ordering::Relaxed)
    }
}

/// Ingestion's intake in the one-process runner: the webhook is answered
/// once it is here.
#[async_trait::async_trait]
impl domain::ports::WebhookIntake for Journal {
    async fn keep(&self, received_at_ms: i64, body: Bytes) -> Result<()> {
        self.append(received_at_ms, body).await
    }
}

/// What [`recover`] found.
struct Recovered {
    /// The first entry not applied.
    start: Position,
    /// The end of the last whole record.
    end: Position,
    backlog: Backlog,
}

/// Finds where to start reading and where to append, and counts what waits
/// in between. Every segment left to apply is read through once: the count,
/// the exact start (a record's end) and the torn tail of the last come from
/// that one pass.
/// Takes the directory for this journal alone (an advisory lock on a file
/// in it, let go when the journal is dropped or the process dies): a second
/// runner on the same data dir would write over the first one's segments.
fn lock_dir(dir: &Path) -> Result<File> {
    let ctx = |e| io_error(format!("locking the journal in {}", dir.display()), e);
    fs::create_dir_all(dir).map_err(ctx)?;
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(ctx)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::Config(format!(
            "the journal in {} is in use by another Charla: one runner per data dir",
            dir.display()
        ))),
        Err(e) => Err(ctx(e.into())),
    }
}

fn recover(dir: &Path) -> io::Result<Recovered> {
    fs::create_dir_all(dir)?;
    let mut segments = list_segments(dir)?;
    let recorded = read_applied(dir, !segments.is_empty());
    if segments.is_empty() {
        File::create(segment_path(dir, 1))?;
        segments.push(1);
    }
    let last = segments[segments.len() - 1];
    let mut start = match recorded {
        None => Position::at(segments[0], 0),
        Some(p) => match segments.iter().find(|s| **s >= p.segment) {
            Some(s) if *s == p.segment => p,
            // Its segment was deleted: all before the next one was applied.
            Some(s) => Position::at(*s, 0),
            // Past the last segment: from its end, as the scan finds it.
            None => Position::at(last, u64::MAX),
        },
    };
    let (mut end, mut backlog) = (start, Backlog::default());
    for &segment in segments.iter().filter(|s| **s >= start.segment) {
        let path = segment_path(dir, segment);
        let from = if segment == start.segment {
            start.offset
        } else {
            0
        };
        let scan = scan(&path, from)?;
        if segment == start.segment && scan.from != from {
            let why = "the applied position was not at a record's end";
            tracing::warn!(
                segment,
                recorded = from,
                from = scan.from,
                why,
                "journal: reading from the record before it"
            );
            start.offset = scan.from;
        }
        backlog.entries += scan.entries;
        backlog.bytes += scan.bytes;
        end = Position::at(segment, scan.end);
        let Some(why) = scan.bad else { continue };
        let cut = scan.len.saturating_sub(scan.end);
        if segment == last {
            // Never acknowledged: its write was cut short by the crash.
            OpenOptions::new()
                .write(true)
                .open(&path)?
                .set_len(scan.end)?;
            tracing::warn!(
                segment,
                at = scan.end,
                cut,
                why,
                "journal: cut off a torn tail"
            );
        } else {
            tracing::error!(
                segment,
                at = scan.end,
                skipped = cut,
                why,
                "journal: corrupt record; the rest of this segment is skipped"
            );
        }
    }
    remove_segments_before(dir, start.segment);
    Ok(Recovered {
        start,
        end,
        backlog,
    })
}

/// Owns the active segment: writes each group of appends in one write,
/// starts a new segment past `segment_bytes`, and publishes the end of what
/// is written for the reader.
struct Writer {
    dir: PathBuf,
    segment: u64,
    len: u64,
    file: Arc<File>,
    segment_bytes: u64,
    state: Arc<Mutex<State>>,
    targets: Arc<Mutex<SyncTargets>>,
    committed: watch::Sender<Position>,
    buf: Vec<u8>,
}

impl Writer {
    fn run(mut self, queue: mpsc::Receiver<Append>) {
        while let Ok(first) = queue.recv() {
            let mut bytes = HEADER + first.body.len();
            let mut group = vec![first];
            while group.len() < GROUP_ENTRIES && bytes < GROUP_BYTES {
                match queue.try_recv() {
                    Ok(append) => {
                        bytes += HEADER + append.body.len();
                        group.push(append);
                    }
                    Err(_) => break,
                }
            }
            let failed = self.write(&group).err().map(|e| e.to_string());
            for append in group {
                let answer = match &failed {
                    None => Ok(()),
                    Some(why) => Err(Error::dependency(SERVICE, "append", true, why.clone())),
                };
                // The caller may have gone (a cancelled request): nothing to do.
                let _ = append.done.send(answer);
            }
        }
    }

    /// Writes `group` at the end; on failure cuts the file back to where
    /// the group began, so that none of it is read or recovered.
    fn write(&mut self, group: &[Append]) -> io::Result<()> {
        self.buf.clear();
        for append in group {
            self.buf.extend_from_slice(&append.header);
            self.buf.extend_from_slice(&append.body);
        }
        let mut file = &*self.file;
        if let Err(e) = file.write_all(&self.buf) {
            if let Err(cut) = self
                .file
                .set_len(self.len)
                .and_then(|()| file.seek(SeekFrom::Start(self.len)))
            {
                tracing::error!(error = %cut, segment = self.segment, "journal: could not cut back a failed write");
            }
            return Err(e);
        }
        self.len += self.buf.len() as u64;
        {
            let mut state = lock(&self.state);
            state.backlog.entries += group.len() as u64;
            state.backlog.bytes += self.buf.len() as u64;
        }
        if self.len >= self.segment_bytes {
            self.rotate();
        }
        self.committed
            .send_replace(Position::at(self.segment, self.len));
        Ok(())
    }

    /// Starts the next segment; the sync thread syncs the finished one. If
    /// the new file cannot be made, the current one goes on.
    fn rotate(&mut self) {
        let next = self.segment + 1;
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(segment_path(&self.dir, next))
        {
            Ok(file) => {
                let finished = std::mem::replace(&mut self.file, Arc::new(file));
                let mut targets = lock(&self.targets);
                targets.retired.push(finished);
                targets.active = self.file.clone();
                targets.dir_changed = true;
                self.segment = next;
                self.len = 0;
            }
            Err(e) => {
                tracing::warn!(error = %e, segment = next, "journal: could not start a new segment");
            }
        }
    }
}

/// The one reader's cursor and open segment.
struct Reader {
    dir: PathBuf,
    committed: watch::Receiver<Position>,
    cursor: Position,
    file: Option<BufReader<Bounded>>,
}

impl Reader {
    /// Up to `max` entries from the cursor, never past `end`, with their
    /// sizes. The cursor moves only if all went well.
    fn read(&mut self, end: Position, max: usize) -> io::Result<Vec<(Entry, u64)>> {
        let mut out = Vec::new();
        let mut cursor = self.cursor;
        while out.len() < max && cursor < end {
            let sealed = cursor.segment < end.segment;
            let file = match &mut self.file {
                Some(file) => file,
                None => match open_at(&self.dir, cursor) {
                    Ok(file) => self.file.insert(file),
                    Err(e) if sealed && e.kind() == io::ErrorKind::NotFound => {
                        tracing::error!(segment = cursor.segment, "journal: a segment is missing");
                        cursor = self.next_segment(cursor, end)?;
                        continue;
                    }
                    Err(e) => return Err(e),
                },
            };
            // Only committed bytes: past them may be a group being written,
            // or one that failed and will be written over.
            file.get_mut().limit = if sealed { u64::MAX } else { end.offset };
            let mut body = Vec::new();
            let why = match read_record(file, &mut body)? {
                Record::Whole { at_ms, size } => {
                    cursor.offset += size;
                    let entry = Entry {
                        at_ms,
                        body: Bytes::from(body),
                        end: cursor,
                    };
                    out.push((entry, size));
                    continue;
                }
                Record::End if sealed => {
                    cursor = self.next_segment(cursor, end)?;
                    continue;
                }
                Record::End => "the file is shorter than written",
                Record::Bad(why) => why,
            };
            tracing::error!(
                segment = cursor.segment,
                at = cursor.offset,
                why,
                "journal: corrupt record; the rest of this segment is skipped"
            );
            self.file = None;
            cursor = if sealed {
                self.next_segment(cursor, end)?
            } else {
                end
            };
        }
        self.cursor = cursor;
        Ok(out)
    }

    /// The start of the segment after the cursor's (there may be gaps only
    /// if files were removed by hand).
    fn next_segment(&mut self, cursor: Position, end: Position) -> io::Result<Position> {
        self.file = None;
        let segment = list_segments(&self.dir)?
            .into_iter()
            .find(|s| *s > cursor.segment && *s <= end.segment)
            .unwrap_or(end.segment);
        Ok(Position::at(segment, 0))
    }
}

/// A segment file read no further than `limit`.
struct Bounded {
    file: File,
    pos: u64,
    limit: u64,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = usize::try_from(self.limit.saturating_sub(self.pos)).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn open_at(dir: &Path, at: Position) -> io::Result<BufReader<Bounded>> {
    let mut file = File::open(segment_path(dir, at.segment))?;
    file.seek(SeekFrom::Start(at.offset))?;
    let bounded = Bounded {
        file,
        pos: at.offset,
        limit: at.offset,
    };
    Ok(BufReader::with_capacity(READ_BUFFER, bounded))
}

fn header(at_ms: i64, body: &[u8]) -> [u8; HEADER] {
    let mut header = [0u8; HEADER];
    // MAX_BODY is checked before: the length fits.
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4..8].copy_from_slice(&checksum(at_ms.to_le_bytes(), body).to_le_bytes());
    header[8..].copy_from_slice(&at_ms.to_le_bytes());
    header
}

fn checksum(at_ms: [u8; 8], body: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&at_ms);
    crc.update(body);
    crc.finalize()
}

enum Record {
    /// Its body is in the buffer; `size` counts the header.
    Whole { at_ms: i64, size: u64 },
    /// Nothing more to read.
    End,
    /// A partial or damaged record, and why.
    Bad(&'static str),
}

/// Reads the record at `r`'s position, its body into `body`.
fn read_record(r: &mut impl Read, body: &mut Vec<u8>) -> io::Result<Record> {
    let mut head = [0u8; HEADER];
    match read_full(r, &mut head)? {
        0 => return Ok(Record::End),
        n if n < HEADER => return Ok(Record::Bad("a partial header")),
        _ => {}
    }
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let at = [
        head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15],
    ];
    if len > MAX_BODY {
        return Ok(Record::Bad("an impossible length"));
    }
    body.clear();
    body.resize(len, 0);
    if read_full(r, body)? < len {
        return Ok(Record::Bad("a partial body"));
    }
    if checksum(at, body) != crc {
        return Ok(Record::Bad("a checksum mismatch"));
    }
    Ok(Record::Whole {
        at_ms: i64::from_le_bytes(at),
        size: (HEADER + len) as u64,
    })
}

/// Reads until `buf` is full or the input ends; how much was read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A segment read through from its start.
struct Scan {
    len: u64,
    /// The end of its whole records: where a torn tail begins.
    end: u64,
    /// Why reading stopped before `len`.
    bad: Option<&'static str>,
    /// The last record end at or before the offset asked for.
    from: u64,
    /// The whole records ending past `from`, and their bytes.
    entries: u64,
    bytes: u64,
}

fn scan(path: &Path, from: u64) -> io::Result<Scan> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    let mut scan = Scan {
        len,
        end: 0,
        bad: None,
        from: 0,
        entries: 0,
        bytes: 0,
    };
    let mut body = Vec::new();
    loop {
        match read_record(&mut reader, &mut body)? {
            Record::Whole { size, .. } => {
                scan.end += size;
                if scan.end <= from {
                    scan.from = scan.end;
                } else {
                    scan.entries += 1;
                    scan.bytes += size;
                }
            }
            Record::End => return Ok(scan),
            Record::Bad(why) => {
                scan.bad = Some(why);
                return Ok(scan);
            }
        }
    }
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:020}.log"))
}

/// The segments in `dir`, oldest first.
fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .filter(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok());
        segments.extend(number);
    }
    segments.sort_unstable();
    Ok(segments)
}

/// Deletes the segments wholly applied. A failure leaves a file to delete
/// at the next open.
fn remove_segments_before(dir: &Path, segment: u64) {
    let segments = match list_segments(dir) {
        Ok(segments) => segments,
        Err(e) => {
            tracing::warn!(error = %e, "journal: could not list the segments to delete");
            return;
        }
    };
    for old in segments.into_iter().take_while(|s| *s < segment) {
        if let Err(e) = fs::remove_file(segment_path(dir, old)) {
            tracing::warn!(error = %e, segment = old, "journal: could not delete an applied segment");
        }
    }
}

/// Written in place: 20 bytes within one sector; the crc tells a torn write.
fn write_applied(file: &File, at: Position) -> io::Result<()> {
    let mut buf = [0u8; APPLIED_LEN];
    buf[..8].copy_from_slice(&at.segment.to_le_bytes());
    buf[8..16].copy_from_slice(&at.offset.to_le_bytes());
    let crc = crc32fast::hash(&buf[..16]);
    buf[16..].copy_from_slice(&crc.to_le_bytes());
    let mut file = file;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&buf)
}

/// The applied position, if it can be trusted; without it everything is
/// applied again (harmless), from the oldest segment.
fn read_applied(dir: &Path, expected: bool) -> Option<Position> {
    let why = match fs::read(dir.join(APPLIED_FILE)) {
        Ok(bytes) => match decode_applied(&bytes) {
            Some(at) => return Some(at),
            None => "unreadable".to_string(),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => "missing".to_string(),
        Err(e) => e.to_string(),
    };
    if expected {
        tracing::warn!(
            why,
            dir = %dir.display(),
            "journal: no applied position; applying everything again from the oldest segment"
        );
    }
    None
}

fn decode_applied(bytes: &[u8]) -> Option<Position> {
    let (position, crc) = bytes.split_first_chunk::<16>()?;
    let crc = u32::from_le_bytes(crc.try_into().ok()?);
    let (segment, offset) = position.split_at(8);
    let at = Position::at(
        u64::from_le_bytes(segment.try_into().ok()?),
        u64::from_le_bytes(offset.try_into().ok()?),
    );
    (crc32fast::hash(position) == crc).then_some(at)
}

/// What the sync thread syncs: the active segment, the finished ones not
/// synced yet, and the directory when a segment was created.
struct SyncTargets {
    active: Arc<File>,
    retired: Vec<Arc<File>>,
    dir_changed: bool,
}

/// Fsyncs the journal every `sync_every`, off the appends' path, and once
/// more when stopped (dropped).
struct Syncer {
    _stop: mpsc::Sender<()>,
}

impl Syncer {
    fn start(
        dir: PathBuf,
        every: Duration,
        targets: Arc<Mutex<SyncTargets>>,
        applied: Arc<File>,
        free_bytes: Arc<AtomicU64>,
    ) -> Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("journal-sync".into())
            .spawn(move || loop {
                // Nothing is ever sent: the sender's drop is the signal.
                let stopping = !matches!(
                    stopped.recv_timeout(every),
                    Err(mpsc::RecvTimeoutError::Timeout)
                );
                sync(&dir, &targets, &applied);
                match free_space(&dir) {
                    Ok(free) => free_bytes.store(free, Ordering::Relaxed),
                    Err(e) => {
                        tracing::warn!(error = %e, "journal: could not measure the free disk")
                    }
                }
                if stopping {
                    break;
                }
            })
            .map_err(|e| Error::dependency(SERVICE, "sync thread", false, e))?;
        Ok(Syncer { _stop: stop })
    }
}

fn sync(dir: &Path, targets: &Mutex<SyncTargets>, applied: &File) {
    let (retired, active, dir_changed) = {
        let mut targets = lock(targets);
        let retired = std::mem::take(&mut targets.retired);
        (
            retired,
            targets.active.clone(),
            std::mem::take(&mut targets.dir_changed),
        )
    };
    let check = |what: &str, synced: io::Result<()>| {
        if let Err(e) = synced {
            tracing::warn!(error = %e, "journal: could not sync {what}");
        }
    };
    for finished in retired {
        check("a finished segment", finished.sync_data());
    }
    if dir_changed {
        check("the directory", sync_dir(dir));
    }
    check("the active segment", active.sync_data());
    check("the applied position", applied.sync_data());
}

/// Free bytes for an unprivileged writer on the filesystem holding `dir`.
fn free_space(dir: &Path) -> io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn io_error(context: String, e: io::Error) -> Error {
    // A full disk or a passing I/O fault may clear; a missing permission will not.
    let retryable = !matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput
    );
    Error::dependency(SERVICE, context, retryable, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Generous: a busy machine may be slow, never this slow.
    const WAIT: Duration = Duration::from_secs(20);

    fn open(dir: &Path, settings: JournalSettings) -> Journal {
        Journal::open(dir, settings).expect("open")
    }

    /// Two 66-byte records to a segment.
    fn small_segments() -> JournalSettings {
        JournalSettings {
            segment_bytes: 100,
            ..JournalSettings::default()
        }
    }

    /// `len` bytes starting with `i`.
    fn body(i: usize, len: usize) -> Bytes {
        let mut text = format!("{i:03}");
        text.extend(std::iter::repeat_n('.', len - text.len()));
        Bytes::from(text)
    }

    async fn append_bodies(journal: &Journal, range: std::ops::Range<usize>, len: usize) {
        for i in range {
            journal
                .append(i as i64, body(i, len))
                .await
                .expect("append");
        }
    }

    async fn read(journal: &Journal, n: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        while out.len() < n {
            let batch = tokio::time::timeout(WAIT, journal.next(n - out.len()))
                .await
                .expect("the entries in time")
                .expect("next");
            assert!(!batch.is_empty() && batch.len() <= n - out.len());
            out.extend(batch);
        }
        out
    }

    /// Nothing else is waiting (a wait that is cut short is cancel-safe).
    async fn nothing_more(journal: &Journal) {
        let more = tokio::time::timeout(Duration::from_millis(50), journal.next(10)).await;
        assert!(more.is_err(), "more entries: {more:?}");
    }

    /// Each body's leading number.
    fn numbers(entries: &[Entry]) -> Vec<usize> {
        entries
            .iter()
            .map(|e| {
                std::str::from_utf8(&e.body[..3])
                    .expect("utf-8")
                    .parse()
                    .expect("number")
            })
            .collect()
    }

    #[tokio::test]
    async fn entries_come_back_in_order_and_after_the_applied_position_on_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = open(dir.path(), JournalSettings::default());
        append_bodies(&journal, 0..5, 10).await;
        let entries = read(&journal, 5).await;
        assert_eq!(numbers(&entries), [0, 1, 2, 3, 4]);
        assert_eq!(entries[3].at_ms, 3);
        assert_eq!(entries[3].body, body(3, 10));
        assert!(entries.windows(2).all(|w| w[0].end < w[1].end));
        nothing_more(&journal).await;
        assert_eq!(
            journal.backlog(),
            Backlog {
                entries: 5,
                bytes: 5 * 26
            }
        );

        let unread = Position {
            segment: 1,
            offset: entries[4].end.offset + 26,
        };
        assert!(
            journal.applied(unread).is_err(),
            "applied past what was read"
        );
        journal.applied(entries[2].end).expect("applied");
        assert_eq!(
            journal.backlog(),
            Backlog {
                entries: 2,
                bytes: 2 * 26
            }
        );
        drop(journal);

        let journal = open(dir.path(), JournalSettings::default());
        assert_eq!(
            journal.backlog(),
            Backlog {
                entries: 2,
                bytes: 2 * 26
            }
        );
        assert_eq!(numbers(&read(&journal, 2).await), [3, 4]);
        nothing_more(&journal).await;
        drop(journal);

        // Read but not marked applied: read again.
        let journal = open(dir.path(), JournalSettings::default());
        assert_eq!(numbers(&read(&journal, 2).await), [3, 4]);
        nothing_more(&journal).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_are_each_read_once_in_each_callers_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = open(dir.path(), JournalSettings::default());
        let (tasks, each) = (64usize, 32usize);
        // Read while they are written: the reader never sees a group half-written.
        let reader = tokio::spawn({
            let journal = journal.clone();
            async move { read(&journal, tasks * each).await }
        });
        let writers: Vec<_> = (0..tasks)
            .map(|task| {
                let journal = journal.clone();
                tokio::spawn(async move {
                    for k in 0..each {
                        let body = Bytes::from(format!("{task}:{k}"));
                        journal.append(task as i64, body).await.expect("append");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.expect("writer");
        }
        let entries = reader.await.expect("reader");
        let mut seen = HashSet::new();
        let mut next_of = vec![0usize; tasks];
        for entry in &entries {
            let text = std::str::from_utf8(&entry.body).expect("utf-8");
            let (task, k) = text.split_once(':').expect("task:k");
            let (task, k): (usize, usize) = (task.parse().expect("task"), k.parse().expect("k"));
            assert_eq!(entry.at_ms, task as i64);
            assert!(seen.insert((task, k)), "{text} read twice");
            assert_eq!(k, next_of[task], "task {task} out of order");
            next_of[task] += 1;
        }
        assert_eq!(seen.len(), tasks * each);
        assert_eq!(journal.backlog().entries, (tasks * each) as u64);
        nothing_more(&journal).await;
    }

    #[tokio::test]
    async fn the_reader_never_reads_past_what_is_written_in_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = open(dir.path(), JournalSettings::default());
        append_bodies(&journal, 0..2, 10).await;
        // Past the end: as a group being written, or one that failed and
        // is written over by the next.
        OpenOptions::new()
            .append(true)
            .open(segment_path(dir.path(), 1))
            .and_then(|mut f| f.write_all(&[0xab; 200]))
            .expect("bytes past the end");
        assert_eq!(numbers(&read(&journal, 2).await), [0, 1]);
        append_bodies(&journal, 2..3, 10).await;
        let entries = read(&journal, 1).await;
        assert_eq!(entries[0].body, body(2, 10));
    }

    #[tokio::test]
    async fn reopening_cuts_a_torn_tail_and_keeps_every_whole_record() {
        let record = |body: &[u8]| [&header(7, body)[..], body].concat();
        let whole = record(b"a whole record");
        let mut bad_crc = whole.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 0xff;
        let tails = [
            ("garbage", vec![0xde, 0xad, 0xbe]),
            ("a partial header", whole[..10].to_vec()),
            ("a partial body", whole[..whole.len() - 3].to_vec()),
            (
                "a bad checksum, then a whole record",
                [bad_crc, whole].concat(),
            ),
        ];
        for (what, tail) in tails {
            let dir = tempfile::tempdir().expect("tempdir");
            let journal = open(dir.path(), JournalSettings::default());
            append_bodies(&journal, 0..3, 20).await;
            drop(journal);
            let path = segment_path(dir.path(), 1);
            let len = fs::metadata(&path).expect("segment").len();
            OpenOptions::new()
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(&tail))
                .expect("a torn tail");

            let journal = open(dir.path(), JournalSettings::default());
            assert_eq!(fs::metadata(&path).expect("segment").len(), len, "{what}");
            assert_eq!(journal.backlog().entries, 3, "{what}");
            append_bodies(&journal, 3..5, 20).await;
            let entries = read(&journal, 5).await;
            assert_eq!(numbers(&entries), [0, 1, 2, 3, 4], "{what}");
            assert_eq!(entries[4].body, body(4, 20), "{what}");
            nothing_more(&journal).await;
        }
    }

    #[tokio::test]
    async fn the_reader_follows_rotation_and_applied_segments_are_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = open(dir.path(), small_segments());
        append_bodies(&journal, 0..10, 50).await;
        let segments = || list_segments(dir.path()).expect("list");
        // Two records to a segment, and an empty one started after the last.
        assert_eq!(segments(), [1, 2, 3, 4, 5, 6]);
        let entries = tokio::time::timeout(WAIT, journal.next(100))
            .await
            .expect("in time")
            .expect("next");
        assert_eq!(
            numbers(&entries),
            (0..10).collect::<Vec<_>>(),
            "in one call"
        );
        assert_eq!(entries[9].end.segment, 5);

        journal.applied(entries[5].end).expect("applied");
        assert_eq!(segments(), [3, 4, 5, 6]);
        assert_eq!(
            journal.backlog(),
            Backlog {
                entries: 4,
                bytes: 4 * 66
            }
        );
        drop(journal);

        let journal = open(dir.path(), small_segments());
        assert_eq!(
            journal.backlog(),
            Backlog {
                entries: 4,
                bytes: 4 * 66
            }
        );
        append_bodies(&journal, 10..11, 50).await;
        assert_eq!(numbers(&read(&journal, 5).await), [6, 7, 8, 9, 10]);
        nothing_more(&journal).await;
    }

    #[tokio::test]
    async fn appends_are_refused_over_the_backlog_cap_until_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = JournalSettings {
            max_backlog_bytes: 200,
            ..JournalSettings::default()
        };
        let journal = open(dir.path(), settings);
        // 100-byte records: refused once more than 200 bytes wait.
        append_bodies(&journal, 0..3, 84).await;
        let refused = journal.append(3, body(3, 84)).await;
        assert!(refused.is_err_and(|e| e.is_retryable()));
        assert_eq!(
            journal.backlog(),
            Backlog {
                entries: 3,
                bytes: 300
            }
        );

        let entries = read(&journal, 3).await;
        journal.applied(entries[2].end).expect("applied");
        assert_eq!(journal.backlog(), Backlog::default());
        append_bodies(&journal, 4..5, 84).await;
        assert_eq!(
            numbers(&read(&journal, 1).await),
            [4],
            "the refused one is not there"
        );
    }

    #[tokio::test]
    async fn appends_are_refused_while_the_disk_is_short_of_the_room_kept_free() {
        let dir = tempfile::tempdir().expect("tempdir");
        let free = open(dir.path(), JournalSettings::default()).free_bytes();
        assert!(free > 0, "the disk was measured");
        let settings = |min_free_bytes| JournalSettings {
            min_free_bytes,
            sync_every: Duration::from_millis(20),
            ..JournalSettings::default()
        };
        // More kept free than this disk has: nothing is taken.
        let short = open(dir.path(), settings(u64::MAX));
        let refused = short.append(1, body(1, 10)).await;
        assert!(
            refused.as_ref().is_err_and(|e| e.is_retryable()),
            "{refused:?}"
        );
        assert!(
            format!("{:?}", refused).contains("kept free"),
            "{refused:?}"
        );
        assert_eq!(short.backlog(), Backlog::default());
        drop(short);
        // The same directory with nothing kept free: taken.
        let journal = open(dir.path(), settings(0));
        append_bodies(&journal, 0..1, 10).await;
        assert_eq!(numbers(&read(&journal, 1).await), [0]);
    }

    #[tokio::test]
    async fn a_second_journal_on_the_same_directory_is_refused_until_the_first_is_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Journal::open(dir.path(), JournalSettings::default()).expect("open");
        let second = Journal::open(dir.path(), JournalSettings::default());
        assert!(
            matches!(second, Err(Error::Config(ref why)) if why.contains("in use")),
            "{:?}",
            second.err()
        );
        drop(first);
        Journal::open(dir.path(), JournalSettings::default()).expect("free again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn next_waits_for_an_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = open(dir.path(), JournalSettings::default());
        let waiting = tokio::spawn({
            let journal = journal.clone();
            async move { journal.next(10).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "returned with nothing appended");
        append_bodies(&journal, 0..1, 10).await;
        let entries = tokio::time::timeout(WAIT, waiting)
            .await
            .expect("woken in time")
            .expect("task")
            .expect("next");
        assert_eq!(numbers(&entries), [0]);
    }

    #[tokio::test]
    async fn a_corrupt_applied_file_means_reading_again_from_the_oldest_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = open(dir.path(), small_segments());
        append_bodies(&journal, 0..6, 50).await;
        let entries = read(&journal, 6).await;
        journal.applied(entries[3].end).expect("applied");
        drop(journal);

        let journal = open(dir.path(), small_segments());
        assert_eq!(journal.backlog().entries, 2);
        drop(journal);

        let applied = dir.path().join(APPLIED_FILE);
        let mut bytes = fs::read(&applied).expect("applied file");
        bytes[9] ^= 0x01;
        fs::write(&applied, bytes).expect("corrupt");
        let journal = open(dir.path(), small_segments());
        assert_eq!(journal.backlog().entries, 4);
        // Segment 1 was deleted: segment 2 is the oldest.
        assert_eq!(numbers(&read(&journal, 4).await), [2, 3, 4, 5]);
        nothing_more(&journal).await;
        drop(journal);

        fs::remove_file(&applied).expect("remove");
        let journal = open(dir.path(), small_segments());
        assert_eq!(numbers(&read(&journal, 4).await), [2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn a_corrupt_record_in_an_older_segment_skips_the_rest_of_that_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = open(dir.path(), small_segments());
        append_bodies(&journal, 0..6, 50).await;
        drop(journal);
        // The second record of segment 1, in its body.
        let path = segment_path(dir.path(), 1);
        let mut bytes = fs::read(&path).expect("segment");
        bytes[66 + HEADER + 10] ^= 0x01;
        fs::write(&path, &bytes).expect("corrupt");

        let journal = open(dir.path(), small_segments());
        assert_eq!(journal.backlog().entries, 5);
        assert_eq!(numbers(&read(&journal, 5).await), [0, 2, 3, 4, 5]);
        nothing_more(&journal).await;
        assert_eq!(fs::read(&path).expect("segment"), bytes, "left as it was");
    }
}
