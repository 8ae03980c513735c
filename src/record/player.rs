//! Reading recordings: `Recording` opens a file (header, then the index, or a scan of the frame
//! headers when the file was not closed cleanly) and reads frames by number; `Player` decodes them
//! in order, back into the exact source events, and seeks through keyframes.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::model::alert::AlertEvent;
use crate::model::sample::{
    HostStatus, NodeSample, Report, RouterSample, SourceEvent, Timestamp, VirtualServiceSample,
};

use super::format::{
    self, Entry, FILE_HEADER_LEN, FILE_MAGIC, FRAME_HEADER_LEN, FRAME_MAGIC, FileHeader,
    FrameActions, FrameAlerts, FrameHeader, FrameInfo, FrameKind, FramePayload, HeaderInfo,
    HostDecl, IndexPayload, MAX_INFO_LEN, Role, TAIL_LEN, decode_tail, flags, le32,
};
use super::scan::{self, EntryRef, PartRef, PayloadRef};
use super::{ActionRecord, RecordError};
use crate::model::delta::{Last, LastTotals, advance_totals, decode_raw};
use crate::model::text::make_printable;

/// The longest host name, alert subject or action field a recording is shown with.
const HOST_CHARS: usize = 255;
/// The longest status or alert message.
const MESSAGE_CHARS: usize = 1000;

/// What was wrong with the file and skipped when it was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Damage {
    /// Stretches of bytes that were not a sound frame, skipped to the next frame magic.
    pub damaged_regions: u64,
    pub damaged_bytes: u64,
    /// Bytes at the end that were not a whole frame: the recording was cut off.
    pub truncated_bytes: u64,
}

/// An open recording: its header and where every frame is.
pub struct Recording {
    file: File,
    pub path: PathBuf,
    pub header: FileHeader,
    /// Data frames, in file order (the index frame is not among them).
    pub frames: Vec<FrameInfo>,
    /// Found at open; frames found damaged while reading are counted by the `Player`.
    pub damage: Damage,
    /// Opened through the index a clean close wrote (rather than by scanning).
    pub indexed: bool,
    pub file_len: u64,
    decompressor: zstd::bulk::Decompressor<'static>,
    /// A frame's bytes as stored and as decompressed, kept between frames.
    stored: Vec<u8>,
    raw: Vec<u8>,
}

/// Why one frame could not be read; the frame is skipped and counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    Header,
    Checksum,
    Decompress,
    Decode,
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    file.read_exact_at(buf, offset)
}

