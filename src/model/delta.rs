//! Delta coding of raw samples: a sample splits into its *shape* (everything but the numbers, with
//! the numbers zeroed) and its *numbers* (every counter, gauge and address, in a fixed order). A
//! host's next sample whose shape is unchanged is stored as the differences of its numbers from the
//! previous sample's, which for cumulative counters are small; restoring adds them back exactly.
//! Recordings (`record`) and the router agent's wire (`source::agent`) both use it.
//!
//! One `walk` per sample type lists the numbers, and serves both directions: taking them out
//! (leaving zeros behind, which is the shape) and putting them back.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::sample::{
    ConnSummary, CpuTimes, IpvsCounters, IpvsRates, NodeSample, RealServerSample, RouterSample,
    VirtualServiceSample,
};

/// Sees every number of a value, as a 64-bit word, and may replace it.
pub(crate) trait Visit {
    fn word(&mut self, w: &mut u64);
}

/// Takes the words out, leaving zeros: what remains is the shape.
pub(crate) struct Take<'a>(pub &'a mut Vec<u64>);

impl Visit for Take<'_> {
    fn word(&mut self, w: &mut u64) {
        self.0.push(std::mem::take(w));
    }
}

/// Puts words back into a shape, in the order `Take` took them. Runs out as zeros and says so.
pub(crate) struct Put<'a> {
    words: std::slice::Iter<'a, u64>,
    pub short: bool,
}

impl<'a> Put<'a> {
    pub fn new(words: &'a [u64]) -> Self {
        Self {
            words: words.iter(),
            short: false,
        }
    }

    /// True when every word was used and none was missing.
    pub fn exact(&self) -> bool {
        !self.short && self.words.len() == 0
    }
}

impl Visit for Put<'_> {
    fn word(&mut self, w: &mut u64) {
        match self.words.next() {
            Some(&x) => *w = x,
            None => {
                self.short = true;
                *w = 0;
            }
        }
    }
}

/// Counts the words without touching them: how many numbers a shape holds.
pub(crate) struct Count(pub usize);

impl Visit for Count {
    fn word(&mut self, _: &mut u64) {
        self.0 += 1;
    }
}

/// Values whose numbers can be walked.
pub(crate) trait Numbers {
    fn walk(&mut self, v: &mut impl Visit);
}

fn u64(v: &mut impl Visit, x: &mut u64) {
    v.word(x);
}

fn u32(v: &mut impl Visit, x: &mut u32) {
    let mut w = u64::from(*x);
    v.word(&mut w);
    *x = w as u32;
}

fn i64(v: &mut impl Visit, x: &mut i64) {
    let mut w = *x as u64;
    v.word(&mut w);
    *x = w as i64;
}

fn i32(v: &mut impl Visit, x: &mut i32) {
    let mut w = i64::from(*x) as u64;
    v.word(&mut w);
    *x = w as i64 as i32;
}

/// Thousandths: load averages, uptimes and kernel rate estimates are decimals with at most three
/// places, which as scaled integers change by small steps.
const SCALE: f64 = 1000.0;
const EXACT_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53

/// An `f64` as two words: `(0, thousandths)` when that is exact, else `(1, IEEE bits)`.
fn f64(v: &mut impl Visit, x: &mut f64) {
    let scaled = if x.to_bits() == 0 {
        // +0.0, the rate of everything idle: what the rounding below gives, without it (a call
        // into libm on baseline x86-64).
        0.0
    } else {
        (*x * SCALE).round()
    };
    let (mut tag, mut w) = if scaled.abs() < EXACT_LIMIT
        && ((scaled as i64) as f64 / SCALE).to_bits() == x.to_bits()
    {
        (0u64, (scaled as i64) as u64)
    } else {
        (1u64, x.to_bits())
    };
    v.word(&mut tag);
    v.word(&mut w);
    *x = if tag == 0 {
        (w as i64) as f64 / SCALE
    } else {
        f64::from_bits(w)
    };
}

