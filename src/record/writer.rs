//! Writing recordings: `Writer` turns items into frames on any `Write`; `Recorder` runs a `Writer`
//! on its own thread for the live view and `lbtop record`, so a slow or full disk never stalls the
//! screen, and reports its size, duration and any write error.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::model::alert::AlertEvent;
use crate::model::sample::{HostStatus, NodeSample, Report, RouterSample, SourceEvent, Timestamp};

use super::format::{
    Entry, FileHeader, FrameHeader, FrameInfo, FrameKind, FramePayload, HeaderInfo, HostDecl,
    IndexPayload, MAJOR, MINOR, Role, encode_tail, flags,
};
use super::{Item, RecordError};
use crate::model::delta::{Last, encode_part};

fn without_services(s: &RouterSample) -> RouterSample {
    RouterSample {
        time: s.time,
        source: s.source,
        services: Vec::new(),
        global: s.global,
        connections: s.connections.clone(),
        notes: s.notes.clone(),
        ipvs: s.ipvs.clone(),
        parts: s.parts,
        sysctl: s.sysctl,
        addrs: s.addrs.clone(),
        owners: s.owners.clone(),
        sync: s.sync.clone(),
    }
}

/// Items to frame payloads: host numbering and delta coding within a keyframe group.
#[derive(Default)]
struct Encoder {
    ids: HashMap<(Role, String, String), u32>,
    decls: Vec<HostDecl>,
    declared: HashSet<u32>,
    nodes: HashMap<u32, Option<Last<NodeSample>>>,
    routers: HashMap<u32, RouterLast>,
}

/// The router's two parts: services, and the rest.
type RouterLast = (
    Option<Last<Vec<crate::model::sample::VirtualServiceSample>>>,
    Option<Last<RouterSample>>,
);

impl Encoder {
    /// A new keyframe group: every host's next sample is stored whole, and declared again.
    fn new_group(&mut self) {
        self.declared.clear();
        self.nodes.clear();
        self.routers.clear();
    }

    fn host(&mut self, role: Role, name: &str, host: &str, out: &mut FramePayload) -> u32 {
        let key = (role, name.to_string(), host.to_string());
        let id = match self.ids.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.decls.len() as u32;
                self.ids.insert(key, id);
                self.decls.push(HostDecl {
                    id,
                    role,
                    name: name.to_string(),
                    host: host.to_string(),
                });
                id
            }
        };
        if self.declared.insert(id) {
            out.hosts.push(self.decls[id as usize].clone());
        }
        id
    }

    fn encode(&mut self, item: &Item, out: &mut FramePayload) -> u8 {
        match item {
            Item::Event(SourceEvent::Node { name, host, report }) => {
                let id = self.host(Role::Node, name, host, out);
                out.events.push(match report {
                    Report::Sample(s) => Entry::Node {
                        host: id,
                        sample: encode_part(self.nodes.entry(id).or_default(), s),
                    },
                    Report::Status {
                        time,
                        status,
                        message,
                    } => {
                        if *status == HostStatus::Gone {
                            // Its next sample, if it comes back, is written whole.
                            self.nodes.remove(&id);
                        }
                        status_entry(id, *time, *status, message.clone())
                    }
                });
                0
            }
            Item::Event(SourceEvent::Router { host, report }) => {
                let id = self.host(Role::Router, host, host, out);
                out.events.push(match report {
                    Report::Sample(s) => {
                        let (services, rest) = self.routers.entry(id).or_default();
                        Entry::Router {
                            host: id,
                            services: encode_part(services, &s.services),
                            rest: encode_part(rest, &without_services(s)),
                        }
                    }
                    Report::Status {
                        time,
                        status,
                        message,
                    } => status_entry(id, *time, *status, message.clone()),
                });
                0
            }
            Item::Alert(a) => {
                out.alerts.push(a.clone());
                alert_flags(a)
            }
            Item::Action(a) => {
                out.actions.push(a.clone());
                flags::ACTION
            }
        }
    }
}

fn alert_flags(a: &AlertEvent) -> u8 {
    use crate::model::alert::Severity;
    match (a.raised, a.severity) {
        (false, _) => flags::CLEARED,
        (true, Severity::Warning) => flags::WARNING,
        (true, Severity::Critical) => flags::CRITICAL,
    }
}

/// How a writer frames and compresses.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// A keyframe group starts when this much time has passed since the last one began.
    pub keyframe_every: Duration,
    /// zstd level.
    pub level: i32,
    /// `fdatasync` at every keyframe, so a power cut loses at most one group.
    pub sync: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            keyframe_every: Duration::from_secs(30),
            level: 9,
            sync: false,
        }
    }
}