impl Recording {
    /// Opens a recording. A damaged or unknown header is an error; damaged or cut-off frames are
    /// skipped and counted in `damage`.
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let file = crate::fsutil::open_regular(path)?;
        let file_len = file.metadata().map_err(|e| RecordError::io(path, e))?.len();
        let header = read_header(&file, path, file_len)?;
        let header_end = (FILE_HEADER_LEN as u64) + u64::from(le32_at(&file, 12).unwrap_or(0));
        let mut rec = Self {
            file,
            path: path.to_path_buf(),
            header,
            frames: Vec::new(),
            damage: Damage::default(),
            indexed: false,
            file_len,
            decompressor: zstd::bulk::Decompressor::new().map_err(|e| RecordError::io(path, e))?,
            stored: Vec::new(),
            raw: Vec::new(),
        };
        if let Some(frames) = rec.read_index(header_end) {
            rec.frames = frames;
            rec.indexed = true;
        } else {
            rec.scan(header_end);
        }
        if rec.frames.is_empty() {
            return Err(RecordError::Empty { path: path.into() });
        }
        Ok(rec)
    }

    pub fn info(&self) -> &HeaderInfo {
        &self.header.info
    }

    pub fn start(&self) -> Timestamp {
        self.frames.first().map_or(Timestamp(0), |f| f.time)
    }

    pub fn end(&self) -> Timestamp {
        self.frames.last().map_or(Timestamp(0), |f| f.time)
    }

    /// The last frame at or before `t` (the first frame when `t` is before the start).
    pub fn frame_at(&self, t: Timestamp) -> usize {
        self.frames
            .partition_point(|f| f.time <= t)
            .saturating_sub(1)
    }

    /// Frames that carry alerts or actions: `(time, flags)`, for the position bar.
    pub fn marks(&self) -> Vec<(Timestamp, u8)> {
        self.frames
            .iter()
            .filter(|f| f.flags != 0)
            .map(|f| (f.time, f.flags))
            .collect()
    }

    fn read_index(&mut self, header_end: u64) -> Option<Vec<FrameInfo>> {
        if self.file_len < header_end + (FRAME_HEADER_LEN + TAIL_LEN) as u64 {
            return None;
        }
        let mut tail = [0u8; TAIL_LEN];
        read_at(&self.file, &mut tail, self.file_len - TAIL_LEN as u64).ok()?;
        let offset = decode_tail(&tail)?;
        let mut hb = [0u8; FRAME_HEADER_LEN];
        read_at(&self.file, &mut hb, offset).ok()?;
        let h = FrameHeader::decode(&hb)?;
        if h.kind != FrameKind::Index
            || offset + FRAME_HEADER_LEN as u64 + u64::from(h.payload_len) + TAIL_LEN as u64
                != self.file_len
        {
            return None;
        }
        let index: IndexPayload = self.read_payload(offset, &h).ok()?;
        // Every frame before the index takes at least its header.
        let room = offset.saturating_sub(header_end) / FRAME_HEADER_LEN as u64;
        let frames = index.to_frames(room)?;
        let sound = frames.windows(2).all(|w| w[0].offset < w[1].offset)
            && frames.first().is_none_or(|f| f.offset >= header_end)
            && frames.last().is_none_or(|f| f.offset < offset);
        sound.then_some(frames)
    }

    /// Walks the frame headers from the start, resynchronising on the frame magic after damage.
    fn scan(&mut self, header_end: u64) {
        let len = self.file_len;
        let mut pos = header_end;
        let mut hb = [0u8; FRAME_HEADER_LEN];
        while pos < len {
            let left = len - pos;
            if left < FRAME_HEADER_LEN as u64 {
                if left == TAIL_LEN as u64 {
                    let mut tail = [0u8; TAIL_LEN];
                    if read_at(&self.file, &mut tail, pos).is_ok() && decode_tail(&tail).is_some() {
                        break;
                    }
                }
                self.damage.truncated_bytes += left;
                break;
            }
            if read_at(&self.file, &mut hb, pos).is_err() {
                self.damage.truncated_bytes += left;
                break;
            }
            match FrameHeader::decode(&hb) {
                Some(h) => {
                    let end = pos + FRAME_HEADER_LEN as u64 + u64::from(h.payload_len);
                    if end > len {
                        self.damage.truncated_bytes += left;
                        break;
                    }
                    if h.kind != FrameKind::Index {
                        self.frames.push(FrameInfo {
                            offset: pos,
                            seq: h.seq,
                            time: h.time,
                            kind: h.kind,
                            flags: h.flags,
                        });
                    }
                    pos = end;
                }
                None => match self.find_magic(pos + 1) {
                    Some(next) => {
                        self.damage.damaged_regions += 1;
                        self.damage.damaged_bytes += next - pos;
                        pos = next;
                    }
                    None => {
                        self.damage.truncated_bytes += left;
                        break;
                    }
                },
            }
        }
        // A frame whose time runs backwards was damaged in a way its CRC did not catch; keep
        // the times monotonic so that seeking by time stays sound.
        let mut t = Timestamp(i64::MIN);
        for f in &mut self.frames {
            f.time = f.time.max(t);
            t = f.time;
        }
    }

    /// The next offset at or after `from` where a sound frame header starts.
    fn find_magic(&self, mut from: u64) -> Option<u64> {
        const CHUNK: usize = 1 << 16;
        let mut buf = vec![0u8; CHUNK + FRAME_HEADER_LEN];
        while from < self.file_len {
            let n = ((self.file_len - from) as usize).min(buf.len());
            read_at(&self.file, &mut buf[..n], from).ok()?;
            let mut start = 0;
            while let Some(i) = memchr::memmem::find(&buf[start..n], FRAME_MAGIC) {
                let at = start + i;
                if at + FRAME_HEADER_LEN <= n {
                    if FrameHeader::decode(&buf[at..at + FRAME_HEADER_LEN]).is_some() {
                        return Some(from + at as u64);
                    }
                } else {
                    // The header straddles the chunk end; look again from here.
                    break;
                }
                start = at + 1;
            }
            if n < buf.len() {
                // At the end of the file: a magic too close to the end is not a whole header.
                return None;
            }
            from += (n - FRAME_HEADER_LEN) as u64;
        }
        None
    }

    fn read_payload<T: serde::de::DeserializeOwned>(
        &mut self,
        offset: u64,
        h: &FrameHeader,
    ) -> Result<T, FrameError> {
        self.load_payload(offset, h)?;
        ciborium::from_reader(self.raw.as_slice()).map_err(|_| FrameError::Decode)
    }

    /// Reads, checks and decompresses a frame's payload into `self.raw`.
    fn load_payload(&mut self, offset: u64, h: &FrameHeader) -> Result<(), FrameError> {
        let payload = &mut self.stored;
        payload.clear();
        payload.resize(h.payload_len as usize, 0);
        read_at(&self.file, payload, offset + FRAME_HEADER_LEN as u64)
            .map_err(|_| FrameError::Header)?;
        if crc32fast::hash(payload) != h.payload_crc {
            return Err(FrameError::Checksum);
        }
        // At most `raw_len` bytes come out (more is an error), and fewer is damage too.
        let raw = &mut self.raw;
        raw.clear();
        raw.resize(h.raw_len as usize, 0);
        let n = self
            .decompressor
            .decompress_to_buffer(payload.as_slice(), raw.as_mut_slice())
            .map_err(|_| FrameError::Decompress)?;
        if n != raw.len() {
            return Err(FrameError::Decompress);
        }
        Ok(())
    }

    /// Reads frame `i`'s header, checked against the index, and its payload's bytes (in
    /// `self.raw`).
    fn read_frame_raw(&mut self, i: usize) -> Result<FrameHeader, FrameError> {
        let h = self.frame_header(i)?;
        let offset = self.frames[i].offset;
        self.load_payload(offset, &h)?;
        Ok(h)
    }

    /// Reads only the alerts of frame `i`: the samples are skipped, not decoded.
    pub(crate) fn read_alerts(&mut self, i: usize) -> Result<Vec<AlertEvent>, FrameError> {
        self.read_frame_as::<FrameAlerts>(i).map(|(_, p)| p.alerts)
    }

    /// The operator actions of frame `i` alone, without decoding its samples.
    pub(crate) fn read_actions(&mut self, i: usize) -> Result<Vec<ActionRecord>, FrameError> {
        self.read_frame_as::<FrameActions>(i)
            .map(|(_, p)| p.actions)
    }

    fn read_frame_as<T: serde::de::DeserializeOwned>(
        &mut self,
        i: usize,
    ) -> Result<(FrameHeader, T), FrameError> {
        let h = self.frame_header(i)?;
        let payload = self.read_payload(self.frames[i].offset, &h)?;
        Ok((h, payload))
    }

    /// Frame `i`'s header, checked against the index.
    fn frame_header(&self, i: usize) -> Result<FrameHeader, FrameError> {
        let info = *self.frames.get(i).ok_or(FrameError::Header)?;
        let mut hb = [0u8; FRAME_HEADER_LEN];
        read_at(&self.file, &mut hb, info.offset).map_err(|_| FrameError::Header)?;
        let h = FrameHeader::decode(&hb).ok_or(FrameError::Header)?;
        if h.seq != info.seq || h.kind != info.kind {
            return Err(FrameError::Header);
        }
        Ok(h)
    }
}