fn ip(v: &mut impl Visit, x: &mut IpAddr) {
    match x {
        IpAddr::V4(a) => {
            let mut w = u64::from(u32::from(*a));
            v.word(&mut w);
            *a = Ipv4Addr::from(w as u32);
        }
        IpAddr::V6(a) => {
            let n = u128::from(*a);
            let mut hi = (n >> 64) as u64;
            let mut lo = n as u64;
            v.word(&mut hi);
            v.word(&mut lo);
            *a = Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo));
        }
    }
}

fn cpu_fields(c: &mut CpuTimes) -> [&mut u64; 10] {
    [
        &mut c.user,
        &mut c.nice,
        &mut c.system,
        &mut c.idle,
        &mut c.iowait,
        &mut c.irq,
        &mut c.softirq,
        &mut c.steal,
        &mut c.guest,
        &mut c.guest_nice,
    ]
}

impl Numbers for CpuTimes {
    fn walk(&mut self, v: &mut impl Visit) {
        for x in cpu_fields(self) {
            u64(v, x);
        }
    }
}

impl Numbers for IpvsCounters {
    fn walk(&mut self, v: &mut impl Visit) {
        for x in [
            &mut self.conns,
            &mut self.in_packets,
            &mut self.out_packets,
            &mut self.in_bytes,
            &mut self.out_bytes,
        ] {
            u64(v, x);
        }
    }
}

impl Numbers for IpvsRates {
    fn walk(&mut self, v: &mut impl Visit) {
        for x in [
            &mut self.cps,
            &mut self.in_pps,
            &mut self.out_pps,
            &mut self.in_bps,
            &mut self.out_bps,
        ] {
            f64(v, x);
        }
    }
}

impl<T: Numbers> Numbers for Option<T> {
    fn walk(&mut self, v: &mut impl Visit) {
        if let Some(x) = self {
            x.walk(v);
        }
    }
}

impl<T: Numbers> Numbers for Vec<T> {
    fn walk(&mut self, v: &mut impl Visit) {
        for x in self {
            x.walk(v);
        }
    }
}

impl Numbers for NodeSample {
    fn walk(&mut self, v: &mut impl Visit) {
        i64(v, &mut self.time.0);
        self.stat.total.walk(v);
        self.stat.cpus.walk(v);
        for x in [
            &mut self.stat.context_switches,
            &mut self.stat.boot_time,
            &mut self.stat.processes,
            &mut self.stat.procs_running,
            &mut self.stat.procs_blocked,
        ]
        .into_iter()
        .flatten()
        {
            u64(v, x);
        }
        f64(v, &mut self.load.one);
        f64(v, &mut self.load.five);
        f64(v, &mut self.load.fifteen);
        u32(v, &mut self.load.runnable);
        u32(v, &mut self.load.entities);
        u32(v, &mut self.load.last_pid);
        let m = &mut self.memory;
        for x in [
            &mut m.total_bytes,
            &mut m.free_bytes,
            &mut m.available_bytes,
            &mut m.buffers_bytes,
            &mut m.cached_bytes,
            &mut m.swap_total_bytes,
            &mut m.swap_free_bytes,
        ] {
            u64(v, x);
        }
        f64(v, &mut self.uptime.uptime_s);
        f64(v, &mut self.uptime.idle_s);
    }
}

impl Numbers for RealServerSample {
    fn walk(&mut self, v: &mut impl Visit) {
        i32(v, &mut self.weight);
        u32(v, &mut self.upper_threshold);
        u32(v, &mut self.lower_threshold);
        u32(v, &mut self.active_conns);
        u32(v, &mut self.inactive_conns);
        if let Some(p) = &mut self.persistent_conns {
            u32(v, p);
        }
        self.totals.walk(v);
        self.rates.walk(v);
    }
}

impl Numbers for VirtualServiceSample {
    fn walk(&mut self, v: &mut impl Visit) {
        self.totals.walk(v);
        self.rates.walk(v);
        self.reals.walk(v);
    }
}