/// Something a recording can be written to and, optionally, synced.
pub trait Sink: Write {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
}

impl Sink for Vec<u8> {}

impl<W: Sink> Sink for io::BufWriter<W> {
    fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        self.get_mut().sync()
    }
}

/// Writes a recording: the header at once, one frame per `flush_frame`, the index on `finish`.
pub struct Writer<W: Sink> {
    out: W,
    options: WriterOptions,
    offset: u64,
    frames: Vec<FrameInfo>,
    pending: Vec<Item>,
    encoder: Encoder,
    group_start: Option<Timestamp>,
    last_time: Timestamp,
    compressor: zstd::bulk::Compressor<'static>,
    buf: Vec<u8>,
}

impl<W: Sink> Writer<W> {
    /// Writes the header and returns a writer ready for items.
    pub fn new(mut out: W, info: HeaderInfo, options: WriterOptions) -> io::Result<Self> {
        let header = FileHeader {
            major: MAJOR,
            minor: MINOR,
            info,
        }
        .encode();
        out.write_all(&header)?;
        out.flush()?;
        Ok(Self {
            out,
            options,
            offset: header.len() as u64,
            frames: Vec::new(),
            pending: Vec::new(),
            encoder: Encoder::default(),
            group_start: None,
            last_time: Timestamp(i64::MIN),
            compressor: zstd::bulk::Compressor::new(options.level)?,
            buf: Vec::new(),
        })
    }

    pub fn push(&mut self, item: Item) {
        self.pending.push(item);
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.offset
    }

    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// The time of the first and the last frame written.
    pub fn span(&self) -> Option<(Timestamp, Timestamp)> {
        Some((self.frames.first()?.time, self.frames.last()?.time))
    }

    /// Writes what was pushed since the last flush as one frame. Nothing when nothing was pushed.
    pub fn flush_frame(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let items = std::mem::take(&mut self.pending);
        let time = items
            .iter()
            .filter_map(Item::time)
            .max()
            .unwrap_or(self.last_time)
            .max(self.last_time);
        let key = self.group_start.is_none_or(|start| {
            time.0.saturating_sub(start.0) >= self.options.keyframe_every.as_millis() as i64
        });
        if key {
            self.encoder.new_group();
            self.group_start = Some(time);
        }
        let mut payload = FramePayload::default();
        let mut frame_flags = 0u8;
        for item in &items {
            frame_flags |= self.encoder.encode(item, &mut payload);
        }
        let kind = if key {
            FrameKind::Key
        } else {
            FrameKind::Delta
        };
        self.write_frame(kind, frame_flags, time, &payload)?;
        if key && self.options.sync {
            self.out.sync()?;
        }
        Ok(())
    }

    fn write_frame<T: serde::Serialize>(
        &mut self,
        kind: FrameKind,
        frame_flags: u8,
        time: Timestamp,
        payload: &T,
    ) -> io::Result<()> {
        self.buf.clear();
        ciborium::into_writer(payload, &mut self.buf)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let raw_len = self.buf.len() as u32;
        let compressed = self.compressor.compress(&self.buf)?;
        let seq = self.frames.len() as u32;
        let header = FrameHeader {
            kind,
            flags: frame_flags,
            seq,
            time,
            payload_len: compressed.len() as u32,
            raw_len,
            payload_crc: crc32fast::hash(&compressed),
        };
        // One write per frame, so a frame is either whole on disk or detectably torn.
        let mut frame = Vec::with_capacity(compressed.len() + 36);
        frame.extend_from_slice(&header.encode());
        frame.extend_from_slice(&compressed);
        self.out.write_all(&frame)?;
        self.out.flush()?;
        if kind != FrameKind::Index {
            self.frames.push(FrameInfo {
                offset: self.offset,
                seq,
                time,
                kind,
                flags: frame_flags,
            });
            self.last_time = time;
        }
        self.offset += frame.len() as u64;
        Ok(())
    }

    /// Flushes, writes the index frame and the tail, syncs, and hands the output back.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_frame()?;
        let index = IndexPayload::from_frames(&self.frames);
        let index_offset = self.offset;
        let time = self.last_time.max(Timestamp(0));
        self.write_frame(FrameKind::Index, 0, time, &index)?;
        self.out.write_all(&encode_tail(index_offset))?;
        self.offset += super::format::TAIL_LEN as u64;
        self.out.flush()?;
        self.out.sync()?;
        Ok(self.out)
    }
}

// ───────────────────────────── the recorder thread ─────────────────────────────