fn le32_at(file: &File, offset: u64) -> Option<u32> {
    let mut b = [0u8; 4];
    read_at(file, &mut b, offset).ok()?;
    Some(le32(&b))
}

fn read_header(file: &File, path: &Path, file_len: u64) -> Result<FileHeader, RecordError> {
    let damaged = |what: &str| RecordError::DamagedHeader {
        path: path.into(),
        what: what.into(),
    };
    let mut fixed = [0u8; FILE_HEADER_LEN];
    if file_len < 8 {
        return Err(if file_len == 0 {
            damaged("the file is empty")
        } else {
            RecordError::NotARecording { path: path.into() }
        });
    }
    let n = (file_len as usize).min(FILE_HEADER_LEN);
    read_at(file, &mut fixed[..n], 0).map_err(|e| RecordError::io(path, e))?;
    if &fixed[0..8] != FILE_MAGIC {
        return Err(RecordError::NotARecording { path: path.into() });
    }
    if n < FILE_HEADER_LEN {
        return Err(damaged("cut off inside the header"));
    }
    let major = u16::from_le_bytes([fixed[8], fixed[9]]);
    let minor = u16::from_le_bytes([fixed[10], fixed[11]]);
    if major > format::MAJOR {
        return Err(RecordError::NewerMajor {
            path: path.into(),
            major,
            minor,
        });
    }
    let info_len = le32(&fixed[12..16]);
    if info_len > MAX_INFO_LEN || u64::from(info_len) + FILE_HEADER_LEN as u64 > file_len {
        return Err(damaged("impossible header length"));
    }
    let mut info = vec![0u8; info_len as usize];
    read_at(file, &mut info, FILE_HEADER_LEN as u64).map_err(|e| RecordError::io(path, e))?;
    let mut h = crc32fast::Hasher::new();
    h.update(&fixed[0..16]);
    h.update(&info);
    if h.finalize() != le32(&fixed[16..20]) {
        return Err(damaged("checksum mismatch"));
    }
    if major < format::MAJOR {
        return Err(damaged(&format!("unknown format major version {major}")));
    }
    let mut info: HeaderInfo = ciborium::from_reader(info.as_slice())
        .map_err(|e| damaged(&format!("unreadable header fields: {e}")))?;
    make_printable(&mut info.lbtop_version, 40);
    for s in info
        .router
        .iter_mut()
        .chain(info.pair.iter_mut().flatten())
        .chain(
            info.nodes
                .iter_mut()
                .flat_map(|n| [&mut n.name, &mut n.host]),
        )
    {
        make_printable(s, HOST_CHARS);
    }
    Ok(FileHeader { major, minor, info })
}