impl Numbers for ConnSummary {
    fn walk(&mut self, v: &mut impl Visit) {
        u64(v, &mut self.total);
        for x in self.by_state.values_mut() {
            u64(v, x);
        }
        for states in self.by_real_state.values_mut() {
            for x in states.values_mut() {
                u64(v, x);
            }
        }
        for (addr, n) in &mut self.top_clients {
            ip(v, addr);
            u64(v, n);
        }
    }
}

/// The router sample without its services: time, router-wide counters, the connection summary.
impl Numbers for RouterSample {
    fn walk(&mut self, v: &mut impl Visit) {
        i64(v, &mut self.time.0);
        for t in [
            &mut self.parts.counters,
            &mut self.parts.details,
            &mut self.parts.connections,
        ]
        .into_iter()
        .flatten()
        {
            i64(v, &mut t.0);
        }
        if let Some(g) = &mut self.global {
            g.totals.walk(v);
            g.rates.walk(v);
        }
        self.connections.walk(v);
    }
}

/// Splits `value` into its shape (returned) and its numbers (appended to `words`).
#[cfg(test)]
pub(crate) fn split<T: Numbers + Clone>(value: &T, words: &mut Vec<u64>) -> T {
    let mut shape = value.clone();
    shape.walk(&mut Take(words));
    shape
}

/// How many numbers `shape` holds (what [`join`] takes).
pub(crate) fn word_count<T: Numbers>(shape: &mut T) -> usize {
    let mut count = Count(0);
    shape.walk(&mut count);
    count.0
}

/// Puts `words` into a copy of `shape`. `None` when the count of words does not fit the shape.
pub(crate) fn join<T: Numbers + Clone>(shape: &T, words: &[u64]) -> Option<T> {
    let mut value = shape.clone();
    let mut put = Put::new(words);
    value.walk(&mut put);
    put.exact().then_some(value)
}

// ───────────────────────────── packing ─────────────────────────────

fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

fn unzigzag(x: u64) -> i64 {
    ((x >> 1) as i64) ^ -((x & 1) as i64)
}

/// Packs words as LEB128 varints of the zigzagged difference from `base` (word by word; zero when
/// there is no base).
pub(crate) fn pack(words: &[u64], base: Option<&[u64]>, out: &mut Vec<u8>) {
    out.reserve(words.len() * 2);
    for (i, &w) in words.iter().enumerate() {
        let b = base.and_then(|b| b.get(i)).copied().unwrap_or(0);
        put_varint(zigzag(w.wrapping_sub(b) as i64), out);
    }
}

/// Unpacks what `pack` wrote: exactly `count` words (what the shape holds, or the base's
/// length), else `None` — decided before allocating, and at the first word too many, so numbers
/// claiming more than their shape holds (a crafted frame: 250 MiB of zero bytes, one word each)
/// cost nothing. `None` too on a truncated or overlong varint.
pub(crate) fn unpack(
    bytes: &[u8],
    base: Option<&[u64]>,
    count: usize,
    out: &mut Vec<u64>,
) -> Option<()> {
    out.clear();
    // A varint takes one to ten bytes.
    if base.is_some_and(|b| b.len() != count)
        || bytes.len() < count
        || bytes.len() > count.saturating_mul(10)
    {
        return None;
    }
    out.reserve(count);
    let mut i = 0;
    while i < bytes.len() {
        let z = get_varint(bytes, &mut i)?;
        let n = out.len();
        if n == count {
            return None;
        }
        let b = match base {
            Some(base) => *base.get(n)?,
            None => 0,
        };
        out.push(b.wrapping_add(unzigzag(z) as u64));
    }
    (out.len() == count).then_some(())
}

// ───────────────────────────── parts ─────────────────────────────

/// Packed numbers: zigzag LEB128 varints, stored as one CBOR byte string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packed(pub Vec<u8>);

