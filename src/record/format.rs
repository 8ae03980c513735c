//! The `.lbrec` file format, byte for byte (documented in `docs/recording-format.md`): a header,
//! then append-only frames, each with its length, CRC32s and a zstd-compressed CBOR payload, and on
//! a clean close an index frame and a fixed tail pointing at it.

use serde::{Deserialize, Serialize};

use crate::model::alert::AlertEvent;
use crate::model::sample::{HostStatus, NodeSample, RouterSample, Timestamp, VirtualServiceSample};

use super::ActionRecord;

/// The first eight bytes of every recording.
pub const FILE_MAGIC: &[u8; 8] = b"LBTOPREC";
/// Files of another major version are refused; a higher minor only adds fields, which are ignored.
pub const MAJOR: u16 = 1;
pub(crate) const MINOR: u16 = 1;
/// Magic, major, minor, info length, CRC32.
pub(crate) const FILE_HEADER_LEN: usize = 20;
/// The longest header info accepted; a bigger length means a damaged header.
pub(crate) const MAX_INFO_LEN: u32 = 1 << 20;

/// The first four bytes of every frame; a reader looks for them to find its feet after damage.
pub(crate) const FRAME_MAGIC: &[u8; 4] = b"LBFR";
pub const FRAME_HEADER_LEN: usize = 36;
/// The biggest payload accepted, compressed or not; a bigger length means a damaged frame.
pub(crate) const MAX_PAYLOAD: u32 = 256 << 20;

/// A payload may decompress to at most this many times its size once past [`SMALL_RAW`]: lbtop's
/// frames compress 4 to 15 times, while zstd can blow a few KB up to 256 MiB (a crafted frame of
/// 8 KB did). So a frame's memory cost stays within a small multiple of its size on disk.
pub(crate) const MAX_RATIO: u32 = 1024;
/// Below this, any ratio is accepted (small frames cost little whatever they claim).
pub(crate) const SMALL_RAW: u32 = 16 << 20;

/// The tail a clean close writes last: magic, offset of the index frame, CRC32 of those 12 bytes.
pub(crate) const TAIL_MAGIC: &[u8; 4] = b"LBIX";
pub const TAIL_LEN: usize = 16;

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Starts a keyframe group: every host's first sample in the group is whole.
    Key,
    /// Samples stored as differences from the same host's previous sample in the group.
    Delta,
    /// The index, written once on a clean close.
    Index,
}

impl FrameKind {
    pub fn byte(self) -> u8 {
        match self {
            Self::Key => 1,
            Self::Delta => 2,
            Self::Index => 3,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Key),
            2 => Some(Self::Delta),
            3 => Some(Self::Index),
            _ => None,
        }
    }
}

/// Frame flags, so that marks for the position bar need only the frame headers.
pub mod flags {
    /// An alert was raised at warning level.
    pub const WARNING: u8 = 1;
    /// An alert was raised at critical level.
    pub const CRITICAL: u8 = 2;
    /// An operator action (drain, weight change) was recorded.
    pub const ACTION: u8 = 4;
    /// An alert cleared.
    pub(crate) const CLEARED: u8 = 8;
    /// Any of the alert flags: the frame carries alert events.
    pub(crate) const ALERTS: u8 = WARNING | CRITICAL | CLEARED;
}

/// A frame's fixed-size header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: FrameKind,
    pub flags: u8,
    /// Counts frames from 0; a gap tells a reader that a frame was lost.
    pub seq: u32,
    /// The newest item's time, never before the previous frame's.
    pub time: Timestamp,
    pub payload_len: u32,
    pub raw_len: u32,
    pub payload_crc: u32,
}

impl FrameHeader {
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut b = [0u8; FRAME_HEADER_LEN];
        b[0..4].copy_from_slice(FRAME_MAGIC);
        b[4] = self.kind.byte();
        b[5] = self.flags;
        b[8..12].copy_from_slice(&self.seq.to_le_bytes());
        b[12..20].copy_from_slice(&self.time.0.to_le_bytes());
        b[20..24].copy_from_slice(&self.payload_len.to_le_bytes());
        b[24..28].copy_from_slice(&self.raw_len.to_le_bytes());
        b[28..32].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[0..32]);
        b[32..36].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// `None` unless the magic, the header CRC, the kind and the lengths are all sound (see
    /// [`MAX_RATIO`]).
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < FRAME_HEADER_LEN || &b[0..4] != FRAME_MAGIC {
            return None;
        }
        if crc32fast::hash(&b[0..32]) != le32(&b[32..36]) {
            return None;
        }
        let h = Self {
            kind: FrameKind::from_byte(b[4])?,
            flags: b[5],
            seq: le32(&b[8..12]),
            time: Timestamp(i64::from_le_bytes(b[12..20].try_into().ok()?)),
            payload_len: le32(&b[20..24]),
            raw_len: le32(&b[24..28]),
            payload_crc: le32(&b[28..32]),
        };
        let raw_bound = SMALL_RAW.max(h.payload_len.saturating_mul(MAX_RATIO));
        (h.payload_len <= MAX_PAYLOAD && h.raw_len <= MAX_PAYLOAD.min(raw_bound)).then_some(h)
    }
}