// ───────────────────────────── decoding ─────────────────────────────

/// One frame, decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    pub index: usize,
    pub time: Timestamp,
    pub events: Vec<SourceEvent>,
    pub alerts: Vec<AlertEvent>,
    pub actions: Vec<ActionRecord>,
}

type RouterLast = (
    Option<Last<Vec<VirtualServiceSample>>>,
    Option<Last<RouterSample>>,
);

/// By host number: FxHash, as the numbers are few and small (std's SipHash was a tenth of a
/// report's time).
type ById<T> = HashMap<u32, T, rustc_hash::FxBuildHasher>;

/// Frame payloads back to source events: host numbers to names, differences to samples.
#[derive(Default)]
struct Decoder {
    hosts: ById<HostDecl>,
    nodes: ById<Option<Last<NodeSample>>>,
    routers: ById<RouterLast>,
    last_seq: Option<u32>,
    /// Samples that could not be rebuilt because the frame they depend on was lost.
    dropped: u64,
    /// Nodes' samples without their per-core counters (`Player::skip_per_core`): the nodes'
    /// last samples are then kept here, without their cores, instead of in `nodes`.
    totals_only: bool,
    totals: ById<Option<LastTotals>>,
    /// Shapes already read, by their bytes.
    shapes: scan::Shapes,
}

impl Decoder {
    fn reset(&mut self) {
        self.nodes.clear();
        self.totals.clear();
        self.routers.clear();
        self.last_seq = None;
    }