impl Serialize for Packed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Packed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Packed;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Packed, E> {
                Ok(Packed(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Packed, E> {
                Ok(Packed(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// One part of a sample: its shape when it differs from the previous one (numbers then absolute),
/// else only the numbers as differences from the previous sample's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part<T> {
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    pub shape: Option<T>,
    pub nums: Packed,
}

/// The previous sample of one part of one host: its shape and numbers.
pub(crate) struct Last<T> {
    shape: T,
    words: Vec<u64>,
}

/// How a part's numbers are packed when its shape is unchanged: every word as its difference
/// (recordings, where a frame is read on its own), or only the words that changed (the agent's
/// wire, where an idle table of 10,000 real servers would otherwise send a byte per counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Dense,
    Sparse,
}

/// Encodes a part against the previous one: numbers only when the shape is unchanged.
pub(crate) fn encode_part<T: Numbers + Clone + PartialEq>(
    last: &mut Option<Last<T>>,
    value: &T,
) -> Part<T> {
    encode_owned_as(last, value.clone(), Coding::Dense)
}

/// Encodes a part that the caller gives up: its numbers are taken out in place, and the shape
/// left behind is copied only when it changed (the agent's table is large).
pub(crate) fn encode_owned_as<T: Numbers + Clone + PartialEq>(
    last: &mut Option<Last<T>>,
    mut shape: T,
    coding: Coding,
) -> Part<T> {
    let mut words = Vec::new();
    shape.walk(&mut Take(&mut words));
    let mut nums = Vec::new();
    match last {
        Some(l) if l.shape == shape => {
            match coding {
                Coding::Dense => pack(&words, Some(&l.words), &mut nums),
                Coding::Sparse => pack_sparse(&words, &l.words, &mut nums),
            }
            l.words = words;
            Part {
                shape: None,
                nums: Packed(nums),
            }
        }
        _ => {
            pack(&words, None, &mut nums);
            *last = Some(Last {
                shape: shape.clone(),
                words,
            });
            Part {
                shape: Some(shape),
                nums: Packed(nums),
            }
        }
    }
}

#[cfg(test)]
pub(crate) fn decode_part<T: Numbers + Clone>(
    last: &mut Option<Last<T>>,
    part: Part<T>,
) -> Option<T> {
    decode_part_as(last, part, Coding::Dense)
}

pub(crate) fn decode_part_as<T: Numbers + Clone>(
    last: &mut Option<Last<T>>,
    part: Part<T>,
    coding: Coding,
) -> Option<T> {
    let l = advance(last, part, coding)?;
    join(&l.shape, &l.words)
}

/// Brings `last` up to `part` (its shape and numbers) without building the sample: what
/// [`decode_part_as`] does before it joins them. A dense part's differences are added to the
/// previous numbers in place, so a host's numbers live in one buffer for the whole group. `None`
/// when the part does not fit: a part with its shape leaves `last` as it was, a dense one of
/// numbers only leaves it unsound, and the recording's decoder drops it then.
pub(crate) fn advance<T: Numbers>(
    last: &mut Option<Last<T>>,
    part: Part<T>,
    coding: Coding,
) -> Option<&Last<T>> {
    advance_raw(last, part.shape, &part.nums.0, coding)
}

/// [`advance`] with the part's shape and numbers apart, the numbers borrowed from the frame.
pub(crate) fn advance_raw<'l, T: Numbers>(
    last: &'l mut Option<Last<T>>,
    shape: Option<T>,
    nums: &[u8],
    coding: Coding,
) -> Option<&'l Last<T>> {
    match shape {
        Some(mut shape) => {
            let count = word_count(&mut shape);
            let mut words = Vec::new();
            // Exactly as many words as the shape holds, so joining them cannot fail.
            unpack(nums, None, count, &mut words)?;
            *last = Some(Last { shape, words });
            last.as_ref()
        }
        None => {
            let l = last.as_mut()?;
            match coding {
                Coding::Dense => unpack_onto(nums, &mut l.words)?,
                Coding::Sparse => {
                    let mut words = Vec::with_capacity(l.words.len());
                    unpack_sparse(nums, &l.words, &mut words)?;
                    l.words = words;
                }
            }
            Some(l)
        }
    }
}

/// A dense part's sample, its numbers borrowed from the frame: [`decode_part`] without owning
/// the part.
pub(crate) fn decode_raw<T: Numbers + Clone>(
    last: &mut Option<Last<T>>,
    shape: Option<T>,
    nums: &[u8],
) -> Option<T> {
    let l = advance_raw(last, shape, nums, Coding::Dense)?;
    join(&l.shape, &l.words)
}

/// The numbers of one `CpuTimes`.
const CPU_WORDS: usize = 10;

/// A node sample's shape for readers that need only the node's totals: the per-core lines
/// dropped (`cpus` and `cpu_ids` empty) and their count kept as `online_cores`, as a source
/// without per-core lines gives it, so `cores()` and everything derived from the totals are the
/// same.
pub(crate) fn totals_shape(shape: &NodeSample) -> NodeSample {
    let mut light = shape.clone();
    if light.has_per_core() {
        light.stat.online_cores = Some(u32::try_from(light.stat.cpus.len()).unwrap_or(u32::MAX));
    }
    light.stat.cpus = Vec::new();
    light.stat.cpu_ids = Vec::new();
    light
}

/// Where a node's per-core numbers start: `NodeSample::walk` lists them right after the time
/// and the total.
const PER_CORE_AT: usize = 1 + CPU_WORDS;

/// The previous sample of a node, for a reader of its totals only: the shape without its cores
/// ([`totals_shape`]) and the numbers without the per-core ones, which are skipped in the
/// stored bytes and never added up.
pub(crate) struct LastTotals {
    light: NodeSample,
    words: Vec<u64>,
    /// How many per-core numbers the stored samples hold (skipped).
    per_core: usize,
}

/// A node's next sample without its per-core counters ([`totals_shape`]), from its stored shape
/// (when it changed) and numbers: what [`decode_raw`] gives with the cores dropped, checked the
/// same way (exactly as many sound varints as the whole shape holds, else `None`, and `last`
/// then unsound), without reading or adding the per-core differences.
pub(crate) fn advance_totals(
    last: &mut Option<LastTotals>,
    shape: Option<NodeSample>,
    nums: &[u8],
) -> Option<NodeSample> {
    let l = match shape {
        Some(mut shape) => {
            let count = word_count(&mut shape);
            let mut words = Vec::new();
            unpack(nums, None, count, &mut words)?;
            let per_core = CPU_WORDS * shape.stat.cpus.len();
            words.drain(PER_CORE_AT.min(words.len())..(PER_CORE_AT + per_core).min(words.len()));
            last.insert(LastTotals {
                light: totals_shape(&shape),
                words,
                per_core,
            })
        }
        None => {
            let l = last.as_mut()?;
            unpack_onto_skipping(nums, &mut l.words, PER_CORE_AT, l.per_core)?;
            l
        }
    };
    join(&l.light, &l.words)
}

/// [`unpack_onto`] of a sample whose stored numbers hold `skip` more words at `at` than
/// `words`: those are stepped over (checked as varints, not decoded).
fn unpack_onto_skipping(bytes: &[u8], words: &mut [u64], at: usize, skip: usize) -> Option<()> {
    let count = words.len().checked_add(skip)?;
    if bytes.len() < count || bytes.len() > count.saturating_mul(10) {
        return None;
    }
    let (head, tail) = words.split_at_mut(at.min(words.len()));
    let mut i = 0;
    for w in head {
        *w = w.wrapping_add(unzigzag(get_varint(bytes, &mut i)?) as u64);
    }
    i = skip_varints(bytes, i, skip)?;
    for w in tail {
        *w = w.wrapping_add(unzigzag(get_varint(bytes, &mut i)?) as u64);
    }
    (i == bytes.len()).then_some(())
}

/// Where the `n` varints from `bytes[i..]` end; `None` when they are cut short or one is longer
/// than [`get_varint`] reads (ten bytes). Eight bytes at a time: a varint ends at each byte
/// whose top bit is clear.
fn skip_varints(bytes: &[u8], mut i: usize, mut n: usize) -> Option<usize> {
    const TOP: u64 = 0x8080_8080_8080_8080;
    // Continuation bytes in a row so far, in the varint being stepped over.
    let mut run = 0usize;
    while n > 0 {
        let Some(chunk) = bytes.get(i..i + 8) else {
            // The last few bytes, one at a time.
            let b = *bytes.get(i)?;
            i += 1;
            if b & 0x80 == 0 {
                n -= 1;
                run = 0;
            } else {
                run += 1;
                if run >= 10 {
                    return None;
                }
            }
            continue;
        };
        let mut ends = !u64::from_le_bytes(chunk.try_into().ok()?) & TOP;
        if ends == 0 {
            run += 8;
            if run >= 10 {
                return None;
            }
            i += 8;
            continue;
        }
        if run + (ends.trailing_zeros() / 8) as usize >= 10 {
            return None;
        }
        let found = ends.count_ones() as usize;
        if found >= n {
            for _ in 1..n {
                ends &= ends - 1;
            }
            return Some(i + (ends.trailing_zeros() / 8) as usize + 1);
        }
        n -= found;
        run = (ends.leading_zeros() / 8) as usize;
        i += 8;
    }
    Some(i)
}

/// What [`unpack`] with a base does, adding each difference to `words` in place: exactly
/// `words.len()` varints, else `None` (and `words` partly updated).
fn unpack_onto(bytes: &[u8], words: &mut [u64]) -> Option<()> {
    let count = words.len();
    if bytes.len() < count || bytes.len() > count.saturating_mul(10) {
        return None;
    }
    let mut i = 0;
    let mut n = 0;
    while i < bytes.len() {
        let z = get_varint(bytes, &mut i)?;
        let w = words.get_mut(n)?;
        *w = w.wrapping_add(unzigzag(z) as u64);
        n += 1;
    }
    (n == count).then_some(())
}

fn put_varint(mut z: u64, out: &mut Vec<u8>) {
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// A LEB128 varint at `bytes[*i..]`; None when it is cut short or longer than 64 bits.
fn get_varint(bytes: &[u8], i: &mut usize) -> Option<u64> {
    let mut z: u64 = 0;
    let mut shift = 0;
    loop {
        let b = *bytes.get(*i)?;
        *i += 1;
        if shift >= 64 {
            return None;
        }
        z |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(z);
        }
        shift += 7;
    }
}

/// Packs only the words that differ from `base` (of the same length): for each, how many words
/// after the previous one it is, and its zigzagged difference, both as varints.
pub(crate) fn pack_sparse(words: &[u64], base: &[u64], out: &mut Vec<u8>) {
    let mut next = 0usize;
    for (i, (&w, &b)) in words.iter().zip(base).enumerate() {
        if w != b {
            put_varint((i - next) as u64, out);
            put_varint(zigzag(w.wrapping_sub(b) as i64), out);
            next = i + 1;
        }
    }
}

/// Unpacks what `pack_sparse` wrote against the same `base`. None when a position falls outside
/// it or the bytes are cut short; the output is never longer than `base`, whatever the bytes say.
pub(crate) fn unpack_sparse(bytes: &[u8], base: &[u64], out: &mut Vec<u64>) -> Option<()> {
    out.clear();
    out.extend_from_slice(base);
    let (mut i, mut next) = (0usize, 0usize);
    while i < bytes.len() {
        let gap = usize::try_from(get_varint(bytes, &mut i)?).ok()?;
        let at = next.checked_add(gap)?;
        let delta = unzigzag(get_varint(bytes, &mut i)?);
        let w = out.get_mut(at)?;
        *w = w.wrapping_add(delta as u64);
        next = at + 1;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample::SourceEvent;
    use crate::testing::scripted::{ClusterShape, ScriptedCluster};

    #[test]
    fn sparse_packing_sends_only_what_changed_and_refuses_positions_outside_the_base() {
        let base: Vec<u64> = (0..10_000).map(|i| i * 7).collect();
        let mut words = base.clone();
        words[3] += 5;
        words[9_999] = words[9_999].wrapping_sub(2);
        let mut bytes = Vec::new();
        pack_sparse(&words, &base, &mut bytes);
        assert!(bytes.len() < 12, "{} bytes", bytes.len());
        let mut out = Vec::new();
        unpack_sparse(&bytes, &base, &mut out).expect("unpacks");
        assert_eq!(out, words);
        let mut same = Vec::new();
        pack_sparse(&base, &base, &mut same);
        assert!(same.is_empty());
        // A gap past the end, a cut varint.
        assert!(unpack_sparse(&[0x90, 0x4e, 0x02], &base, &mut out).is_none());
        assert!(unpack_sparse(&[0x01, 0x80], &base, &mut out).is_none());
    }

    #[test]
    fn floats_round_trip_bit_for_bit() {
        for x in [
            0.0,
            -0.0,
            3.11,
            1e300,
            f64::NAN,
            f64::INFINITY,
            -2.5,
            0.1 + 0.2,
            123_456.789,
        ] {
            let mut words = Vec::new();
            let mut y = x;
            f64(&mut Take(&mut words), &mut y);
            assert_eq!(y.to_bits(), 0.0f64.to_bits());
            f64(&mut Put::new(&words), &mut y);
            assert_eq!(y.to_bits(), x.to_bits(), "{x}");
        }
    }

    #[test]
    fn zigzag_varints_round_trip_against_a_base() {
        let base = [5u64, u64::MAX, 0, 1 << 40];
        let words = [7u64, 0, u64::MAX, (1 << 40) - 3];
        let mut bytes = Vec::new();
        pack(&words, Some(&base), &mut bytes);
        let mut out = Vec::new();
        unpack(&bytes, Some(&base), base.len(), &mut out).expect("unpacks");
        assert_eq!(out, words);
        assert!(unpack(&bytes[..bytes.len() - 1], Some(&base), base.len(), &mut out).is_none());
    }

    #[test]
    fn numbers_beyond_what_the_shape_holds_are_refused_before_allocating_for_them() {
        // 16 MiB of zero bytes are 16 Mi words to a decoder that trusts them (128 MiB).
        let zeros = vec![0u8; 16 << 20];
        let mut out = Vec::new();
        assert!(unpack(&zeros, None, 12, &mut out).is_none());
        assert!(out.capacity() < 1024, "{}", out.capacity());
        let base = [1u64; 12];
        assert!(unpack(&zeros, Some(&base), base.len(), &mut out).is_none());
        assert!(out.capacity() < 1024, "{}", out.capacity());
        // Exactly what the shape holds, neither fewer nor more.
        let mut bytes = Vec::new();
        pack(&[7; 12], None, &mut bytes);
        assert!(unpack(&bytes, None, 12, &mut out).is_some());
        assert!(unpack(&bytes, None, 13, &mut out).is_none());
        assert!(unpack(&bytes, None, 11, &mut out).is_none());
        let mut node = crate::model::sample::NodeSample::default();
        let mut words = Vec::new();
        split(&node, &mut words);
        assert_eq!(word_count(&mut node), words.len());
    }

    #[test]
    fn a_node_decoded_for_its_totals_is_the_whole_sample_without_its_cores() {
        let mut c = ScriptedCluster::new(
            ClusterShape {
                nodes: 2,
                cores: 8,
                services: 0,
                reals_per_service: 0,
            },
            3,
        );
        let (mut enc, mut whole, mut light) = (None, None, None);
        for _ in 0..5 {
            for e in c.step() {
                let SourceEvent::Node {
                    report: crate::model::sample::Report::Sample(s),
                    ..
                } = e
                else {
                    continue;
                };
                let part = encode_part(&mut enc, &s);
                let full = decode_part(&mut whole, part.clone()).expect("whole");
                assert_eq!(full, s);
                let t = advance_totals(&mut light, part.shape, &part.nums.0).expect("totals");
                let mut want = s.clone();
                want.stat.cpus.clear();
                want.stat.cpu_ids.clear();
                want.stat.online_cores = Some(8);
                assert_eq!(t, want);
                assert_eq!(t.cores(), s.cores());
                break;
            }
        }
        // Numbers that do not fit the shape are refused as the whole decoding refuses them.
        let s = c
            .step()
            .into_iter()
            .find_map(|e| match e {
                SourceEvent::Node {
                    report: crate::model::sample::Report::Sample(s),
                    ..
                } => Some(s),
                _ => None,
            })
            .expect("a node sample");
        let part = encode_part(&mut enc, &s);
        let cut = &part.nums.0[..part.nums.0.len() - 1];
        assert!(advance_totals(&mut light, None, cut).is_none());
        assert!(decode_raw(&mut whole, None, cut).is_none());
    }

    #[test]
    fn skipping_varints_ends_where_reading_them_ends_and_fails_where_reading_fails() {
        // Varints of every length from one to ten bytes, and runs of them of every count, at
        // every offset (so the eight-byte steps meet them at every alignment).
        let mut bytes = Vec::new();
        for k in 0..300u64 {
            put_varint(
                k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (k % 64),
                &mut bytes,
            );
        }
        let read = |bytes: &[u8], mut i: usize, n: usize| {
            for _ in 0..n {
                get_varint(bytes, &mut i)?;
            }
            Some(i)
        };
        for start in 0..20 {
            let mut i = 0;
            for _ in 0..start {
                get_varint(&bytes, &mut i).expect("sound");
            }
            for n in [0, 1, 2, 7, 8, 9, 31, 100, 280 - start] {
                assert_eq!(
                    skip_varints(&bytes, i, n),
                    read(&bytes, i, n),
                    "{start} {n}"
                );
                let cut = &bytes[..bytes.len() - 3];
                assert_eq!(skip_varints(cut, i, 300 - start), None);
            }
        }
        // Ten bytes is the longest varint read; eleven is refused, at any alignment.
        for pad in 0..9 {
            for len in 9..13 {
                let mut b = vec![0u8; pad];
                b.extend(std::iter::repeat_n(0x80u8, len));
                b.extend([0x01, 0x00, 0x00]);
                let want = read(&b, 0, pad + 2);
                assert_eq!(skip_varints(&b, 0, pad + 2), want, "pad {pad} len {len}");
                assert_eq!(want.is_some(), len < 10, "pad {pad} len {len}");
            }
        }
    }

    #[test]
    fn scripted_samples_split_and_join_exactly() {
        let mut c = ScriptedCluster::new(
            ClusterShape {
                nodes: 3,
                cores: 4,
                services: 3,
                reals_per_service: 2,
            },
            1,
        );
        for e in c.step().into_iter().chain(c.step()) {
            match e {
                SourceEvent::Node {
                    report: crate::model::sample::Report::Sample(s),
                    ..
                } => {
                    let mut w = Vec::new();
                    let shape = split(&s, &mut w);
                    assert_eq!(join(&shape, &w).as_ref(), Some(&s));
                    assert!(join(&shape, &w[1..]).is_none());
                }
                SourceEvent::Router {
                    report: crate::model::sample::Report::Sample(s),
                    ..
                } => {
                    let mut w = Vec::new();
                    let shape = split(&s.services, &mut w);
                    assert_eq!(join(&shape, &w).as_ref(), Some(&s.services));
                }
                _ => {}
            }
        }
    }
}