pub(crate) fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The tail: where the index frame starts.
pub(crate) fn encode_tail(index_offset: u64) -> [u8; TAIL_LEN] {
    let mut b = [0u8; TAIL_LEN];
    b[0..4].copy_from_slice(TAIL_MAGIC);
    b[4..12].copy_from_slice(&index_offset.to_le_bytes());
    let crc = crc32fast::hash(&b[0..12]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    b
}

pub fn decode_tail(b: &[u8]) -> Option<u64> {
    if b.len() != TAIL_LEN || &b[0..4] != TAIL_MAGIC {
        return None;
    }
    (crc32fast::hash(&b[0..12]) == le32(&b[12..16]))
        .then(|| u64::from_le_bytes(b[4..12].try_into().unwrap_or_default()))
}

// ───────────────────────────── header info ─────────────────────────────

/// A node named in the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDecl {
    pub name: String,
    pub host: String,
}

/// What the header says about the recording. CBOR; fields unknown to this version are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderInfo {
    /// The lbtop that wrote the file.
    pub lbtop_version: String,
    pub created: Timestamp,
    pub interval_ms: u64,
    /// How often a keyframe group starts.
    pub keyframe_every_ms: u64,
    #[serde(default)]
    pub router: Option<String>,
    #[serde(default)]
    pub nodes: Vec<NodeDecl>,
    /// The HA pair's two directors, when two were watched (`--router a,b`); `router` is the
    /// first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<[String; 2]>,
}

/// The file header: format version and the info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHeader {
    pub major: u16,
    pub minor: u16,
    pub info: HeaderInfo,
}

impl FileHeader {
    pub fn encode(&self) -> Vec<u8> {
        let mut info = Vec::new();
        // Serialising plain owned data into a Vec cannot fail.
        ciborium::into_writer(&self.info, &mut info).unwrap_or_default();
        let mut b = Vec::with_capacity(FILE_HEADER_LEN + info.len());
        b.extend_from_slice(FILE_MAGIC);
        b.extend_from_slice(&self.major.to_le_bytes());
        b.extend_from_slice(&self.minor.to_le_bytes());
        b.extend_from_slice(&(info.len() as u32).to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&b);
        h.update(&info);
        b.extend_from_slice(&h.finalize().to_le_bytes());
        b.extend_from_slice(&info);
        b
    }
}

// ───────────────────────────── payloads ─────────────────────────────

pub use crate::model::delta::{Packed, Part};

/// Whether a host is the router or a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Router,
    Node,
}

/// Gives a host its number. Repeated in the first frame of every keyframe group that uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostDecl {
    pub id: u32,
    pub role: Role,
    pub name: String,
    pub host: String,
}

/// One source event, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Entry {
    Node {
        host: u32,
        sample: Part<NodeSample>,
    },
    Router {
        host: u32,
        /// The services and their real servers.
        services: Part<Vec<VirtualServiceSample>>,
        /// Everything else, with `services` left empty.
        rest: Part<RouterSample>,
    },
    Status {
        host: u32,
        time: Timestamp,
        /// Never `gone`: a reader of an earlier 1.y would refuse the frame. A forgotten node is
        /// stored as `unreachable` with `gone` set, which such a reader ignores.
        status: HostStatus,
        #[serde(default)]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        gone: bool,
    },
}

/// What one frame carries, in the order it happened within each list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FramePayload {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostDecl>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Entry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionRecord>,
}

/// Only the alerts of a frame's payload; the rest (hosts, events, actions) is skipped unread.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct FrameAlerts {
    #[serde(default)]
    pub alerts: Vec<AlertEvent>,
}

/// Only the operator actions of a frame's payload; the rest is skipped unread.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct FrameActions {
    #[serde(default)]
    pub actions: Vec<ActionRecord>,
}

