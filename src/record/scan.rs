//! A frame payload read without copying its numbers: the CBOR is walked in place, each sample's
//! packed numbers handed out as a slice of the frame, and only the rarer parts (host
//! declarations, shapes, statuses, alerts, actions) deserialised, each from its own slice. What
//! this reader does not expect (another layout, indefinite lengths, a field twice) makes it give
//! up, and the caller then decodes the frame whole with ciborium, which decides.
//!
//! Shapes are stored whole at the start of every keyframe group (every 30 s), and are mostly
//! the same bytes each time: `Shapes` keeps the ones already deserialised, by their bytes.
//!
//! Hand-written rather than a CBOR crate: it needs a dozen lines of CBOR heads and an iterative
//! skip with a depth bound, and the values it hands on still go through the same serde types.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;
use serde::de::DeserializeOwned;

use crate::model::alert::AlertEvent;
use crate::model::sample::{NodeSample, RouterSample, VirtualServiceSample};

use super::ActionRecord;
use super::format::{Entry, FramePayload, HostDecl};

/// One part of a sample, its numbers borrowed from the frame.
pub(crate) struct PartRef<'a, T> {
    pub shape: Option<T>,
    pub nums: &'a [u8],
}

/// One stored event, its numbers borrowed from the frame.
pub(crate) enum EntryRef<'a> {
    Node {
        host: u32,
        sample: PartRef<'a, NodeSample>,
    },
    Router {
        host: u32,
        services: PartRef<'a, Vec<VirtualServiceSample>>,
        rest: PartRef<'a, RouterSample>,
    },
    /// Read whole: a status (rare), or any entry when the frame was decoded by ciborium.
    Other(Entry),
}

/// A frame's payload with its numbers borrowed: what `format::FramePayload` holds.
#[derive(Default)]
pub(crate) struct PayloadRef<'a> {
    pub hosts: Vec<HostDecl>,
    pub events: Vec<EntryRef<'a>>,
    pub alerts: Vec<AlertEvent>,
    pub actions: Vec<ActionRecord>,
}

/// A payload ciborium decoded whole, in the same form (every entry as `Other`).
pub(crate) fn owned(p: FramePayload) -> PayloadRef<'static> {
    PayloadRef {
        hosts: p.hosts,
        events: p.events.into_iter().map(EntryRef::Other).collect(),
        alerts: p.alerts,
        actions: p.actions,
    }
}

/// Shapes already deserialised, by their stored bytes (the same bytes give the same value).
#[derive(Default)]
pub(crate) struct Shapes {
    nodes: Memo<NodeSample>,
    services: Memo<Vec<VirtualServiceSample>>,
    rest: Memo<RouterSample>,
}

/// The most bytes of shapes one memo keeps; past it, it starts over.
const MEMO_BYTES: usize = 16 << 20;

struct Memo<T> {
    values: HashMap<Box<[u8]>, T, FxBuildHasher>,
    bytes: usize,
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Self {
            values: HashMap::default(),
            bytes: 0,
        }
    }
}

impl<T: DeserializeOwned + Clone> Memo<T> {
    fn get(&mut self, raw: &[u8]) -> Option<T> {
        if let Some(v) = self.values.get(raw) {
            return Some(v.clone());
        }
        let v: T = ciborium::from_reader(raw).ok()?;
        if self.bytes + raw.len() > MEMO_BYTES {
            self.values.clear();
            self.bytes = 0;
        }
        self.bytes += raw.len();
        self.values.insert(raw.into(), v.clone());
        Some(v)
    }
}

/// Deeper nesting than this is not a frame lbtop wrote (its deepest is a handful of levels).
const MAX_DEPTH: usize = 64;

/// Reads `bytes` as a frame payload; `None` when it is not laid out as lbtop writes it.
pub(crate) fn payload<'a>(bytes: &'a [u8], shapes: &mut Shapes) -> Option<PayloadRef<'a>> {
    let mut c = Cursor {
        b: bytes,
        i: 0,
        shapes,
    };
    let mut out = PayloadRef::default();
    let mut seen = [false; 4];
    for _ in 0..c.map()? {
        let key = c.text()?;
        let slot = ["hosts", "events", "alerts", "actions"]
            .iter()
            .position(|k| *k == key);
        if let Some(k) = slot
            && std::mem::replace(&mut seen[k], true)
        {
            return None;
        }
        match slot {
            Some(0) => out.hosts = c.value()?,
            Some(1) => {
                let n = c.array()?;
                // Room for what the file claims only up to a little: an entry takes at least a
                // byte here but hundreds once decoded, and the vector grows as entries parse.
                out.events = Vec::with_capacity(n.min(c.left()).min(1024));
                for _ in 0..n {
                    let entry = c.entry()?;
                    out.events.push(entry);
                }
            }
            Some(2) => out.alerts = c.value()?,
            Some(3) => out.actions = c.value()?,
            _ => c.skip()?,
        }
    }
    Some(out)
}