    fn decode(&mut self, h: &FrameHeader, payload: PayloadRef<'_>, out: &mut Decoded) {
        let continues = self.last_seq.is_some_and(|s| s.wrapping_add(1) == h.seq);
        if h.kind == FrameKind::Key || !continues {
            // A new group, or a frame was lost: differences from before cannot be trusted.
            self.nodes.clear();
            self.totals.clear();
            self.routers.clear();
        }
        self.last_seq = Some(h.seq);
        // A recording can come from anywhere: its text is made printable as it is read, as a
        // live source's is when it arrives.
        for mut d in payload.hosts {
            make_printable(&mut d.name, HOST_CHARS);
            make_printable(&mut d.host, HOST_CHARS);
            self.hosts.insert(d.id, d);
        }
        out.events.reserve(payload.events.len());
        for entry in payload.events {
            let event = match entry {
                EntryRef::Node { host, sample } => self.node(host, sample),
                EntryRef::Router {
                    host,
                    services,
                    rest,
                } => self.router(host, services, rest),
                EntryRef::Other(Entry::Status {
                    host,
                    time,
                    status,
                    message,
                    gone,
                }) => {
                    let status = if gone { HostStatus::Gone } else { status };
                    self.status(host, time, status, message)
                }
                EntryRef::Other(Entry::Node { host, sample }) => self.node(
                    host,
                    PartRef {
                        shape: sample.shape,
                        nums: &sample.nums.0,
                    },
                ),
                EntryRef::Other(Entry::Router {
                    host,
                    services,
                    rest,
                }) => self.router(
                    host,
                    PartRef {
                        shape: services.shape,
                        nums: &services.nums.0,
                    },
                    PartRef {
                        shape: rest.shape,
                        nums: &rest.nums.0,
                    },
                ),
            };
            match event {
                Some(e) => out.events.push(e),
                None => self.dropped += 1,
            }
        }
        out.alerts = payload.alerts;
        for a in &mut out.alerts {
            make_printable(&mut a.subject, HOST_CHARS);
            make_printable(&mut a.message, MESSAGE_CHARS);
        }
        out.actions = payload.actions;
        for a in &mut out.actions {
            for s in [&mut a.user, &mut a.router, &mut a.service, &mut a.real] {
                make_printable(s, HOST_CHARS);
            }
            if let crate::record::ActionOutcome::Failed(m) = &mut a.result {
                make_printable(m, MESSAGE_CHARS);
            }
        }
    }

    /// A node's sample, rebuilt on the last one; none when that was lost or the host is not a
    /// declared node (and then the next must start over).
    fn node(&mut self, host: u32, sample: PartRef<'_, NodeSample>) -> Option<SourceEvent> {
        let s = if self.totals_only {
            advance_totals(
                self.totals.entry(host).or_default(),
                sample.shape,
                sample.nums,
            )
        } else {
            decode_raw(
                self.nodes.entry(host).or_default(),
                sample.shape,
                sample.nums,
            )
        };
        match (s, self.hosts.get(&host)) {
            (Some(mut s), Some(d)) if d.role == Role::Node => {
                s.make_printable();
                Some(SourceEvent::Node {
                    name: d.name.clone(),
                    host: d.host.clone(),
                    report: Report::Sample(s),
                })
            }
            _ => {
                if self.totals_only {
                    self.totals.insert(host, None);
                } else {
                    self.nodes.insert(host, None);
                }
                None
            }
        }
    }

    /// A router's sample from its two parts, as [`Decoder::node`] does for a node.
    fn router(
        &mut self,
        host: u32,
        services: PartRef<'_, Vec<VirtualServiceSample>>,
        rest: PartRef<'_, RouterSample>,
    ) -> Option<SourceEvent> {
        let (ls, lr) = self.routers.entry(host).or_default();
        let services = decode_raw(ls, services.shape, services.nums);
        let rest = decode_raw(lr, rest.shape, rest.nums);
        match (services, rest, self.hosts.get(&host)) {
            (Some(services), Some(rest), Some(d)) if d.role == Role::Router => {
                let mut sample = RouterSample { services, ..rest };
                sample.make_printable();
                Some(SourceEvent::Router {
                    host: d.host.clone(),
                    report: Report::Sample(sample),
                })
            }
            _ => {
                *ls = None;
                *lr = None;
                None
            }
        }
    }