/// What the recorder has done, for the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderStatus {
    pub path: PathBuf,
    pub bytes: u64,
    pub frames: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    /// Items dropped because the writer fell behind.
    pub dropped: u64,
    /// The write error that stopped the recording.
    pub error: Option<String>,
    /// The file is closed (index written, or stopped by an error).
    pub finished: bool,
}

impl RecorderStatus {
    /// Recorded time, from the first frame to the last.
    pub fn duration(&self) -> Duration {
        match (self.first, self.last) {
            (Some(a), Some(b)) => Duration::from_millis(b.0.saturating_sub(a.0).max(0) as u64),
            _ => Duration::ZERO,
        }
    }

    /// Time covered, each frame standing for the `interval` after it: three frames a second
    /// apart cover 3 s, though the last came 2 s after the first.
    pub fn covered(&self, interval: Duration) -> Duration {
        if self.first.is_none() {
            return Duration::ZERO;
        }
        self.duration() + interval
    }
}

enum Msg {
    /// Boxed, so the queue's slots stay small.
    Item(Box<Item>),
    Stop,
}

/// A recording in progress on its own thread. Dropping it stops it cleanly.
pub struct Recorder {
    tx: SyncSender<Msg>,
    status: Arc<Mutex<RecorderStatus>>,
    thread: Option<JoinHandle<()>>,
}

/// Items queued at most before the recorder drops new ones (and counts them).
const QUEUE: usize = 16_384;

/// Creates a new recording file. A regular file that exists is never replaced. Of anything else
/// that exists only a character device is written to (`/dev/null`; `/dev/full` tests a full
/// disk): opening a FIFO for writing waits for a reader (it froze the TUI and `lbtop record`), so
/// the open never waits (`O_NONBLOCK`) and what was opened is checked (`fstat`).
pub(crate) fn create_file(path: &Path) -> Result<File, RecordError> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    match crate::owner_only::options()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(file) => return Ok(file),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(RecordError::io(path, e)),
    }
    let not_a_file = |kind: std::fs::FileType| -> RecordError {
        if kind.is_file() {
            RecordError::Exists { path: path.into() }
        } else {
            crate::fsutil::FileError::NotAFile {
                path: path.into(),
                what: crate::fsutil::kind_name(kind),
            }
            .into()
        }
    };
    let kind = std::fs::metadata(path)
        .map_err(|e| RecordError::io(path, e))?
        .file_type();
    if !kind.is_char_device() {
        return Err(not_a_file(kind));
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(|e| RecordError::io(path, e))?;
    let kind = file
        .metadata()
        .map_err(|e| RecordError::io(path, e))?
        .file_type();
    if kind.is_char_device() {
        Ok(file)
    } else {
        Err(not_a_file(kind))
    }
}

impl Recorder {
    /// Creates `path` and starts recording into it. A frame is written every `flush_every`.
    pub fn start(
        path: &Path,
        info: HeaderInfo,
        flush_every: Duration,
        options: WriterOptions,
    ) -> Result<Self, RecordError> {
        let file = create_file(path)?;
        Self::start_with(file, path, info, flush_every, options)
    }