/// The index frame's payload: every frame's offset, time, kind and flags, packed as columns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct IndexPayload {
    pub count: u64,
    /// Per frame: offset − previous offset, time − previous time, kind, flags (zigzag varints).
    pub frames: Packed,
}

/// Where a frame is and what its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    pub offset: u64,
    pub seq: u32,
    pub time: Timestamp,
    pub kind: FrameKind,
    pub flags: u8,
}

impl IndexPayload {
    pub(crate) fn from_frames(frames: &[FrameInfo]) -> Self {
        let mut words = Vec::with_capacity(frames.len() * 5);
        let (mut off, mut time) = (0u64, 0i64);
        for f in frames {
            words.push(f.offset.wrapping_sub(off));
            words.push(f.time.0.wrapping_sub(time) as u64);
            words.push(u64::from(f.seq));
            words.push(u64::from(f.kind.byte()));
            words.push(u64::from(f.flags));
            off = f.offset;
            time = f.time.0;
        }
        let mut packed = Vec::new();
        crate::model::delta::pack(&words, None, &mut packed);
        Self {
            count: frames.len() as u64,
            frames: Packed(packed),
        }
    }

    /// The frames; None when the index does not decode or claims more than `max_frames` (what
    /// the bytes before it can hold: a claim is not believed beyond that, as unpacking it would
    /// take memory the file does not justify).
    pub(crate) fn to_frames(&self, max_frames: u64) -> Option<Vec<FrameInfo>> {
        if self.count > max_frames {
            return None;
        }
        let mut words = Vec::new();
        let count = usize::try_from(self.count.checked_mul(5)?).ok()?;
        crate::model::delta::unpack(&self.frames.0, None, count, &mut words)?;
        let (mut off, mut time) = (0u64, 0i64);
        let mut out = Vec::with_capacity(self.count as usize);
        for w in words.chunks_exact(5) {
            off = off.wrapping_add(w[0]);
            time = time.wrapping_add(w[1] as i64);
            out.push(FrameInfo {
                offset: off,
                seq: u32::try_from(w[2]).ok()?,
                time: Timestamp(time),
                kind: FrameKind::from_byte(u8::try_from(w[3]).ok()?)?,
                flags: u8::try_from(w[4]).ok()?,
            });
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_round_trips_and_any_flipped_bit_is_caught() {
        let h = FrameHeader {
            kind: FrameKind::Delta,
            flags: flags::CRITICAL,
            seq: 7,
            time: Timestamp(1_767_225_600_000),
            payload_len: 1234,
            raw_len: 5678,
            payload_crc: 0xdead_beef,
        };
        let b = h.encode();
        assert_eq!(FrameHeader::decode(&b), Some(h));
        for bit in 0..FRAME_HEADER_LEN * 8 {
            let mut d = b;
            d[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(FrameHeader::decode(&d), None, "bit {bit}");
        }
    }

    #[test]
    fn a_frame_claiming_to_decompress_far_beyond_its_size_is_unsound() {
        let h = |payload_len: u32, raw_len: u32| FrameHeader {
            kind: FrameKind::Delta,
            flags: 0,
            seq: 1,
            time: Timestamp(0),
            payload_len,
            raw_len,
            payload_crc: 0,
        };
        let sound = |x: FrameHeader| FrameHeader::decode(&x.encode()).is_some();
        assert!(sound(h(8 << 10, SMALL_RAW)), "small frames: any ratio");
        assert!(!sound(h(8 << 10, 250 << 20)), "8 KB claiming 250 MiB");
        assert!(
            sound(h(1 << 20, 200 << 20)),
            "1 MiB to 200 MiB: within the ratio"
        );
        assert!(!sound(h(1 << 20, MAX_PAYLOAD + 1)));
    }

    #[test]
    fn index_round_trips() {
        let frames: Vec<FrameInfo> = (0..100u32)
            .map(|i| FrameInfo {
                offset: 100 + u64::from(i) * 777,
                seq: i,
                time: Timestamp(1000 * i64::from(i)),
                kind: if i % 30 == 0 {
                    FrameKind::Key
                } else {
                    FrameKind::Delta
                },
                flags: (i % 3) as u8,
            })
            .collect();
        let index = IndexPayload::from_frames(&frames);
        // More frames than the file before the index can hold: not believed.
        assert_eq!(index.to_frames(99), None);
        assert_eq!(index.to_frames(100), Some(frames));
    }
}