    /// A declared host's status. A node gone from its source takes its delta base with it, as
    /// the writer's does: its next sample, if it comes back, is whole.
    fn status(
        &mut self,
        host: u32,
        time: Timestamp,
        status: HostStatus,
        mut message: Option<String>,
    ) -> Option<SourceEvent> {
        if let Some(m) = &mut message {
            make_printable(m, MESSAGE_CHARS);
        }
        if status == HostStatus::Gone {
            self.nodes.remove(&host);
            self.totals.remove(&host);
        }
        self.hosts.get(&host).map(|d| match d.role {
            Role::Router => SourceEvent::Router {
                host: d.host.clone(),
                report: Report::Status {
                    time,
                    status,
                    message,
                },
            },
            Role::Node => SourceEvent::Node {
                name: d.name.clone(),
                host: d.host.clone(),
                report: Report::Status {
                    time,
                    status,
                    message,
                },
            },
        })
    }
}

/// Reads and decodes frame `i`: its numbers straight from the frame's bytes when they are laid
/// out as lbtop writes them (`scan`), else through ciborium, which then decides.
fn decode_frame(
    recording: &mut Recording,
    decoder: &mut Decoder,
    i: usize,
) -> Result<Decoded, FrameError> {
    let h = recording.read_frame_raw(i)?;
    let mut out = Decoded {
        index: i,
        time: recording.frames[i].time,
        ..Decoded::default()
    };
    let bytes = recording.raw.as_slice();
    match scan::payload(bytes, &mut decoder.shapes) {
        Some(payload) => decoder.decode(&h, payload, &mut out),
        None => {
            let p: FramePayload = ciborium::from_reader(bytes).map_err(|_| FrameError::Decode)?;
            decoder.decode(&h, scan::owned(p), &mut out);
        }
    }
    Ok(out)
}

/// Plays a recording frame by frame, and seeks.
pub struct Player {
    pub recording: Recording,
    decoder: Decoder,
    next: usize,
    /// Frames found damaged while reading (beyond those found at open).
    pub damaged_frames: u64,
    /// The first of those: its number, where it starts in the file and why it was skipped.
    first_damaged: Option<(usize, u64, String)>,
    /// Frames read whole.
    pub decoded_frames: u64,
    /// The alerts of the frames flagged as carrying some, by frame, as far as they have been
    /// read: while playing, or for a seek (`alerts_before`). Kept across seeks.
    alerts: BTreeMap<usize, Vec<AlertEvent>>,
}

impl Player {
    pub fn new(recording: Recording) -> Self {
        Self {
            recording,
            decoder: Decoder::default(),
            next: 0,
            damaged_frames: 0,
            first_damaged: None,
            decoded_frames: 0,
            alerts: BTreeMap::new(),
        }
    }

    pub fn open(path: &Path) -> Result<Self, RecordError> {
        Recording::open(path).map(Self::new)
    }

    /// Nodes' samples come without their per-core counters from here on: `cpus` and `cpu_ids`
    /// empty, their count as `stat.online_cores` (as from a source that gives only the
    /// per-node sums), every other number exact. For readers that need only the nodes' totals
    /// (the HTML report): a tenth of the numbers to rebuild and to derive. Replay and the
    /// exports keep every core.
    pub fn skip_per_core(&mut self) {
        self.decoder.totals_only = true;
    }

    /// The number of the next frame `next_frame` returns.
    pub fn position(&self) -> usize {
        self.next
    }

    pub fn len(&self) -> usize {
        self.recording.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recording.frames.is_empty()
    }

    pub fn at_end(&self) -> bool {
        self.next >= self.len()
    }

    /// The time of the next frame, if any.
    pub(crate) fn next_time(&self) -> Option<Timestamp> {
        self.recording.frames.get(self.next).map(|f| f.time)
    }

    /// Decodes the next frame. Damaged frames are skipped and counted.
    pub fn next_frame(&mut self) -> Option<Decoded> {
        while self.next < self.len() {
            let i = self.next;
            self.next += 1;
            match decode_frame(&mut self.recording, &mut self.decoder, i) {
                Ok(out) => {
                    self.decoded_frames += 1;
                    if !out.alerts.is_empty() {
                        self.alerts.entry(i).or_insert_with(|| out.alerts.clone());
                    }
                    return Some(out);
                }
                Err(e) => {
                    tracing::warn!(
                        "{}: frame {i} skipped: {e:?}",
                        self.recording.path.display()
                    );
                    self.damaged_frames += 1;
                    if self.first_damaged.is_none() {
                        let offset = self.recording.frames.get(i).map_or(0, |f| f.offset);
                        self.first_damaged = Some((i, offset, format!("{e:?}")));
                    }
                    self.decoder.last_seq = None;
                }
            }
        }
        None
    }