    /// Starts recording into any sink (tests use one that fails on purpose).
    pub fn start_with<W: Sink + Send + 'static>(
        sink: W,
        path: &Path,
        info: HeaderInfo,
        flush_every: Duration,
        options: WriterOptions,
    ) -> Result<Self, RecordError> {
        let writer = Writer::new(sink, info, options).map_err(|e| RecordError::io(path, e))?;
        let status = Arc::new(Mutex::new(RecorderStatus {
            path: path.to_path_buf(),
            bytes: writer.bytes(),
            frames: 0,
            first: None,
            last: None,
            dropped: 0,
            error: None,
            finished: false,
        }));
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
        let st = status.clone();
        let flush_every = flush_every.max(Duration::from_millis(50));
        let thread = std::thread::Builder::new()
            .name("lbtop-recorder".into())
            .spawn(move || run(writer, rx, st, flush_every))
            .map_err(|e| RecordError::io(path, e))?;
        Ok(Self {
            tx,
            status,
            thread: Some(thread),
        })
    }

    /// Queues an item; never blocks. Dropped (and counted) when the writer is far behind.
    pub fn send(&self, item: Item) {
        match self.tx.try_send(Msg::Item(Box::new(item))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if let Ok(mut s) = self.status.lock() {
                    s.dropped += 1;
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    pub fn status(&self) -> RecorderStatus {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Writes what is queued, the index and the tail, and closes the file.
    pub fn stop(mut self) -> RecorderStatus {
        self.shutdown();
        self.status()
    }

    fn shutdown(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.tx.send(Msg::Stop);
            let _ = t.join();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run<W: Sink>(
    writer: Writer<W>,
    rx: mpsc::Receiver<Msg>,
    status: Arc<Mutex<RecorderStatus>>,
    flush_every: Duration,
) {
    let mut writer = Some(writer);
    let mut deadline = Instant::now() + flush_every;
    let fail = |e: io::Error, status: &Mutex<RecorderStatus>| {
        tracing::error!("recording stopped: {e}");
        if let Ok(mut s) = status.lock() {
            s.error = Some(e.to_string());
            s.finished = true;
        }
    };
    loop {
        let msg = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        match msg {
            Ok(Msg::Item(item)) => {
                if let Some(w) = &mut writer {
                    w.push(*item);
                }
                if Instant::now() < deadline {
                    continue;
                }
            }
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(w) = writer.take() {
                    let frames = w.frames() as u64;
                    match w.finish() {
                        Ok(_) => {
                            if let Ok(mut s) = status.lock() {
                                s.finished = true;
                                s.frames = s.frames.max(frames);
                                if let Ok(m) = std::fs::metadata(&s.path)
                                    && m.is_file()
                                {
                                    s.bytes = m.len();
                                }
                            }
                        }
                        Err(e) => fail(e, &status),
                    }
                }
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        deadline = Instant::now() + flush_every;
        if let Some(w) = &mut writer {
            match w.flush_frame() {
                Ok(()) => {
                    if let Ok(mut s) = status.lock() {
                        s.bytes = w.bytes();
                        s.frames = w.frames() as u64;
                        if let Some((a, b)) = w.span() {
                            s.first = Some(a);
                            s.last = Some(b);
                        }
                    }
                }
                Err(e) => {
                    // Stop writing; keep draining the channel so senders never block.
                    writer = None;
                    fail(e, &status);
                }
            }
        }
    }
}

/// The header info for a recording of these sources, made now.
pub(crate) fn header_info(
    interval: Duration,
    options: &WriterOptions,
    router: Option<String>,
    nodes: Vec<super::format::NodeDecl>,
) -> HeaderInfo {
    HeaderInfo {
        lbtop_version: env!("CARGO_PKG_VERSION").to_string(),
        created: Timestamp::now(),
        interval_ms: interval.as_millis() as u64,
        keyframe_every_ms: options.keyframe_every.as_millis() as u64,
        router,
        nodes,
        pair: None,
    }
}

/// A status as stored: `gone` as `unreachable` with the `gone` flag ([`Entry::Status`]).
fn status_entry(host: u32, time: Timestamp, status: HostStatus, message: Option<String>) -> Entry {
    let gone = status == HostStatus::Gone;
    Entry::Status {
        host,
        time,
        status: if gone {
            HostStatus::Unreachable
        } else {
            status
        },
        message,
        gone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a 1.0 reader knew of a status: its `HostStatus` had no `gone`.
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "kebab-case")]
    enum OldStatus {
        Connecting,
        Ok,
        Unreachable,
        AuthFailed,
        HostKeyUnknown,
        HostKeyChanged,
        Error,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum OldEntry {
        Status {
            #[allow(dead_code)]
            host: u32,
            status: OldStatus,
        },
    }

    #[test]
    fn a_gone_status_is_stored_so_that_a_1_0_reader_reads_it_as_unreachable() {
        let mut bytes = Vec::new();
        let gone = status_entry(3, Timestamp(5), HostStatus::Gone, Some("left".into()));
        ciborium::into_writer(&gone, &mut bytes).expect("encode");
        let old: OldEntry = ciborium::from_reader(bytes.as_slice()).expect("a 1.0 reader");
        assert!(matches!(
            old,
            OldEntry::Status {
                status: OldStatus::Unreachable,
                ..
            }
        ));
        let new: Entry = ciborium::from_reader(bytes.as_slice()).expect("this reader");
        assert!(matches!(new, Entry::Status { gone: true, .. }));
        // Any other status is stored as it is, without the flag.
        let mut bytes = Vec::new();
        let error = status_entry(3, Timestamp(5), HostStatus::Error, None);
        ciborium::into_writer(&error, &mut bytes).expect("encode");
        let old: OldEntry = ciborium::from_reader(bytes.as_slice()).expect("a 1.0 reader");
        assert!(matches!(
            old,
            OldEntry::Status {
                status: OldStatus::Error,
                ..
            }
        ));
        let _ = [
            OldStatus::Connecting,
            OldStatus::Ok,
            OldStatus::AuthFailed,
            OldStatus::HostKeyUnknown,
            OldStatus::HostKeyChanged,
        ];
    }
}