struct Cursor<'a, 's> {
    b: &'a [u8],
    i: usize,
    shapes: &'s mut Shapes,
}

/// CBOR major types.
const UINT: u8 = 0;
const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;

impl<'a> Cursor<'a, '_> {
    fn left(&self) -> usize {
        self.b.len().saturating_sub(self.i)
    }

    /// An item's head: its major type and argument (`None` for an indefinite length, which
    /// this reader leaves to ciborium, as every reserved or malformed head).
    fn head(&mut self) -> Option<(u8, u64)> {
        let first = *self.b.get(self.i)?;
        self.i += 1;
        let (major, info) = (first >> 5, first & 0x1f);
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let n = 1usize << (info - 24);
                let raw = self.b.get(self.i..self.i + n)?;
                self.i += n;
                raw.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x))
            }
            _ => return None,
        };
        Some((major, arg))
    }

    fn expect(&mut self, major: u8) -> Option<u64> {
        let (m, arg) = self.head()?;
        (m == major).then_some(arg)
    }

    fn len(&mut self, major: u8) -> Option<usize> {
        usize::try_from(self.expect(major)?).ok()
    }

    fn map(&mut self) -> Option<usize> {
        self.len(MAP)
    }

    fn array(&mut self) -> Option<usize> {
        self.len(ARRAY)
    }

    fn raw(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(s)
    }

    fn text(&mut self) -> Option<&'a str> {
        let n = self.len(TEXT)?;
        std::str::from_utf8(self.raw(n)?).ok()
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len(BYTES)?;
        self.raw(n)
    }

    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.expect(UINT)?).ok()
    }

    /// Steps over one item, nested ones included, without recursion.
    fn skip(&mut self) -> Option<()> {
        // Items still to step over at each open level.
        let mut pending: Vec<u64> = vec![1];
        while let Some(top) = pending.last_mut() {
            if *top == 0 {
                pending.pop();
                continue;
            }
            *top -= 1;
            let (major, arg) = self.head()?;
            match major {
                BYTES | TEXT => {
                    self.raw(usize::try_from(arg).ok()?)?;
                }
                ARRAY | MAP => {
                    if pending.len() >= MAX_DEPTH {
                        return None;
                    }
                    let items = if major == MAP {
                        arg.checked_mul(2)?
                    } else {
                        arg
                    };
                    pending.push(items);
                }
                // A tag is followed by the item it tags.
                6 => *top += 1,
                _ => {}
            }
        }
        Some(())
    }

    /// The next item's bytes, stepped over.
    fn item(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        self.skip()?;
        self.b.get(start..self.i)
    }

    /// The next item, stepped over and deserialised from its own bytes.
    fn value<T: DeserializeOwned>(&mut self) -> Option<T> {
        ciborium::from_reader(self.item()?).ok()
    }

    /// A part: `{"shape"?: T, "nums": bytes}`, its shape from `memo`.
    fn part<T: DeserializeOwned + Clone>(
        &mut self,
        memo: impl Fn(&mut Shapes) -> &mut Memo<T>,
    ) -> Option<PartRef<'a, T>> {
        let (mut shape, mut nums) = (None, None);
        for _ in 0..self.map()? {
            match self.text()? {
                "shape" if shape.is_none() => {
                    let raw = self.item()?;
                    shape = Some(memo(self.shapes).get(raw)?);
                }
                "nums" if nums.is_none() => nums = Some(self.bytes()?),
                "shape" | "nums" => return None,
                _ => self.skip()?,
            }
        }
        Some(PartRef { shape, nums: nums? })
    }

    /// One event: `{"node": {...}}`, `{"router": {...}}`, or another, read whole.
    fn entry(&mut self) -> Option<EntryRef<'a>> {
        let start = self.i;
        if self.map()? != 1 {
            return None;
        }
        let entry = match self.text()? {
            "node" => {
                let (mut host, mut sample) = (None, None);
                for _ in 0..self.map()? {
                    match self.text()? {
                        "host" if host.is_none() => host = Some(self.u32()?),
                        "sample" if sample.is_none() => {
                            sample = Some(self.part(|s| &mut s.nodes)?);
                        }
                        "host" | "sample" => return None,
                        _ => self.skip()?,
                    }
                }
                EntryRef::Node {
                    host: host?,
                    sample: sample?,
                }
            }
            "router" => {
                let (mut host, mut services, mut rest) = (None, None, None);
                for _ in 0..self.map()? {
                    match self.text()? {
                        "host" if host.is_none() => host = Some(self.u32()?),
                        "services" if services.is_none() => {
                            services = Some(self.part(|s| &mut s.services)?);
                        }
                        "rest" if rest.is_none() => rest = Some(self.part(|s| &mut s.rest)?),
                        "host" | "services" | "rest" => return None,
                        _ => self.skip()?,
                    }
                }
                EntryRef::Router {
                    host: host?,
                    services: services?,
                    rest: rest?,
                }
            }
            _ => {
                self.i = start;
                EntryRef::Other(self.value()?)
            }
        };
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether one item of `b` can be stepped over.
    fn cursor(b: &[u8]) -> Stepped {
        Stepped(b.to_vec())
    }

    struct Stepped(Vec<u8>);

    impl Stepped {
        fn skip(&self) -> Option<()> {
            let mut shapes = Shapes::default();
            Cursor {
                b: &self.0,
                i: 0,
                shapes: &mut shapes,
            }
            .skip()
        }
    }

    #[test]
    fn a_claimed_count_of_events_reserves_no_more_than_a_little() {
        // {"events": [2^40 entries…]} followed by 64 MiB that are no entry: room for as many
        // entries as bytes left would be tens of GB (an abort, not an error) before the first
        // entry fails to parse.
        let mut b = vec![0xa1, 0x66];
        b.extend_from_slice(b"events");
        b.push(0x9b);
        b.extend_from_slice(&(1u64 << 40).to_be_bytes());
        b.resize(b.len() + (64 << 20), 0xff);
        let mut shapes = Shapes::default();
        assert!(payload(&b, &mut shapes).is_none());
    }

    #[test]
    fn skipping_refuses_nesting_beyond_the_bound_and_cut_items() {
        let mut deep = vec![0x81u8; MAX_DEPTH + 1];
        deep.push(0x00);
        assert!(cursor(&deep).skip().is_none());
        let ok = [0x82, 0x61, b'a', 0xa1, 0x00, 0x43, 1, 2, 3];
        let mut shapes = Shapes::default();
        let mut c = Cursor {
            b: &ok,
            i: 0,
            shapes: &mut shapes,
        };
        assert!(c.skip().is_some());
        assert_eq!(c.i, ok.len());
        for cut in 0..ok.len() {
            assert!(cursor(&ok[..cut]).skip().is_none(), "{cut}");
        }
        // A length that runs past the end, and an indefinite length (left to ciborium).
        assert!(cursor(&[0x5b, 0xff, 0, 0, 0, 0, 0, 0, 0]).skip().is_none());
        assert!(cursor(&[0x9f, 0xff]).skip().is_none());
    }

    #[test]
    fn a_field_twice_or_an_unknown_entry_is_left_to_the_whole_decoding() {
        // {"events": [], "events": []}
        let twice = [
            0xa2, 0x66, b'e', b'v', b'e', b'n', b't', b's', 0x80, 0x66, b'e', b'v', b'e', b'n',
            b't', b's', 0x80,
        ];
        assert!(payload(&twice, &mut Shapes::default()).is_none());
        assert!(ciborium::from_reader::<FramePayload, _>(twice.as_slice()).is_err());
        // {"events": [{"ghost": 1}]}
        let ghost = [
            0xa1, 0x66, b'e', b'v', b'e', b'n', b't', b's', 0x81, 0xa1, 0x65, b'g', b'h', b'o',
            b's', b't', 0x01,
        ];
        assert!(payload(&ghost, &mut Shapes::default()).is_none());
        assert!(ciborium::from_reader::<FramePayload, _>(ghost.as_slice()).is_err());
    }
}