    /// The keyframe to start from so that frame `target` comes with `warmup` of history before it
    /// (for rates, sparklines and alert levels).
    pub(crate) fn warmup_start(&self, target: usize, warmup_ms: i64) -> usize {
        let frames = &self.recording.frames;
        let Some(t) = frames.get(target).map(|f| f.time) else {
            return 0;
        };
        let want = Timestamp(t.0.saturating_sub(warmup_ms));
        let upto = frames.partition_point(|f| f.time <= want).min(target + 1);
        frames[..upto]
            .iter()
            .rposition(|f| f.kind == FrameKind::Key)
            .unwrap_or(0)
    }

    /// Goes to frame `target`: decodes from the keyframe `warmup` before it, handing every frame
    /// up to and including `target` to `feed`. The next frame is then `target + 1`.
    pub fn seek(&mut self, target: usize, warmup_ms: i64, mut feed: impl FnMut(Decoded)) {
        let target = target.min(self.len().saturating_sub(1));
        let start = self.warmup_start(target, warmup_ms);
        self.decoder.reset();
        self.next = start;
        while self.next <= target {
            match self.next_frame() {
                Some(d) => feed(d),
                None => break,
            }
        }
    }

    /// The alert events recorded in frames `0..frame`, oldest first: what the live view raised
    /// and cleared up to there. Frames the index flags as carrying alerts are read for their
    /// alerts only (the samples are skipped), once per player; a damaged one gives none.
    pub(crate) fn alerts_before(&mut self, frame: usize) -> Vec<AlertEvent> {
        let upto = frame.min(self.len());
        let mut out = Vec::new();
        for i in 0..upto {
            if self.recording.frames[i].flags & flags::ALERTS == 0 {
                continue;
            }
            if !self.alerts.contains_key(&i) {
                let alerts = self.recording.read_alerts(i).unwrap_or_else(|e| {
                    tracing::warn!(
                        "{}: the alerts of frame {i} are unreadable: {e:?}",
                        self.recording.path.display()
                    );
                    Vec::new()
                });
                self.alerts.insert(i, alerts);
            }
            if let Some(a) = self.alerts.get(&i) {
                out.extend(a.iter().cloned());
            }
        }
        out
    }

    /// Every operator action recorded before frame `frame`, oldest first: a seek replays them
    /// so that a real server drained earlier shows as draining or drained after it.
    pub fn actions_before(&mut self, frame: usize) -> Vec<ActionRecord> {
        let upto = frame.min(self.len());
        let mut out = Vec::new();
        for i in 0..upto {
            if self.recording.frames[i].flags & flags::ACTION == 0 {
                continue;
            }
            match self.recording.read_actions(i) {
                Ok(actions) => out.extend(actions),
                Err(e) => tracing::warn!(
                    "{}: the actions of frame {i} are unreadable: {e:?}",
                    self.recording.path.display()
                ),
            }
        }
        out
    }

    /// Goes back to the start, before the first frame.
    pub(crate) fn rewind(&mut self) {
        self.decoder.reset();
        self.next = 0;
    }

    /// A one-line account of everything skipped, or `None` when the file was sound.
    pub fn damage_report(&self) -> Option<String> {
        let d = &self.recording.damage;
        let mut parts = Vec::new();
        let frames = d.damaged_regions + self.damaged_frames;
        if frames > 0 {
            let first = self
                .first_damaged
                .as_ref()
                .map(|(i, offset, why)| {
                    format!(
                        " (the first found in reading: frame {i} at byte {offset}, {})",
                        crate::model::text::printable(why, 80)
                    )
                })
                .unwrap_or_default();
            parts.push(format!(
                "{frames} damaged frame{} skipped{first}",
                if frames == 1 { "" } else { "s" }
            ));
        }
        if self.decoder.dropped > 0 {
            parts.push(format!(
                "{} sample{} that depended on them dropped",
                self.decoder.dropped,
                if self.decoder.dropped == 1 { "" } else { "s" }
            ));
        }
        if d.truncated_bytes > 0 {
            parts.push(format!(
                "the recording ends in a cut-off frame ({} bytes ignored)",
                d.truncated_bytes
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{State, StateOptions};
    use crate::record::writer::WriterOptions;
    use crate::record::{Item, Writer};
    use crate::testing::scripted::{ClusterShape, ScriptedCluster};
    use crate::testing::{record_scripted, scripted_info};

    /// A recording of a small cluster: 3 nodes × 4 cores, 2 services × 3 real servers, 70
    /// polls (three keyframe groups), an alert and a status among them.
    fn recording(dir: &Path) -> PathBuf {
        let shape = ClusterShape {
            nodes: 3,
            cores: 4,
            services: 2,
            reals_per_service: 3,
        };
        let opts = WriterOptions::default();
        let path = dir.join("small.lbrec");
        let file = File::create(&path).expect("create");
        let mut w = Writer::new(file, scripted_info(shape, &opts), opts).expect("writer");
        let mut c = ScriptedCluster::new(shape, 7);
        let mut s = State::new(StateOptions::default());
        record_scripted(&mut w, &mut c, &mut s, 40).expect("record");
        w.push(Item::Event(SourceEvent::Node {
            name: ScriptedCluster::node_name(1),
            host: ScriptedCluster::node_address(1).to_string(),
            report: Report::Status {
                time: c.time(),
                status: HostStatus::Unreachable,
                message: Some("timed out".into()),
            },
        }));
        record_scripted(&mut w, &mut c, &mut s, 30).expect("record");
        w.finish().expect("finish");
        path
    }

    /// Every frame, read in place (`scan`) and through ciborium, with and without the cores.
    fn both_ways(path: &Path, totals_only: bool) -> (Vec<Decoded>, Vec<Decoded>) {
        let mut rec = Recording::open(path).expect("open");
        let mut fast = Decoder {
            totals_only,
            ..Decoder::default()
        };
        let mut whole = Decoder {
            totals_only,
            ..Decoder::default()
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..rec.frames.len() {
            a.push(decode_frame(&mut rec, &mut fast, i).expect("in place"));
            let h = rec.read_frame_raw(i).expect("frame");
            // The in-place reader took every frame (else the comparison would be ciborium's
            // with itself).
            assert!(scan::payload(&rec.raw, &mut scan::Shapes::default()).is_some());
            let p: FramePayload = ciborium::from_reader(rec.raw.as_slice()).expect("cbor");
            let mut out = Decoded {
                index: i,
                time: rec.frames[i].time,
                ..Decoded::default()
            };
            whole.decode(&h, scan::owned(p), &mut out);
            b.push(out);
        }
        (a, b)
    }

    #[test]
    fn frames_read_in_place_are_what_ciborium_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = recording(dir.path());
        let (fast, whole) = both_ways(&path, false);
        assert_eq!(fast.len(), 70);
        assert_eq!(fast, whole);
        let statuses = fast
            .iter()
            .flat_map(|d| &d.events)
            .filter(|e| {
                matches!(
                    e,
                    SourceEvent::Node {
                        report: Report::Status { .. },
                        ..
                    }
                )
            })
            .count();
        assert_eq!(statuses, 1);
        // Without the cores: the same samples, cores dropped and counted.
        let (light, light_whole) = both_ways(&path, true);
        assert_eq!(light, light_whole);
        for (l, f) in light.iter().zip(&fast) {
            assert_eq!(l.events.len(), f.events.len());
            for (le, fe) in l.events.iter().zip(&f.events) {
                if let (
                    SourceEvent::Node {
                        report: Report::Sample(ls),
                        ..
                    },
                    SourceEvent::Node {
                        report: Report::Sample(fs),
                        ..
                    },
                ) = (le, fe)
                {
                    let mut want = fs.clone();
                    want.stat.cpus.clear();
                    want.stat.cpu_ids.clear();
                    want.stat.online_cores = Some(4);
                    assert_eq!(*ls, want);
                } else {
                    assert_eq!(le, fe);
                }
            }
        }
    }
}
