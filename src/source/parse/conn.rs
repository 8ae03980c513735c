//! `/proc/net/ip_vs_conn`, summed into counts without keeping the rows.
//!
//! The kernel writes one row per connection entry (`ip_vs_conn_seq_show` in
//! `net/netfilter/ipvs/ip_vs_conn.c`):
//!
//! ```text
//! Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
//! TCP C0000201 D431 C000020A 0050 C6336401 0050 ESTABLISHED     899
//! ```
//!
//! IPv4 addresses are `%08X`, ports `%04X`, the state `%-11s` and the expiry `%7u`, optionally
//! followed by a persistence engine's name and data. IPv6 rows carry full addresses (`%pI6`,
//! `2001:0db8:…`) in place of the hex, and a destination's family may differ from the client's.
//!
//! A table can hold millions of rows, so IPv4 rows of a three-letter protocol (the common case)
//! are read at fixed byte offsets without allocating; anything else goes through a general,
//! whitespace-splitting path. Real servers and states are kept in small tables indexed by
//! position. A row whose real server and state bytes repeat a row already read (nearly every row
//! of a large table) is counted by comparing those bytes with the ones kept in [`known`], its
//! other bytes checked but not decoded, the client's aside. IPv4 clients, a batch at a time,
//! are counted in a small cache-resident table while there are few of them; then those in a
//! window around the busiest span seen so far (when there is one, as with clients from a few
//! subnets) are counted in an array indexed by address, and the rest are collected as `u32`s
//! and counted in batches: in an array when a batch spans little of the address space, else by
//! radix sort, which stays fast however many distinct clients there are and whatever addresses
//! they pick.
//!
//! The table is read in chunks cut at line boundaries (the file can be large, and in a snapshot
//! anything at all); a large table's chunks are taken in turn by a thread per core as they are
//! read, each thread summing into its own [`ConnSummer`]; their counts are merged exactly before
//! the busiest clients are picked: each thread's window of clients is added into the widest in
//! place. [`sum_ip_vs_conn`] is the one way in.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use rustc_hash::FxBuildHasher;

mod known;

use self::known::{KnownRows, RowKey};
use super::ParseError;
use super::text::{excerpt, hex_ipv4, hex_u16};
use crate::model::sample::{ConnSummary, SocketText};

const IP_VS_CONN: &str = "/proc/net/ip_vs_conn";

/// Counts the rows of a connection table fed to it line by line (see [`sum_lines`]).
#[derive(Debug, Default)]
struct ConnSummer {
    top_n: usize,
    rows: u64,
    /// State names in order of first appearance; indexes into `RealTally::counts`.
    states: Vec<Box<[u8]>>,
    /// The index of each state name. A map, not a search of `states`: a crafted table of 40,000
    /// distinct states took 5 s searching.
    state_ids: HashMap<Box<[u8]>, usize>,
    /// The index of each state as the fast path sees it, space-padded to 11 bytes (only states
    /// that fit).
    state_keys: HashMap<u128, usize>,
    /// A direct-mapped cache of `(state field, index)` in front of `state_keys`.
    state_cache: Vec<(u128, usize)>,
    last_state: usize,
    reals: Vec<RealTally>,
    /// The index of each real server by its integer key, hashed with FxHash (std's SipHash is
    /// made for untrusted keys and costs several times more per lookup).
    reals_v4: HashMap<u64, usize, FxBuildHasher>,
    reals_v6: HashMap<(Ipv6Addr, u16), usize, FxBuildHasher>,
    /// A direct-mapped cache of `(address << 16 | port, index)` in front of `reals_v4`.
    real_cache: Vec<(u64, usize)>,
    /// IPv4 clients are counted in this open-addressing table of `(address, count)` (count 0: a
    /// free slot) while there are few of them, which keeps it in cache; past `FEW_CLIENTS` it is
    /// emptied into `clients_v4` for good.
    few_clients: Vec<(u32, u64)>,
    few_len: usize,
    few_spilled: bool,
    /// Once the small table is spilled, clients in `dense_base..dense_base + dense.len()` (a
    /// window around the addresses it held, when they were close together) are counted here,
    /// indexed by address.
    dense: Vec<u16>,
    dense_base: u32,
    /// What `dense`, counting in `u16`s (half the cache lines of `u32`s: it is hit at random
    /// once a row), carried out of them.
    dense_carry: BTreeMap<u32, u64>,
    /// IPv4 clients not yet counted once the small table is spilled (outside `dense`); counted
    /// and folded into `clients_v4` in batches.
    pending_v4: Vec<u32>,
    /// Counted IPv4 clients, sorted by address.
    clients_v4: Vec<(u32, u64)>,
    /// Keyed with the std hasher on purpose: clients choose their addresses, and a weak hash
    /// would let them make this table slow.
    clients_v6: HashMap<Ipv6Addr, u64>,
    /// IPv4 clients of rows read but not yet counted.
    batch_v4: Vec<u32>,
    /// Rows counted by their real server and state bytes, not yet added to `reals` and `rows`
    /// (see [`settle_known`](Self::settle_known)).
    known: KnownRows,
}

#[derive(Debug)]
struct RealTally {
    address: IpAddr,
    port: u16,
    /// Rows per state, indexed like `ConnSummer::states`, for the first [`DENSE_STATES`].
    counts: Vec<u64>,
    /// Rows per state for the states past those (the kernel has about twenty-five names; only a
    /// crafted table has more, and a vector per real server as long as every state seen would
    /// grow with reals × states).
    more: BTreeMap<usize, u64>,
}

/// States counted in a vector per real server; the rest in a map.
const DENSE_STATES: usize = 64;

impl RealTally {
    fn new(address: IpAddr, port: u16) -> Self {
        Self {
            address,
            port,
            counts: Vec::new(),
            more: BTreeMap::new(),
        }
    }

    #[inline(always)]
    fn add(&mut self, state: usize, n: u64) {
        if state < DENSE_STATES {
            if self.counts.len() <= state {
                self.counts.resize(state + 1, 0);
            }
            if let Some(c) = self.counts.get_mut(state) {
                *c += n;
            }
        } else {
            *self.more.entry(state).or_insert(0) += n;
        }
    }

    /// `(state, rows)` for every state counted.
    fn each(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.counts
            .iter()
            .copied()
            .enumerate()
            .chain(self.more.iter().map(|(&s, &n)| (s, n)))
    }
}

/// The small client table starts with this many slots and doubles while clients fill more than
/// half of it, up to `FEW_SLOTS`: a table of a few rows (the usual router) then writes 4 KiB,
/// not 256 KiB, for its clients.
const FEW_FIRST_SLOTS: usize = 1 << 8;
const FEW_SLOTS: usize = 1 << 14;
const FEW_CLIENTS: usize = FEW_SLOTS / 2;
const FEW_MAX_PROBES: usize = 64;

/// How many IPv4 clients are batched before they are counted.
const CLIENT_BATCH: usize = 1 << 10;

/// Pending IPv4 clients are folded in once there are this many (or as many as already counted).
const PENDING_BATCH: usize = 1 << 20;

impl ConnSummer {
    /// `top_n` is how many of the busiest clients `finish` reports; 0 skips client counting.
    fn new(top_n: usize) -> Self {
        Self {
            top_n,
            ..Self::default()
        }
    }

    /// A line the fast path did not take: blank, the header, or a row for the general path.
    #[cold]
    fn slow_line(&mut self, line_no: usize, line: &[u8]) -> Result<(), ParseError> {
        if line.iter().all(u8::is_ascii_whitespace) || is_header(line) {
            return Ok(());
        }
        if self.single_spaced_row(line).is_some() {
            return Ok(());
        }
        self.general_row(line)
            .map_err(|msg| ParseError::new(IP_VS_CONN, line_no, msg))
    }

    /// Reads an IPv4 row of a three-letter protocol at the kernel's fixed offsets from the start
    /// of `rest`, and returns the row's length up to (not including) its `\n` or the end of
    /// `rest`. Returns None, having counted nothing, when the row is not exactly that shape.
    #[inline]
    fn fast_v4_row(&mut self, rest: &[u8]) -> Option<usize> {
        if let Some(row) = rest.first_chunk::<KNOWN_ROW>()
            && self.known_row(row)
        {
            return Some(KNOWN_ROW - 1);
        }
        self.v4_row(rest)
    }

    /// Counts a row of the commonest shape (a three-letter protocol, the expiry in its seven
    /// characters, no persistence engine, `\n` at offset 65) whose real server and state bytes
    /// are those of a row read before: only its other bytes are checked, and only the client is
    /// decoded. False, having counted nothing, for any other row.
    #[inline(always)]
    fn known_row(&mut self, row: &[u8; KNOWN_ROW]) -> bool {
        if !row_head_ok(&chunk::<32, KNOWN_ROW>(row, 0))
            || !expiry_and_newline(u64::from_le_bytes(chunk(row, 58)))
            || !self.known.count(RowKey::of(row))
        {
            return false;
        }
        if self.top_n > 0 {
            self.client_v4(hex8_value(chunk(row, 4)));
        }
        true
    }

    /// [`fast_v4_row`](Self::fast_v4_row) for a row that is not known: every byte checked, the
    /// real server and state looked up, and a row of the commonest shape remembered by them.
    #[inline]
    fn v4_row(&mut self, rest: &[u8]) -> Option<usize> {
        // Offsets of "%-3s %08X %04X %08X %04X %08X %04X %-11s %7u"; the protocol is TCP, UDP, or
        // "IP " for the persistence templates of firewall-mark services.
        let b = rest.first_chunk::<65>()?;
        if !row_head_ok(b) || b[57] != b' ' {
            return None;
        }
        let client = hex8_value(chunk(b, 4));
        let daddr = hex8_value(chunk(b, 32));
        let dport = hex8_value([b'0', b'0', b'0', b'0', b[41], b[42], b[43], b[44]]) as u16;
        let len = row_end(rest)?;
        let field = state_field(b);
        let state_slot = state_slot(field);
        let state = match self.state_cache.get(state_slot) {
            Some(&(k, i)) if k == field => i,
            _ => self.fast_state_miss(field, state_slot)?,
        };
        let key = (u64::from(daddr) << 16) | u64::from(dport);
        let slot = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize;
        let real = match self.real_cache.get(slot) {
            Some(&(k, i)) if k == key => i,
            _ => {
                let i = self.real_v4(daddr, dport);
                if self.real_cache.is_empty() {
                    self.real_cache = vec![(u64::MAX, 0); 256];
                }
                if let Some(c) = self.real_cache.get_mut(slot) {
                    *c = (key, i);
                }
                i
            }
        };
        self.count(real, state);
        if self.top_n > 0 {
            self.client_v4(client);
        }
        if len == KNOWN_ROW - 1 && rest.get(len) == Some(&b'\n') {
            self.known.learn(RowKey::of(b), real, state);
        }
        Some(len)
    }

    /// Adds the rows counted by their known bytes to their real servers and the total.
    fn settle_known(&mut self) {
        let mut rows = 0u64;
        for (real, state, n) in self.known.drain() {
            rows += n;
            if let Some(tally) = self.reals.get_mut(real) {
                tally.add(state, n);
            }
        }
        self.rows += rows;
    }

    /// The state index for a field not in the state cache, which it is then put in.
    #[cold]
    fn fast_state_miss(&mut self, field: u128, slot: usize) -> Option<usize> {
        let i = match self.state_keys.get(&field) {
            Some(&i) => i,
            None => self.fast_state_index(field)?,
        };
        if self.state_cache.is_empty() {
            // No field equals this key: a field's top five bytes are always zero.
            self.state_cache = vec![(u128::MAX, 0); 128];
        }
        if let Some(c) = self.state_cache.get_mut(slot) {
            *c = (field, i);
        }
        Some(i)
    }

    /// The state index for a `%-11s` field the fast path has not seen before.
    #[cold]
    fn fast_state_index(&mut self, field: u128) -> Option<usize> {
        let bytes = field.to_le_bytes();
        let field = bytes.get(..11)?;
        let len = field.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1);
        let i = self.state_index(field.get(..len)?)?;
        self.last_state = i;
        Some(i)
    }

    /// A row as the kernel prints it, with any mix of address families and any protocol or state
    /// length: single spaces between fields, addresses either eight hex digits or the 39
    /// characters of `%pI6`. None, having counted nothing, for anything else.
    fn single_spaced_row(&mut self, line: &[u8]) -> Option<()> {
        let proto_len = line.iter().position(|&c| c == b' ')?.max(3);
        let proto = line.get(..proto_len)?;
        if !proto.iter().all(|&c| c.is_ascii_graphic() || c == b' ')
            || line.get(proto_len) != Some(&b' ')
        {
            return None;
        }
        let mut pos = proto_len + 1;
        let (client, _) = fixed_addr_port(line, &mut pos)?;
        fixed_addr_port(line, &mut pos)?;
        let (dest, dport) = fixed_addr_port(line, &mut pos)?;
        let rest = line.get(pos..)?;
        let state_len = rest.iter().position(|&c| c == b' ')?;
        let state = rest.get(..state_len)?;
        let tail = rest.get(state_len..)?;
        let start = tail.iter().position(|&c| c != b' ')?;
        let digits = tail.get(start..)?;
        let n = digits
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        if n == 0 || digits.get(n).is_some_and(|&c| c != b' ') {
            return None;
        }
        let state = self.state_index(state)?;
        let real = match dest {
            IpAddr::V4(a) => self.real_v4(u32::from(a), dport),
            IpAddr::V6(a) => self.real_v6(a, dport),
        };
        self.count(real, state);
        if self.top_n > 0 {
            self.push_client(client);
        }
        Some(())
    }

    fn push_client(&mut self, client: IpAddr) {
        match client {
            IpAddr::V4(a) => self.client_v4(u32::from(a)),
            IpAddr::V6(a) => {
                let n = self.clients_v6.entry(a).or_insert(0);
                *n = n.saturating_add(1);
            }
        }
    }

    /// Any row: whitespace-separated fields, addresses in hex (IPv4) or `%pI6` form (IPv6).
    fn general_row(&mut self, line: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(line).map_err(|_| "row is not UTF-8".to_string())?;
        let mut f = text.split_ascii_whitespace();
        let (
            Some(proto),
            Some(caddr),
            Some(cport),
            Some(vaddr),
            Some(vport),
            Some(daddr),
            Some(dport),
            Some(state),
            Some(expires),
        ) = (
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
        )
        else {
            return Err(format!("expected at least 9 fields, got {}", excerpt(text)));
        };
        // Any remaining fields are the persistence engine's name and data.
        if !proto.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(format!("bad protocol {}", excerpt(proto)));
        }
        let client = conn_addr(caddr)?;
        conn_port(cport)?;
        conn_addr(vaddr)?;
        conn_port(vport)?;
        let dest = conn_addr(daddr)?;
        let dport = conn_port(dport)?;
        if !expires.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("bad expiry {}", excerpt(expires)));
        }
        let state = self
            .state_index(state.as_bytes())
            .ok_or_else(|| format!("bad state {}", excerpt(state)))?;
        let real = match dest {
            IpAddr::V4(a) => self.real_v4(u32::from(a), dport),
            IpAddr::V6(a) => self.real_v6(a, dport),
        };
        self.count(real, state);
        if self.top_n > 0 {
            self.push_client(client);
        }
        Ok(())
    }

    /// The index of a state name, adding it when new; None when it is not a plausible name.
    #[inline]
    fn state_index(&mut self, name: &[u8]) -> Option<usize> {
        if let Some(s) = self.states.get(self.last_state)
            && **s == *name
        {
            return Some(self.last_state);
        }
        let i = match self.state_ids.get(name) {
            Some(&i) => i,
            None => {
                if name.is_empty() || !name.iter().all(u8::is_ascii_graphic) {
                    return None;
                }
                let i = self.states.len();
                self.states.push(name.into());
                self.state_ids.insert(name.into(), i);
                if let Some(key) = padded_state(name) {
                    self.state_keys.insert(key, i);
                }
                i
            }
        };
        self.last_state = i;
        Some(i)
    }

    fn real_v4(&mut self, addr: u32, port: u16) -> usize {
        let key = (u64::from(addr) << 16) | u64::from(port);
        let next = self.reals.len();
        let i = *self.reals_v4.entry(key).or_insert(next);
        if i == next {
            self.reals
                .push(RealTally::new(IpAddr::V4(Ipv4Addr::from(addr)), port));
        }
        i
    }

    fn real_v6(&mut self, addr: Ipv6Addr, port: u16) -> usize {
        let next = self.reals.len();
        let i = *self.reals_v6.entry((addr, port)).or_insert(next);
        if i == next {
            self.reals.push(RealTally::new(IpAddr::V6(addr), port));
        }
        i
    }

    #[inline(always)]
    fn count(&mut self, real: usize, state: usize) {
        self.rows += 1;
        if let Some(tally) = self.reals.get_mut(real) {
            tally.add(state, 1);
        }
    }

    /// Counts a row's IPv4 client, a batch at a time (see [`count_batch_v4`](Self::count_batch_v4)).
    #[inline(always)]
    fn client_v4(&mut self, addr: u32) {
        self.batch_v4.push(addr);
        if self.batch_v4.len() >= CLIENT_BATCH {
            self.count_batch_v4();
        }
    }

    /// Counts the clients batched so far. Counted one after the other with nothing in between,
    /// many of the window's cache misses are in flight at once; counted as each row was read,
    /// one or two were, and that took a fifth of the time of summing a 1,000,000-row table.
    fn count_batch_v4(&mut self) {
        let mut batch = std::mem::take(&mut self.batch_v4);
        for &addr in &batch {
            self.push_client_v4(addr);
        }
        batch.clear();
        if batch.capacity() < CLIENT_BATCH {
            batch.reserve_exact(CLIENT_BATCH);
        }
        self.batch_v4 = batch;
    }

    #[inline(always)]
    fn push_client_v4(&mut self, addr: u32) {
        if let Some(n) = self
            .dense
            .get_mut(addr.wrapping_sub(self.dense_base) as usize)
        {
            let (sum, carried) = n.overflowing_add(1);
            *n = sum;
            if carried {
                self.carry_dense(addr, 1 << 16);
            }
            return;
        }
        self.push_client_outside_v4(addr);
    }

    /// [`push_client_v4`](Self::push_client_v4) for a client outside the window.
    #[inline(never)]
    fn push_client_outside_v4(&mut self, addr: u32) {
        if !self.few_spilled && self.count_few_client(addr) {
            return;
        }
        self.pending_v4.push(addr);
        if self.pending_v4.len() >= PENDING_BATCH.max(self.clients_v4.len()) {
            self.fold_pending_clients();
        }
    }

    /// Counts a client in the small table; false once the table has been spilled.
    #[inline]
    fn count_few_client(&mut self, addr: u32) -> bool {
        if self.few_clients.is_empty() {
            self.few_clients = written_zeros(FEW_FIRST_SLOTS);
        }
        let slots = self.few_clients.len();
        let mut slot = few_slot(addr, slots);
        for _ in 0..FEW_MAX_PROBES {
            match self.few_clients.get_mut(slot & (slots - 1)) {
                Some((a, n)) if *n != 0 && *a == addr => {
                    *n += 1;
                    return true;
                }
                Some((a, n)) if *n == 0 => {
                    (*a, *n) = (addr, 1);
                    self.few_len += 1;
                    if self.few_len >= FEW_CLIENTS {
                        self.spill_few_clients();
                    } else if self.few_len * 2 > slots {
                        self.grow_few_clients();
                    }
                    return true;
                }
                Some(_) => slot += 1,
                None => break,
            }
        }
        // A long probe: clients (who can pick their addresses, as in a SYN flood) may be
        // colliding on purpose. Radix sorting cannot be slowed down that way.
        self.spill_few_clients();
        false
    }

    /// The small table with twice the slots, every client placed again. Placing probes as far
    /// as it must (there is always a free slot): a client that lands past `FEW_MAX_PROBES` is
    /// a long probe when next counted, and spills the table then.
    fn grow_few_clients(&mut self) {
        let slots = (self.few_clients.len() * 2).min(FEW_SLOTS);
        let mut grown: Vec<(u32, u64)> = written_zeros(slots);
        for &(addr, n) in self.few_clients.iter().filter(|&&(_, n)| n != 0) {
            let mut slot = few_slot(addr, slots);
            while grown.get(slot & (slots - 1)).is_some_and(|&(_, m)| m != 0) {
                slot += 1;
            }
            if let Some(free) = grown.get_mut(slot & (slots - 1)) {
                *free = (addr, n);
            }
        }
        self.few_clients = grown;
    }

    /// The small table's clients as sorted runs.
    fn few_client_runs(&self) -> Vec<(u32, u64)> {
        let mut runs: Vec<(u32, u64)> = self
            .few_clients
            .iter()
            .copied()
            .filter(|&(_, n)| n != 0)
            .collect();
        runs.sort_unstable();
        runs
    }

    /// Too many distinct clients for the small table: replay its counts into the pending
    /// clients and use those from now on. The replay is no more work than the rows already read.
    ///
    /// When many of the small table's clients lie close together (clients from a few subnets,
    /// the usual case), a window of addresses around them is counted in an array from now on,
    /// which costs a row no more than the small table did. Clients outside it, however many and
    /// wherever, are collected and counted in batches.
    fn spill_few_clients(&mut self) {
        self.few_spilled = true;
        let few = self.few_client_runs();
        self.few_clients = Vec::new();
        if let Some((base, len)) = dense_window(&few) {
            self.dense_base = base;
            self.dense = written_zeros(len);
        }
        for (addr, n) in few {
            if n == 0 {
                continue;
            }
            match self
                .dense
                .get_mut(addr.wrapping_sub(self.dense_base) as usize)
            {
                Some(c) => add_carrying(c, &mut self.dense_carry, addr, n),
                None => {
                    for _ in 0..n {
                        self.push_client_v4(addr);
                    }
                }
            }
        }
    }

    #[cold]
    fn carry_dense(&mut self, addr: u32, n: u64) {
        let c = self.dense_carry.entry(addr).or_insert(0);
        *c = c.saturating_add(n);
    }

    /// Counts the pending IPv4 clients and merges them into the counted ones.
    fn fold_pending_clients(&mut self) {
        if self.pending_v4.is_empty() {
            return;
        }
        let runs = count_addresses(&mut self.pending_v4);
        if self.clients_v4.is_empty() {
            self.clients_v4 = runs;
        } else {
            let old = std::mem::take(&mut self.clients_v4);
            self.clients_v4 = merge_runs(&old, runs.into_iter()).collect();
        }
    }

    /// Every IPv4 client counted so far, taken out of the summer: the array window as it is
    /// (copying it into a list would touch, on a 1,000,000-row table, some 700 fresh pages a
    /// thread) and the rest counted.
    fn take_client_counts(&mut self) -> ClientCounts {
        self.count_batch_v4();
        if !self.few_spilled {
            let outside = self.few_client_runs();
            self.few_clients = Vec::new();
            self.few_len = 0;
            return ClientCounts {
                outside,
                ..ClientCounts::default()
            };
        }
        self.fold_pending_clients();
        ClientCounts {
            base: self.dense_base,
            window: std::mem::take(&mut self.dense),
            carry: std::mem::take(&mut self.dense_carry),
            outside: std::mem::take(&mut self.clients_v4),
        }
    }

    /// Adds the rows, states, real servers and IPv6 clients another summer counted; its IPv4
    /// clients are left for the caller to merge (see [`take_client_counts`](Self::take_client_counts)).
    fn absorb(&mut self, mut other: ConnSummer) {
        self.settle_known();
        other.settle_known();
        self.rows += other.rows;
        // Every state the other summer kept was a valid name, so each has an index here too.
        let states: Vec<Option<usize>> = other
            .states
            .iter()
            .map(|name| self.state_index(name))
            .collect();
        for real in other.reals {
            let i = match real.address {
                IpAddr::V4(a) => self.real_v4(u32::from(a), real.port),
                IpAddr::V6(a) => self.real_v6(a, real.port),
            };
            let Some(tally) = self.reals.get_mut(i) else {
                continue;
            };
            for (state, n) in real.each() {
                if let Some(&Some(state)) = states.get(state) {
                    tally.add(state, n);
                }
            }
        }
        for (addr, n) in other.clients_v6 {
            let c = self.clients_v6.entry(addr).or_insert(0);
            *c = c.saturating_add(n);
        }
    }

    fn finish(mut self) -> ConnSummary {
        let top_clients = if self.top_n == 0 {
            Vec::new()
        } else {
            let v4 = self.take_client_counts();
            top_clients(self.top_n, v4.each(), &self.clients_v6)
        };
        self.summary(top_clients)
    }

    /// The states and real servers as a [`ConnSummary`] with the given busiest clients.
    fn summary(mut self, top_clients: Vec<(IpAddr, u64)>) -> ConnSummary {
        self.settle_known();
        let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_real_state: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let names: Vec<String> = self
            .states
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        for real in &self.reals {
            let per_state = by_real_state
                .entry(SocketText(real.address, real.port).to_string())
                .or_default();
            for (state, n) in real.each() {
                let Some(name) = names.get(state).filter(|_| n > 0) else {
                    continue;
                };
                *per_state.entry(name.clone()).or_insert(0) += n;
                *by_state.entry(name.clone()).or_insert(0) += n;
            }
        }
        ConnSummary {
            total: self.rows,
            by_state,
            by_real_state,
            top_clients,
        }
    }
}

/// The `n` clients with the most entries, most first, ties broken by address.
fn top_clients(
    n: usize,
    v4: impl Iterator<Item = (u32, u64)>,
    v6: &HashMap<Ipv6Addr, u64>,
) -> Vec<(IpAddr, u64)> {
    if n == 0 {
        return Vec::new();
    }
    // A min-heap of the best so far: the weakest (fewest entries, then highest address) on top.
    let mut heap: BinaryHeap<Reverse<(u64, Reverse<IpAddr>)>> = BinaryHeap::with_capacity(n + 1);
    let all = v4
        .map(|(a, c)| (IpAddr::V4(Ipv4Addr::from(a)), c))
        .chain(v6.iter().map(|(&a, &c)| (IpAddr::V6(a), c)));
    for (addr, count) in all {
        if heap.len() == n
            && heap
                .peek()
                .is_some_and(|Reverse((least, _))| count < *least)
        {
            continue;
        }
        let item = Reverse((count, Reverse(addr)));
        if heap.len() < n {
            heap.push(item);
        } else if heap.peek().is_some_and(|weakest| item < *weakest) {
            heap.pop();
            heap.push(item);
        }
    }
    let mut top: Vec<(IpAddr, u64)> = heap
        .into_iter()
        .map(|Reverse((c, Reverse(a)))| (a, c))
        .collect();
    top.sort_unstable_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    top
}

/// Where the small client table of `slots` slots (a power of two) starts probing for `addr`:
/// the top bits of a multiplicative hash, so that a slot at one size is the prefix of the slot
/// at the next.
#[inline]
fn few_slot(addr: u32, slots: usize) -> usize {
    slot_of(u64::from(addr), slots)
}

/// Where `key` starts probing in a table of `slots` slots, a power of two: the top bits of a
/// multiplicative hash, which depend on every bit of the key.
#[inline(always)]
fn slot_of(key: u64, slots: usize) -> usize {
    let hash = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    hash.checked_shr(64 - slots.trailing_zeros()).unwrap_or(0) as usize
}

/// Two address-sorted sequences of `(address, count)` as one, counts of equal addresses added.
fn merge_runs<'a>(
    a: &'a [(u32, u64)],
    b: impl Iterator<Item = (u32, u64)> + 'a,
) -> impl Iterator<Item = (u32, u64)> + 'a {
    let mut a = a.iter().copied().peekable();
    let mut b = b.peekable();
    std::iter::from_fn(move || match (a.peek().copied(), b.peek().copied()) {
        (Some(x), Some(y)) if x.0 == y.0 => {
            a.next();
            b.next();
            Some((x.0, x.1.saturating_add(y.1)))
        }
        (Some(x), Some(y)) if x.0 < y.0 => a.next(),
        (_, Some(_)) => b.next(),
        (Some(_), None) => a.next(),
        (None, None) => None,
    })
}

/// `(address, how many times)` for each run of equal addresses in a sorted slice.
fn runs(sorted: &[u32]) -> impl Iterator<Item = (u32, u64)> + '_ {
    sorted
        .chunk_by(|a, b| a == b)
        .filter_map(|run| Some((*run.first()?, run.len() as u64)))
}

/// What summing a connection table can fail on.
#[derive(Debug, thiserror::Error)]
pub enum ConnReadError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("reading the connection table: {0}")]
    Io(#[from] std::io::Error),
    #[error("the connection table is larger than {}; not read further", bytesize::ByteSize::b(*limit).display().iec())]
    TooLarge { limit: u64 },
}

/// The most of a connection table that is read, about 16 million IPv4 rows. A table read from a
/// snapshot can be anything, even endless; past this, reading stops with an error.
pub const MAX_TABLE_BYTES: u64 = 1 << 30;

/// How much of a table is read at a time, into buffers that are reused (a few per thread).
/// Small enough that a chunk is still in the cache when a thread sums it.
const CHUNK_BYTES: usize = 1 << 18;
const MAX_THREADS: usize = 64;

/// Sums a connection table read from `input`: the file, or any bytes. Every table lbtop sums
/// goes through here.
///
/// The table is read in chunks into a few reused buffers, each cut after its last `\n` (the
/// partial line after it starts the next chunk), so memory stays bounded whatever the table's
/// size; past [`MAX_TABLE_BYTES`] reading stops. A table that fits in one chunk is summed on the
/// calling thread. A larger one is summed as it is read by a thread per core (the calling one
/// among them), each reading the next chunk when it is free and summing it into its own
/// [`ConnSummer`]; their counts are merged exactly, so the result, errors and their line numbers
/// included, is the same as on one thread.
pub fn sum_ip_vs_conn(input: impl Read + Send, top_n: usize) -> Result<ConnSummary, ConnReadError> {
    sum_stream(
        input,
        top_n,
        cores().min(MAX_THREADS),
        CHUNK_BYTES,
        MAX_TABLE_BYTES,
    )
}

/// How many threads can run at once (1 when unknown); asked once, as it reads cgroup files.
pub(crate) fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// [`sum_ip_vs_conn`] with `threads` summing threads, chunks of `chunk_bytes` (lines must be
/// shorter) and at most `limit` bytes read.
fn sum_stream(
    input: impl Read + Send,
    top_n: usize,
    threads: usize,
    chunk_bytes: usize,
    limit: u64,
) -> Result<ConnSummary, ConnReadError> {
    let mut chunks = LineChunks::new(input, limit);
    let mut buf = vec![0; chunk_bytes.max(1)];
    match chunks.next(&mut buf)? {
        Chunk::Lines(len) if threads > 1 && !chunks.at_end() => {
            sum_in_parallel(chunks, len, buf, top_n, threads)
        }
        first => sum_serially(chunks, first, buf, top_n),
    }
}

/// Reads and sums the chunks one after the other on the calling thread.
fn sum_serially(
    mut chunks: LineChunks<impl Read>,
    first: Chunk,
    mut buf: Vec<u8>,
    top_n: usize,
) -> Result<ConnSummary, ConnReadError> {
    let mut summer = ConnSummer::new(top_n);
    let mut lines = 0;
    let mut chunk = first;
    loop {
        match chunk {
            Chunk::End => return Ok(summer.finish()),
            Chunk::LongLine => return Err(long_line(buf.len(), lines + 1).into()),
            Chunk::Lines(len) => {
                lines += sum_lines(&mut summer, buf.get(..len).unwrap_or_default()).map_err(
                    |mut e| {
                        e.line += lines;
                        e
                    },
                )?;
            }
        }
        chunk = chunks.next(&mut buf)?;
    }
}

/// What one thread summed: its counts, and each chunk it took with how many lines it had or its
/// error (lines numbered from 1 in the chunk).
struct Share {
    summer: ConnSummer,
    outcomes: Vec<(usize, Result<usize, ParseError>)>,
}

impl Share {
    fn new(top_n: usize) -> Self {
        Self {
            summer: ConnSummer::new(top_n),
            outcomes: Vec::new(),
        }
    }

    /// Sums the `index`th chunk unless one before it is known to fail, and records what came of
    /// it.
    fn take(&mut self, index: usize, bytes: &[u8], failed: &AtomicUsize) {
        if index >= failed.load(Ordering::Relaxed) {
            return;
        }
        let outcome = sum_lines(&mut self.summer, bytes);
        if outcome.is_err() {
            failed.fetch_min(index, Ordering::Relaxed);
        }
        self.outcomes.push((index, outcome));
    }

    /// Reads the next chunk into `buf` (holding the reader only for that) and sums it, until the
    /// table ends, reading stops, or a chunk is known to fail.
    fn take_all(
        &mut self,
        reader: &Mutex<SharedReader<impl Read>>,
        buf: &mut [u8],
        failed: &AtomicUsize,
    ) {
        while failed.load(Ordering::Relaxed) == usize::MAX {
            let Ok(mut r) = lock_soon(reader) else { return };
            if r.stop.is_some() {
                return;
            }
            let (index, len) = match r.chunks.next(buf) {
                Ok(Chunk::Lines(len)) => {
                    r.read += 1;
                    (r.read - 1, len)
                }
                Ok(Chunk::End) => return,
                Ok(Chunk::LongLine) => {
                    r.stop = Some(Stop::LongLine);
                    return;
                }
                Err(e) => {
                    r.stop = Some(Stop::Read(e));
                    return;
                }
            };
            drop(r);
            self.take(index, buf.get(..len).unwrap_or_default(), failed);
        }
    }

    /// The counts, with the IPv4 clients taken out: counting the pending ones is most of merging
    /// them, so each thread does it for its own.
    fn done(mut self) -> (Share, ClientCounts) {
        let v4 = if self.summer.top_n > 0 {
            self.summer.take_client_counts()
        } else {
            ClientCounts::default()
        };
        (self, v4)
    }
}

/// Takes `lock`, spinning for up to [`SPIN_FOR`] first: it is held only while a chunk is read
/// (some 30 µs for 256 KiB), and a thread put to sleep for that costs more to wake than the
/// wait (a wake-up is an interrupt to the other core, which in a VM is costly).
fn lock_soon<T>(lock: &Mutex<T>) -> std::sync::LockResult<std::sync::MutexGuard<'_, T>> {
    let start = std::time::Instant::now();
    loop {
        for _ in 0..64 {
            match lock.try_lock() {
                Ok(guard) => return Ok(guard),
                Err(std::sync::TryLockError::Poisoned(p)) => return Err(p),
                Err(std::sync::TryLockError::WouldBlock) => std::hint::spin_loop(),
            }
        }
        if start.elapsed() > SPIN_FOR {
            return lock.lock();
        }
    }
}

/// How long [`lock_soon`] spins before it waits.
const SPIN_FOR: std::time::Duration = std::time::Duration::from_micros(100);

/// The table as the summing threads share it: whoever is free reads the next chunk.
struct SharedReader<R> {
    chunks: LineChunks<R>,
    /// How many chunks have been read, which numbers the next.
    read: usize,
    stop: Option<Stop>,
}

/// Why reading stopped before the end of the table.
enum Stop {
    LongLine,
    Read(ConnReadError),
}

/// Sums a table whose first chunk (the first `first_len` bytes of `first_buf`) did not hold all
/// of it on `threads` threads, the calling one among them: each reads the next chunk into its own
/// buffer when it is free, then sums it while another reads. No thread waits for another except
/// while one is reading, and a busy core holds nothing up.
fn sum_in_parallel(
    chunks: LineChunks<impl Read + Send>,
    first_len: usize,
    mut first_buf: Vec<u8>,
    top_n: usize,
    threads: usize,
) -> Result<ConnSummary, ConnReadError> {
    let chunk_bytes = first_buf.len();
    let reader = Mutex::new(SharedReader {
        chunks,
        read: 1,
        stop: None,
    });
    // The first chunk known to fail: chunks after it cannot change the outcome.
    let failed = AtomicUsize::new(usize::MAX);
    let shares = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut share = Share::new(top_n);
                    share.take_all(&reader, &mut vec![0; chunk_bytes], &failed);
                    share.done()
                })
            })
            .collect();
        let mut own = Share::new(top_n);
        own.take(0, first_buf.get(..first_len).unwrap_or_default(), &failed);
        own.take_all(&reader, &mut first_buf, &failed);
        let mut shares = vec![own.done()];
        for h in helpers {
            shares.push(
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        shares
    });
    let (read, stop) = match reader.into_inner() {
        Ok(r) => (r.read, r.stop),
        // A thread panicked while reading: the panic was resumed above.
        Err(poisoned) => {
            let r = poisoned.into_inner();
            (r.read, r.stop)
        }
    };
    let mut outcomes: Vec<Option<Result<usize, ParseError>>> = vec![None; read];
    let mut summers = Vec::with_capacity(shares.len());
    for (share, v4) in shares {
        for (k, outcome) in share.outcomes {
            if let Some(slot) = outcomes.get_mut(k) {
                *slot = Some(outcome);
            }
        }
        summers.push((share.summer, v4));
    }
    if matches!(stop, Some(Stop::LongLine)) {
        outcomes.push(Some(Err(long_line(chunk_bytes, 1))));
    }
    // Each chunk numbered its lines from 1. Every chunk before the first failing one was summed
    // to its end, so its error is the one reading the table in order would have stopped at.
    let mut line_offset = 0;
    for outcome in outcomes {
        match outcome {
            Some(Ok(lines)) => line_offset += lines,
            Some(Err(mut e)) => {
                e.line += line_offset;
                return Err(e.into());
            }
            // Only chunks after a failing one are left unsummed.
            None => break,
        }
    }
    if let Some(Stop::Read(e)) = stop {
        return Err(e);
    }
    Ok(merge_summers(summers, top_n))
}

/// The summers of several threads as one summary. The busiest clients are picked from the
/// merged counts: a client can be spread thinly over every piece and still be the busiest.
fn merge_summers(summers: Vec<(ConnSummer, ClientCounts)>, top_n: usize) -> ConnSummary {
    let mut merged: Option<ConnSummer> = None;
    let mut clients: Vec<ClientCounts> = Vec::with_capacity(summers.len());
    for (summer, v4) in summers {
        clients.push(v4);
        match merged.as_mut() {
            None => merged = Some(summer),
            Some(m) => m.absorb(summer),
        }
    }
    let merged = merged.unwrap_or_else(|| ConnSummer::new(top_n));
    if top_n == 0 {
        return merged.summary(Vec::new());
    }
    // Into the largest window, the others' counts are added in place.
    let widest = clients
        .iter()
        .enumerate()
        .max_by_key(|(_, c)| c.window.len())
        .map_or(0, |(i, _)| i);
    let mut all = if clients.is_empty() {
        ClientCounts::default()
    } else {
        clients.swap_remove(widest)
    };
    for other in clients {
        all.absorb(&other);
    }
    let top = top_clients(top_n, all.each(), &merged.clients_v6);
    merged.summary(top)
}

/// IPv4 clients and how many rows each has, as a summer hands them over: those in an array
/// window of addresses (`window[i]` rows for `base + i`, plus what the `u16` carried out), and
/// the rest, outside it, sorted by address.
#[derive(Debug, Default)]
struct ClientCounts {
    base: u32,
    window: Vec<u16>,
    carry: BTreeMap<u32, u64>,
    outside: Vec<(u32, u64)>,
}

impl ClientCounts {
    /// Every client counted, once each, with its rows: the window's in address order, then the
    /// others in address order.
    fn each(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        let windowed = self.window.iter().enumerate().filter_map(|(i, &n)| {
            let addr = self.base.wrapping_add(i as u32);
            let carried = if self.carry.is_empty() {
                0
            } else {
                self.carry.get(&addr).copied().unwrap_or(0)
            };
            let n = u64::from(n).saturating_add(carried);
            (n != 0).then_some((addr, n))
        });
        windowed.chain(self.outside.iter().copied())
    }

    /// Adds `other`'s counts: into the window where they fall in it, else to the others.
    fn absorb(&mut self, other: &ClientCounts) {
        let mut outside = Vec::new();
        for (addr, n) in other.each() {
            match self.window.get_mut(addr.wrapping_sub(self.base) as usize) {
                Some(c) => add_carrying(c, &mut self.carry, addr, n),
                None => outside.push((addr, n)),
            }
        }
        if outside.is_empty() {
            return;
        }
        // Each address is there once; the window's part and the rest are each sorted.
        outside.sort_unstable_by_key(|&(addr, _)| addr);
        self.outside = merge_runs(&self.outside, outside.into_iter()).collect();
    }
}

/// Adds `n` rows for `addr` to its `u16` count in a window, anything past what a `u16` holds to
/// `carry`.
fn add_carrying(count: &mut u16, carry: &mut BTreeMap<u32, u64>, addr: u32, n: u64) {
    let sum = u64::from(*count).saturating_add(n);
    *count = sum as u16;
    let over = sum & !u64::from(u16::MAX);
    if over != 0 {
        let c = carry.entry(addr).or_insert(0);
        *c = c.saturating_add(over);
    }
}

/// The error for a line that does not fit in a chunk of `chunk_bytes`.
fn long_line(chunk_bytes: usize, line: usize) -> ParseError {
    ParseError::new(
        IP_VS_CONN,
        line,
        format!(
            "line longer than {} bytes; no table row is that long",
            chunk_bytes.saturating_sub(1)
        ),
    )
}

/// `input` read as chunks of whole lines, at most `limit` bytes of it.
struct LineChunks<R> {
    input: R,
    /// The start of a line the last chunk did not end, which begins the next.
    carry: Vec<u8>,
    read: u64,
    limit: u64,
    ended: bool,
}

/// The next chunk of a table, read into a buffer.
enum Chunk {
    /// The first so many bytes of the buffer are whole lines (the last without its `\n` when the
    /// table ends without one).
    Lines(usize),
    /// A line longer than the buffer.
    LongLine,
    End,
}

impl<R: Read> LineChunks<R> {
    fn new(input: R, limit: u64) -> Self {
        Self {
            input,
            carry: Vec::new(),
            read: 0,
            limit,
            ended: false,
        }
    }

    /// Whether everything has been handed out.
    fn at_end(&self) -> bool {
        self.ended && self.carry.is_empty()
    }

    /// Fills `buf` with the line carried over and what follows it, up to the last `\n`.
    fn next(&mut self, buf: &mut [u8]) -> Result<Chunk, ConnReadError> {
        let carried = self.carry.len();
        let Some(head) = buf.get_mut(..carried) else {
            return Ok(Chunk::LongLine);
        };
        head.copy_from_slice(&self.carry);
        self.carry.clear();
        let mut filled = carried;
        while !self.ended {
            let Some(space) = buf.get_mut(filled..).filter(|s| !s.is_empty()) else {
                break;
            };
            match self.input.read(space) {
                Ok(0) => self.ended = true,
                Ok(n) => {
                    filled += n;
                    self.read += n as u64;
                    if self.read > self.limit {
                        return Err(ConnReadError::TooLarge { limit: self.limit });
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let data = buf.get(..filled).unwrap_or_default();
        let whole = if self.ended {
            filled
        } else {
            match memchr::memrchr(b'\n', data) {
                Some(i) => i + 1,
                None => return Ok(Chunk::LongLine),
            }
        };
        self.carry
            .extend_from_slice(data.get(whole..).unwrap_or_default());
        Ok(if whole == 0 {
            Chunk::End
        } else {
            Chunk::Lines(whole)
        })
    }
}

/// Feeds every line of `bytes` to `summer`, numbering them from 1, and returns how many there
/// were (the `\n`s, plus one for a last line without one).
fn sum_lines(summer: &mut ConnSummer, bytes: &[u8]) -> Result<usize, ParseError> {
    if summer.top_n > 0 {
        // IPv4 rows are about 66 bytes; reserving spares the client buffer its regrowth.
        summer
            .pending_v4
            .reserve((bytes.len() / 64).min(PENDING_BATCH));
    }
    let mut rest = bytes;
    let mut line_no = 0usize;
    while !rest.is_empty() {
        line_no += 1;
        let len = match summer.fast_v4_row(rest) {
            Some(len) => len,
            None => {
                let len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                let line = rest.get(..len).unwrap_or_default();
                summer.slow_line(line_no, line.strip_suffix(b"\r").unwrap_or(line))?;
                len
            }
        };
        rest = rest.get(len + 1..).unwrap_or_default();
    }
    summer.count_batch_v4();
    Ok(line_no)
}

/// What each of the first 48 bytes of a fast-path row may be: bit 0 a hex digit, bit 1 a
/// space, bit 2 printable (not a space), bit 3 anything (the start of the state).
const ROW_HEAD: [u8; 48] = {
    let mut classes = [1u8; 48];
    let mut i = 0;
    while i < 48 {
        classes[i] = match i {
            0 | 1 => 4,
            2 => 4 | 2,
            3 | 12 | 17 | 26 | 31 | 40 | 45 => 2,
            46 | 47 => 8,
            _ => 1,
        };
        i += 1;
    }
    classes
};

/// Whether the protocol, addresses, ports and the spaces between them sit where a fast-path row
/// has them. Written byte by byte without branches, over a fixed length, so that it compiles to
/// a few vector instructions.
#[inline(always)]
fn row_head_ok<const N: usize>(b: &[u8; N]) -> bool {
    let mut bad = 0u8;
    for (&c, &class) in b.iter().zip(&ROW_HEAD) {
        let hex = u8::from(c.wrapping_sub(b'0') < 10) | u8::from((c | 0x20).wrapping_sub(b'a') < 6);
        let space = u8::from(c == b' ');
        let graphic = u8::from(c.wrapping_sub(0x21) < 0x5E);
        let fits = (hex & class) | (space & (class >> 1)) | (graphic & (class >> 2)) | (class >> 3);
        bad |= fits ^ 1;
    }
    bad == 0
}

/// Eight hex digits already checked to be hex digits, to their value.
#[inline(always)]
fn hex8_value(b: [u8; 8]) -> u32 {
    let x = u64::from_be_bytes(b);
    // Letters have bit 6 set; digits do not.
    let v = (x & (ONES_64 * 0x0F)) + ((x >> 6) & ONES_64) * 9;
    let v = (v | (v >> 4)) & 0x00FF_00FF_00FF_00FF;
    let v = (v | (v >> 8)) & 0x0000_FFFF_0000_FFFF;
    let v = (v | (v >> 16)) & 0x0000_0000_FFFF_FFFF;
    v as u32
}

/// The length of a row [`ConnSummer::known_row`] takes, its `\n` included.
const KNOWN_ROW: usize = 66;

/// Whether the eight bytes from offset 58 of a row, as a little-endian word, are a `%7u` expiry
/// (spaces, then at least one digit) followed by `\n`. Branch-free over the word (SWAR).
#[inline(always)]
fn expiry_and_newline(w: u64) -> bool {
    const SEVEN: u64 = 0x00FF_FFFF_FFFF_FFFF;
    if w & HIGH_64 != 0 || w >> 56 != u64::from(b'\n') {
        return false;
    }
    let x = w & SEVEN;
    let digit = at_least(x, b'0') & !at_least(x, b'9' + 1) & (HIGH_64 & SEVEN);
    // Bytes equal to a space: XOR leaves them zero, and only zero bytes stay below 0x80 once
    // 0x7F is added to their low seven bits.
    let t = x ^ (ONES_64 * u64::from(b' '));
    let space = !((t & (ONES_64 * 0x7F)).wrapping_add(ONES_64 * 0x7F) | t) & (HIGH_64 & SEVEN);
    // Every byte a space or a digit, the last a digit, and the spaces all before the digits.
    let spaces = (space >> 7) * 0xFF;
    digit | space == HIGH_64 & SEVEN && digit & (0x80 << 48) != 0 && spaces & (spaces + 1) == 0
}

/// Where a fast-path row ends: after the `%7u` expiry at offset 58 and, when a persistence
/// engine is named, its name and data. None when the expiry is not a number.
#[inline(always)]
fn row_end(rest: &[u8]) -> Option<usize> {
    let mut i = 58;
    while rest.get(i) == Some(&b' ') {
        i += 1;
    }
    let digits_start = i;
    while rest.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i == digits_start {
        return None;
    }
    match rest.get(i) {
        None | Some(b'\n') => Some(i),
        Some(b'\r') if matches!(rest.get(i + 1), None | Some(b'\n')) => Some(i + 1),
        Some(b' ') => {
            let tail = rest.get(i..)?;
            Some(i + memchr::memchr(b'\n', tail).unwrap_or(tail.len()))
        }
        Some(_) => None,
    }
}

/// An `%08X` or `%pI6` address, a space, a `%04X` port and a space, at `*pos`, which moves past
/// them.
#[inline]
fn fixed_addr_port(line: &[u8], pos: &mut usize) -> Option<(IpAddr, u16)> {
    let at = *pos;
    let (addr, len) = if line.get(at + 8) == Some(&b' ') {
        let a = hex8(*line.get(at..)?.first_chunk::<8>()?)?;
        (IpAddr::V4(Ipv4Addr::from(a)), 8)
    } else if line.get(at + 39) == Some(&b' ') {
        (
            IpAddr::V6(full_ipv6(line.get(at..)?.first_chunk::<39>()?)?),
            39,
        )
    } else {
        return None;
    };
    let p = at + len + 1;
    let port = hex4(*line.get(p..)?.first_chunk::<4>()?)?;
    if line.get(p + 4) != Some(&b' ') {
        return None;
    }
    *pos = p + 5;
    Some((addr, port))
}

/// The kernel's `%pI6`: eight groups of four hex digits separated by colons.
fn full_ipv6(s: &[u8; 39]) -> Option<Ipv6Addr> {
    let mut groups = [0u16; 8];
    for (i, g) in groups.iter_mut().enumerate() {
        let at = i * 5;
        if i > 0 && s.get(at - 1) != Some(&b':') {
            return None;
        }
        *g = hex4(*s.get(at..)?.first_chunk::<4>()?)?;
    }
    Some(Ipv6Addr::from(groups))
}

/// `Pro FromIP   FPrt ToIP …`, however it is spaced.
fn is_header(line: &[u8]) -> bool {
    let mut words = line
        .split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty());
    words.next() == Some(b"Pro") && words.next() == Some(b"FromIP")
}

/// An address field: eight hex digits for IPv4, else any textual IPv6 form.
fn conn_addr(s: &str) -> Result<IpAddr, String> {
    if s.len() == 8
        && let Some(a) = hex_ipv4(s)
    {
        return Ok(IpAddr::V4(a));
    }
    s.parse::<Ipv6Addr>()
        .map(IpAddr::V6)
        .map_err(|_| format!("bad address {}", excerpt(s)))
}

fn conn_port(s: &str) -> Result<u16, String> {
    hex_u16(s).ok_or_else(|| format!("bad port {}", excerpt(s)))
}

/// `N` bytes of the fixed-size row head from `at` (offsets are constants, so this folds away).
#[inline(always)]
fn chunk<const N: usize, const M: usize>(b: &[u8; M], at: usize) -> [u8; N] {
    b.get(at..)
        .and_then(|s| s.first_chunk::<N>())
        .copied()
        .unwrap_or([0xFF; N])
}

/// The 11 bytes of the state field (offset 46) as one number, so comparing states is one
/// comparison.
#[inline(always)]
fn state_field(b: &[u8; 65]) -> u128 {
    u128::from_le_bytes(chunk::<16, 65>(b, 46)) & ((1u128 << 88) - 1)
}

/// The slot of a state field in the direct-mapped state cache: the 88-bit field folded to 7 bits
/// (no two TCP, UDP or SCTP state names of the kernel share one).
#[inline(always)]
fn state_slot(field: u128) -> usize {
    let folded = (field as u64) ^ ((field >> 64) as u64);
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 57) as usize
}

/// A state name padded with spaces as `%-11s` prints it, in the form of [`state_field`]; None
/// when it does not fit.
fn padded_state(name: &[u8]) -> Option<u128> {
    if name.len() > 11 {
        return None;
    }
    let mut key = [0u8; 16];
    key.get_mut(..11)?.fill(b' ');
    key.get_mut(..name.len())?.copy_from_slice(name);
    Some(u128::from_le_bytes(key))
}

const ONES_64: u64 = 0x0101_0101_0101_0101;
const HIGH_64: u64 = 0x8080_8080_8080_8080;

/// The top bit of each byte of `v` set where that byte is at least `bound`; every byte of `v`
/// must be below 0x80 so that no addition carries into the next byte.
#[inline(always)]
fn at_least(v: u64, bound: u8) -> u64 {
    v.wrapping_add(ONES_64 * u64::from(0x80u8.wrapping_sub(bound))) & HIGH_64
}

/// Eight ASCII hex digits (either case) to their value, all bytes at once (SWAR): a byte is
/// checked against a bound by adding `0x80 - bound` and testing its top bit, which cannot carry
/// into the next byte once all bytes are known to be below 0x80.
#[inline(always)]
fn hex8(b: [u8; 8]) -> Option<u32> {
    let x = u64::from_be_bytes(b);
    if x & HIGH_64 != 0 {
        return None;
    }
    let digit = at_least(x, b'0') & !at_least(x, b'9' + 1);
    let folded = x | (ONES_64 * 0x20);
    let letter = at_least(folded, b'a') & !at_least(folded, b'f' + 1);
    if digit | letter != HIGH_64 {
        return None;
    }
    let v = (x & (ONES_64 * 0x0F)) + (letter >> 7) * 9;
    let v = (v | (v >> 4)) & 0x00FF_00FF_00FF_00FF;
    let v = (v | (v >> 8)) & 0x0000_FFFF_0000_FFFF;
    let v = (v | (v >> 16)) & 0x0000_0000_FFFF_FFFF;
    u32::try_from(v).ok()
}

/// Four ASCII hex digits, as [`hex8`].
#[inline(always)]
fn hex4(b: [u8; 4]) -> Option<u16> {
    let [p, q, r, s] = b;
    hex8([b'0', b'0', b'0', b'0', p, q, r, s]).and_then(|v| u16::try_from(v).ok())
}

/// Address spans up to this many are counted in an array (two or four bytes an address, so it
/// stays in a core's cache) rather than sorted.
const DENSE_SPAN: usize = 1 << 18;

/// Where to count clients in an array after the small table spills, given its sorted
/// `(address, count)`s: the first address and length of a window (at most `DENSE_SPAN`) around
/// the densest span of at most half that which holds a quarter or more of the rows counted so
/// far, with room on either side. None when there is no such span.
fn dense_window(sorted: &[(u32, u64)]) -> Option<(u32, usize)> {
    let reach = u64::try_from(DENSE_SPAN / 2).ok()?;
    let total: u64 = sorted.iter().map(|&(_, n)| n).sum();
    // Slide a window of `reach` addresses over the clients: (rows in it, first, last client).
    let mut best = (0u64, 0u32, 0u32);
    let mut rows = 0u64;
    let mut start = 0;
    for &(addr, n) in sorted {
        rows += n;
        while let Some(&(first, m)) = sorted.get(start)
            && u64::from(addr - first) >= reach
        {
            rows -= m;
            start += 1;
        }
        if rows > best.0 {
            best = (rows, sorted.get(start).map_or(addr, |c| c.0), addr);
        }
    }
    let (rows, first, last) = best;
    if rows == 0 || rows.saturating_mul(4) < total {
        return None;
    }
    let span = (last - first) as usize + 1;
    let len = span.saturating_mul(2).next_power_of_two().min(DENSE_SPAN);
    let slack = u32::try_from((len - span) / 2).ok()?;
    let len32 = u32::try_from(len).ok()?;
    Some((first.saturating_sub(slack).min(u32::MAX - (len32 - 1)), len))
}

/// `len` zeros, written rather than left to the allocator. Memory read before it is written is
/// first mapped to the kernel's shared zero page, and the first write to it then costs a second
/// fault and, while other threads run, a TLB flush on every core: 5-8 % of the time of summing a
/// 1,000,000-row table on two threads went to that.
fn written_zeros<T: Clone + Default>(len: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    // Hidden from the optimiser, which would otherwise turn the fill back into a zeroed
    // allocation.
    v.resize(len, std::hint::black_box(T::default()));
    v
}

/// `(address, how many times)` for each distinct address in `v`, sorted by address; `v` is
/// left empty. Addresses within a small span (clients from a few subnets, the usual case) are
/// counted in an array indexed by address; any others are radix sorted, which no choice of
/// addresses can slow down.
fn count_addresses(v: &mut Vec<u32>) -> Vec<(u32, u64)> {
    let (min, max) = v
        .iter()
        .fold((u32::MAX, u32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let span = (max.wrapping_sub(min) as usize).wrapping_add(1);
    let counted = if v.is_empty() {
        Vec::new()
    } else if span <= DENSE_SPAN && span <= v.len().saturating_mul(8) && v.len() < u32::MAX as usize
    {
        let mut counts: Vec<u32> = written_zeros(span);
        for &x in v.iter() {
            if let Some(c) = counts.get_mut((x - min) as usize) {
                *c += 1;
            }
        }
        (min..=max)
            .zip(counts)
            .filter(|&(_, n)| n != 0)
            .map(|(a, n)| (a, u64::from(n)))
            .collect()
    } else {
        radix_sort(v);
        runs(v).collect()
    };
    v.clear();
    counted
}

/// LSD radix sort of `u32`s in three passes of 11, 11 and 10 bits; a pass is skipped when all
/// keys share that digit (clients from one /16, say).
fn radix_sort(v: &mut Vec<u32>) {
    const BITS: [u32; 3] = [0, 11, 22];
    const MASK: u32 = 0x7FF;
    let mut hist = [[0usize; 2048]; 3];
    for &x in v.iter() {
        for (h, shift) in hist.iter_mut().zip(BITS) {
            if let Some(slot) = h.get_mut(((x >> shift) & MASK) as usize) {
                *slot += 1;
            }
        }
    }
    let len = v.len();
    let mut scratch = vec![0u32; len];
    for (h, shift) in hist.iter_mut().zip(BITS) {
        if h.contains(&len) {
            continue;
        }
        let mut sum = 0;
        for c in h.iter_mut() {
            let t = *c;
            *c = sum;
            sum += t;
        }
        for &x in v.iter() {
            if let Some(pos) = h.get_mut(((x >> shift) & MASK) as usize) {
                if let Some(dst) = scratch.get_mut(*pos) {
                    *dst = x;
                }
                *pos += 1;
            }
        }
        std::mem::swap(v, &mut scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Rows below are constructed from ip_vs_conn_seq_show's format strings, not captured from a
    // kernel; real captures are tested in tests/parse_conn.rs.
    const HEADER: &str =
        "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n";

    /// A whole table in memory, one chunk.
    const ONE_SHOT: usize = 64 << 20;

    /// A table's text summed as its file is.
    fn sum(text: &str, top_n: usize) -> Result<ConnSummary, ParseError> {
        sum_bytes(text.as_bytes(), top_n)
    }

    fn sum_bytes(bytes: &[u8], top_n: usize) -> Result<ConnSummary, ParseError> {
        parse_only(sum_ip_vs_conn(bytes, top_n))
    }

    /// Summed in chunks of `chunk_bytes` on `threads` threads.
    fn sum_on_threads(
        bytes: &[u8],
        top_n: usize,
        threads: usize,
        chunk_bytes: usize,
    ) -> Result<ConnSummary, ParseError> {
        parse_only(sum_stream(
            bytes,
            top_n,
            threads,
            chunk_bytes,
            MAX_TABLE_BYTES,
        ))
    }

    /// Bytes in memory cannot fail to be read: only parse errors are expected.
    fn parse_only(r: Result<ConnSummary, ConnReadError>) -> Result<ConnSummary, ParseError> {
        r.map_err(|e| match e {
            ConnReadError::Parse(e) => e,
            other => panic!("not a parse error: {other}"),
        })
    }

    fn v4_row(client: u32, cport: u16, dest: u32, state: &str, expires: u32) -> String {
        format!(
            "{:<3} {:08X} {:04X} {:08X} {:04X} {:08X} {:04X} {:<11} {:7}\n",
            "TCP", client, cport, 0xC000_020Au32, 80, dest, 80, state, expires
        )
    }

    #[test]
    fn forty_thousand_distinct_states_are_looked_up_not_searched() {
        // Each row a state of its own, on the fast path (fixed width) and on the general path
        // (IPv6), as a crafted snapshot can hold: searching the names took 5 s for 40,000.
        let n = 40_000u32;
        let mut text = String::from(HEADER);
        for i in 0..n {
            text += &v4_row(0xC633_6400 + i, 1000, 0x0A00_0002, &format!("S{i:05}"), 60);
        }
        for i in 0..n {
            text += &format!(
                "TCP 2001:0db8:0000:0000:0000:0000:0000:0001 D431 \
                 2001:0db8:0000:0000:0000:0000:0000:0100 0050 \
                 2001:0db8:0000:0000:0000:0000:0000:0200 0050 X{i:05} 60\n"
            );
        }
        let started = std::time::Instant::now();
        let s = sum(&text, 3).expect("parses");
        let took = started.elapsed();
        assert_eq!(s.total, 2 * u64::from(n));
        assert_eq!(s.by_state.len(), 2 * n as usize);
        assert_eq!(s.by_state["S39999"], 1);
        assert_eq!(s.by_real_state["[2001:db8::200]:80"]["X00042"], 1);
        // Seconds to spare on a slow shared machine in a debug build; searching took minutes.
        assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    }

    #[test]
    fn each_real_server_keeps_only_the_states_it_saw() {
        // Real server i sees only state i: a vector per real server as long as the states seen
        // so far would hold reals × states counts (36 MB here, 12 GB for 40,000 of each).
        let n = 3_000u32;
        let mut text = String::from(HEADER);
        for i in 0..n {
            text += &v4_row(0xC633_6400, 1000, 0x0A00_0000 + i, &format!("S{i:05}"), 60);
        }
        let mut summer = ConnSummer::new(0);
        sum_lines(&mut summer, text.as_bytes()).expect("parses");
        let slots: usize = summer
            .reals
            .iter()
            .map(|r| r.counts.len() + r.more.len())
            .sum();
        assert!(slots <= n as usize * DENSE_STATES, "{slots} counts kept");
        let s = summer.finish();
        assert_eq!(s.by_real_state["10.0.11.183:80"]["S02999"], 1);
        assert_eq!(s.by_real_state.len(), n as usize);
    }

    #[test]
    fn swar_hex_agrees_with_the_digit_by_digit_parser() {
        for a in 0..=255u8 {
            for b in [b'0', b'9', b'A', b'f', b'G', b' ', 0x80, 0xFF] {
                let digits = [a, b, b'1', b'2', b'3', b'4', b'5', a];
                let want = std::str::from_utf8(&digits)
                    .ok()
                    .filter(|s| s.len() == 8)
                    .and_then(crate::source::parse::text::hex_u32);
                assert_eq!(hex8(digits), want, "{digits:?}");
            }
        }
        assert_eq!(hex8(*b"C0A8FFfe"), Some(0xC0A8_FFFE));
        assert_eq!(hex4(*b"01bB"), Some(0x01BB));
        assert_eq!(hex4(*b"01G0"), None);
    }

    #[test]
    fn the_vector_row_check_agrees_with_checking_field_by_field() {
        // The fast path's shape as separate checks: protocol, six hex fields, the spaces.
        fn by_field(b: &[u8; 65]) -> bool {
            let hex = |at: usize, n: usize| b[at..at + n].iter().all(u8::is_ascii_hexdigit);
            [3, 12, 17, 26, 31, 40, 45].iter().all(|&i| b[i] == b' ')
                && b[0].is_ascii_graphic()
                && b[1].is_ascii_graphic()
                && (b[2].is_ascii_graphic() || b[2] == b' ')
                && hex(4, 8)
                && hex(13, 4)
                && hex(18, 8)
                && hex(27, 4)
                && hex(32, 8)
                && hex(41, 4)
        }
        let row = v4_row(0xC0A8_01FE, 0xD431, 0x0A00_000B, "ESTABLISHED", 899);
        let row = row.as_bytes().first_chunk::<65>().expect("a full row");
        assert!(row_head_ok(row) && by_field(row));
        for at in 0..48 {
            for c in 0..=255u8 {
                let mut b = *row;
                b[at] = c;
                assert_eq!(row_head_ok(&b), by_field(&b), "byte {c:#04x} at {at}");
            }
        }
        for digits in [*b"C0A801FE", *b"00000000", *b"ffffffff", *b"9aB3c4D5"] {
            assert_eq!(Some(hex8_value(digits)), hex8(digits));
        }
    }

    #[test]
    fn sums_states_and_real_servers_of_ipv4_rows() {
        let mut t = HEADER.to_string();
        t += &v4_row(0xC000_0201, 1000, 0xC633_6401, "ESTABLISHED", 899);
        t += &v4_row(0xC000_0201, 1001, 0xC633_6401, "FIN_WAIT", 100);
        t += &v4_row(0xC000_0202, 1002, 0xC633_6402, "ESTABLISHED", 12);
        let s = sum(&t, 10).expect("parses");
        assert_eq!(s.total, 3);
        assert_eq!(s.by_state["ESTABLISHED"], 2);
        assert_eq!(s.by_state["FIN_WAIT"], 1);
        assert_eq!(s.by_real_state["198.51.100.1:80"]["ESTABLISHED"], 1);
        assert_eq!(s.by_real_state["198.51.100.1:80"]["FIN_WAIT"], 1);
        assert_eq!(s.by_real_state["198.51.100.2:80"].len(), 1);
        assert_eq!(
            s.top_clients,
            vec![
                ("192.0.2.1".parse().expect("ip"), 2),
                ("192.0.2.2".parse().expect("ip"), 1)
            ]
        );
    }

    #[test]
    fn fast_path_and_general_path_agree() {
        let mut t = HEADER.to_string();
        for i in 0..50u32 {
            t += &v4_row(
                0x0A00_0000 + i % 7,
                1000,
                0xC633_6400 + i % 3,
                ["ESTABLISHED", "SYN_RECV", "TIME_WAIT"][(i % 3) as usize],
                i,
            );
        }
        let fast = sum(&t, 5).expect("parses");
        // Doubling the separators keeps every field but defeats the fixed offsets.
        let slow_text = t.replace(' ', "  ");
        let mut summer = ConnSummer::new(5);
        for line in slow_text.lines() {
            assert!(summer.fast_v4_row(line.as_bytes()).is_none());
        }
        assert_eq!(sum(&slow_text, 5).expect("parses"), fast);
    }

    /// A table summed with every row read the long way: what [`sum_bytes`] gives without the
    /// rows it counts by their known bytes.
    fn sum_every_row_the_long_way(bytes: &[u8], top_n: usize) -> Result<ConnSummary, ParseError> {
        let mut summer = ConnSummer::new(top_n);
        for (i, line) in bytes.split_inclusive(|&c| c == b'\n').enumerate() {
            if summer.v4_row(line).is_none() {
                let line = line.strip_suffix(b"\n").unwrap_or(line);
                summer.slow_line(i + 1, line.strip_suffix(b"\r").unwrap_or(line))?;
            }
        }
        Ok(summer.finish())
    }

    #[test]
    fn rows_counted_by_their_known_bytes_sum_as_rows_read_the_long_way() {
        // Five real servers, three states: after the first fifteen keys every row is known.
        let mut t = HEADER.to_string();
        for i in 0..3_000u32 {
            let state = ["ESTABLISHED", "SYN_RECV", "TIME_WAIT"][(i % 3) as usize];
            t += &v4_row(
                0xC633_6400 + i % 37,
                1000,
                0x0A00_0002 + i % 5,
                state,
                i % 900,
            );
        }
        let mut summer = ConnSummer::new(5);
        sum_lines(&mut summer, t.as_bytes()).expect("parses");
        assert_eq!(
            summer.known.drain().map(|(_, _, n)| n).sum::<u64>(),
            3_000 - 15
        );
        assert_eq!(
            sum(&t, 5).expect("parses"),
            sum_every_row_the_long_way(t.as_bytes(), 5).expect("parses")
        );
    }

    #[test]
    fn a_known_row_with_any_other_byte_wrong_is_read_the_long_way() {
        let good = v4_row(0xC633_6401, 1000, 0x0A00_0002, "ESTABLISHED", 12);
        // The key (offsets 32..58) is known from the first row; each other row differs from it
        // in one byte outside the key, or in its end.
        let mut variants: Vec<String> = Vec::new();
        for at in (0..32).chain(58..66) {
            for c in [b'G', b' ', b'0', b'\r', b'\t', b'x', b'9', 0xC3] {
                let mut row = good.clone().into_bytes();
                row[at] = c;
                variants.push(String::from_utf8_lossy(&row).into_owned());
            }
        }
        variants.extend([
            good.replace("     12\n", "1234567\n"),
            good.replace("     12\n", "      0\n"),
            good.replace("     12\n", "    1 2\n"),
            good.replace("     12\n", "       \n"),
            good.replace("     12\n", "     12\r\n"),
            good.replace("     12\n", "     12 sip 6a3f\n"),
            good.replace("     12\n", "12345678\n"),
            good.trim_end().to_string(),
        ]);
        for variant in variants {
            let t = format!("{HEADER}{good}{variant}{good}");
            assert_eq!(
                sum(&t, 3),
                sum_every_row_the_long_way(t.as_bytes(), 3),
                "{variant:?}"
            );
        }
    }

    #[test]
    fn tens_of_thousands_of_keys_are_all_counted_past_the_known_table() {
        // 40,000 keys: the table grows to its largest and the keys past what it holds are read
        // the long way, every row counted once.
        let mut t = HEADER.to_string();
        for round in 0..2u32 {
            for i in 0..20_000u32 {
                let state = ["ESTABLISHED", "FIN_WAIT"][((i + round) % 2) as usize];
                t += &v4_row(0xC633_6400 + i % 100, 1000, 0x0A00_0000 + i, state, 5);
                t += &v4_row(0xC633_6400 + i % 100, 1000, 0x0A00_0000 + i, state, 5);
            }
        }
        let known = sum(&t, 3).expect("parses");
        assert_eq!(known.total, 80_000);
        assert_eq!(
            known,
            sum_every_row_the_long_way(t.as_bytes(), 3).expect("parses")
        );
    }

    #[test]
    fn reads_ipv6_rows_and_brackets_ipv6_real_servers() {
        let t = format!(
            "{HEADER}TCP 2001:0db8:0000:0000:0000:0000:0000:0001 D431 2001:0db8:0000:0000:0000:0000:0000:0010 01BB 2001:0db8:0000:0000:0000:0000:0000:0100 01BB ESTABLISHED     899\n"
        );
        let s = sum(&t, 1).expect("parses");
        assert_eq!(s.by_real_state["[2001:db8::100]:443"]["ESTABLISHED"], 1);
        assert_eq!(s.top_clients, vec![("2001:db8::1".parse().expect("ip"), 1)]);
    }

    #[test]
    fn reads_ipv4_rows_with_an_ipv6_destination() {
        let t = format!(
            "{HEADER}TCP C0000201 D431 C000020A 0050 2001:0db8:0000:0000:0000:0000:0000:0100 0050 SYN_RECV         59\n"
        );
        let s = sum(&t, 1).expect("parses");
        assert_eq!(s.by_real_state["[2001:db8::100]:80"]["SYN_RECV"], 1);
    }

    #[test]
    fn reads_sctp_rows_and_persistence_engine_data() {
        let t = format!(
            "{HEADER}SCTP C0000201 D431 C000020A 0050 C6336401 0050 ESTABLISHED     899\n\
             UDP C0000201 D431 C000020A 13C4 C6336401 13C4 UDP             299 sip 6a3f\n"
        );
        let s = sum(&t, 1).expect("parses");
        assert_eq!(s.total, 2);
        assert_eq!(s.by_state["UDP"], 1);
        assert_eq!(s.top_clients, vec![("192.0.2.1".parse().expect("ip"), 2)]);
    }

    #[test]
    fn fast_path_takes_two_letter_template_rows() {
        let row = format!(
            "{:<3} {:08X} {:04X} {:08X} {:04X} {:08X} {:04X} {:<11} {:7}",
            "IP", 1, 0, 0, 0, 9, 0, "NONE", 300
        );
        let mut s = ConnSummer::new(1);
        assert_eq!(s.fast_v4_row(row.as_bytes()), Some(row.len()));
        assert_eq!(s.finish().by_real_state["0.0.0.9:0"]["NONE"], 1);
    }

    #[test]
    fn single_spaced_rows_agree_with_the_general_path() {
        let rows = [
            "TCP 2001:0db8:0000:0000:0000:0000:0000:0001 D431 2001:0db8:0000:0000:0000:0000:0000:0010 01BB 2001:0db8:0000:0000:0000:0000:0000:0100 01BB ESTABLISHED     899",
            "TCP C0000201 D431 C000020A 0050 2001:0db8:0000:0000:0000:0000:0000:0100 0050 SYN_RECV         59",
            "SCTP C0000201 D431 C000020A 0050 C6336401 0050 SHUTDOWN_ACK_SENT       3",
            "UDP C0000201 D431 C000020A 13C4 C6336401 13C4 UDP             299 sip 6a3f",
        ];
        for row in rows {
            let mut fixed = ConnSummer::new(2);
            assert_eq!(fixed.single_spaced_row(row.as_bytes()), Some(()), "{row}");
            let mut general = ConnSummer::new(2);
            general.general_row(row.as_bytes()).expect("parses");
            assert_eq!(fixed.finish(), general.finish(), "{row}");
        }
    }

    #[test]
    fn full_ipv6_needs_every_colon() {
        assert_eq!(
            full_ipv6(b"2001:0db8:0000:0000:0000:0000:0000:0001"),
            Some("2001:db8::1".parse().expect("ip"))
        );
        assert_eq!(full_ipv6(b"2001:0db8:0000:0000:0000:0000:0000-0001"), None);
        assert_eq!(full_ipv6(b"2001:0db8:0000:0000:0000:0000:0000:000g"), None);
    }

    #[test]
    fn kernel_state_names_do_not_share_a_state_cache_slot() {
        let names = [
            "NONE",
            "ESTABLISHED",
            "SYN_SENT",
            "SYN_RECV",
            "FIN_WAIT",
            "TIME_WAIT",
            "CLOSE",
            "CLOSE_WAIT",
            "LAST_ACK",
            "LISTEN",
            "SYNACK",
            "UDP",
            "ASSURED",
            "INIT1",
            "INIT",
            "COOKIE_SENT",
            "COOKIE_REPLIED",
            "COOKIE_WAIT",
            "COOKIE_ECHOED",
            "CLOSED",
            "REJECTED",
        ];
        let slots: std::collections::BTreeSet<usize> = names
            .iter()
            .filter_map(|n| padded_state(n.as_bytes()))
            .map(state_slot)
            .collect();
        let fitting = names.iter().filter(|n| n.len() <= 11).count();
        assert_eq!(slots.len(), fitting);
    }

    #[test]
    fn states_sharing_a_cache_slot_are_still_counted_apart() {
        // Two made-up state names that land in the same slot, alternating.
        let name = |i: u32| format!("S{i:X}");
        let first = name(0);
        let slot = state_slot(padded_state(first.as_bytes()).expect("fits"));
        let second = (1..)
            .map(name)
            .find(|n| state_slot(padded_state(n.as_bytes()).expect("fits")) == slot)
            .expect("a colliding name");
        let mut t = HEADER.to_string();
        for i in 0..10 {
            t += &v4_row(1, 1, 9, if i % 2 == 0 { &first } else { &second }, 1);
        }
        let s = sum(&t, 0).expect("parses");
        assert_eq!(s.by_state[&first], 5);
        assert_eq!(s.by_state[&second], 5);
    }

    #[test]
    fn header_only_table_sums_to_zero() {
        assert_eq!(sum(HEADER, 5).expect("parses"), ConnSummary::default());
        assert_eq!(sum("", 5).expect("parses"), ConnSummary::default());
    }

    #[test]
    fn top_n_zero_skips_clients_and_ties_break_by_address() {
        let mut t = HEADER.to_string();
        for c in [3u32, 1, 2, 2, 1, 3] {
            t += &v4_row(c, 1, 9, "ESTABLISHED", 1);
        }
        assert!(sum(&t, 0).expect("parses").top_clients.is_empty());
        let top = sum(&t, 2).expect("parses").top_clients;
        assert_eq!(
            top,
            vec![(Ipv4Addr::from(1).into(), 2), (Ipv4Addr::from(2).into(), 2)]
        );
    }

    #[test]
    fn bad_rows_name_their_line() {
        let mut t = HEADER.to_string();
        t += &v4_row(1, 1, 9, "ESTABLISHED", 1);
        t += "TCP C0000201 D431 C000020A 0050 ZZZZZZZZ 0050 ESTABLISHED     899\n";
        let e = sum(&t, 1).expect_err("must fail");
        assert_eq!((e.input, e.line), (IP_VS_CONN, 3));
        let e = sum("TCP C0000201 D431\n", 1).expect_err("must fail");
        assert_eq!(e.line, 1);
        let e = sum_bytes(b"TCP C0000201 D431 C000020A 0050 C6336401 0050 \xFF 1\n", 1)
            .expect_err("must fail");
        assert_eq!(e.line, 1);
    }

    #[test]
    fn client_batches_merge_with_counted_clients() {
        let mut s = ConnSummer::new(3);
        s.few_spilled = true;
        for a in [5u32, 1, 5] {
            s.push_client_v4(a);
        }
        s.fold_pending_clients();
        for a in [1u32, 7, 5, 0] {
            s.push_client_v4(a);
        }
        s.fold_pending_clients();
        assert_eq!(s.clients_v4, vec![(0, 1), (1, 2), (5, 3), (7, 1)]);
    }

    #[test]
    fn client_counts_survive_the_small_table_spilling_over() {
        let mut s = ConnSummer::new(4);
        let mut want: BTreeMap<u32, u64> = BTreeMap::new();
        let mut x: u32 = 7;
        for i in 0..(3 * FEW_CLIENTS as u32) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Early clients recur often, so some are counted both before and after the spill.
            let a = if i % 3 == 0 { i % 5 } else { x };
            s.push_client_v4(a);
            *want.entry(a).or_insert(0) += 1;
        }
        assert!(s.few_spilled);
        let mut want: Vec<(IpAddr, u64)> = want
            .into_iter()
            .map(|(a, n)| (IpAddr::V4(Ipv4Addr::from(a)), n))
            .collect();
        want.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        want.truncate(4);
        assert_eq!(s.finish().top_clients, want);
    }

    /// Every IPv4 client a summer counted, sorted by address.
    fn all_v4(s: &mut ConnSummer) -> Vec<(u32, u64)> {
        let mut all: Vec<(u32, u64)> = s.take_client_counts().each().collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn clients_in_the_dense_window_and_outside_it_are_all_counted() {
        let mut s = ConnSummer::new(3);
        let mut want: BTreeMap<u32, u64> = BTreeMap::new();
        let mut x: u32 = 4242;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for i in 0..200_000u32 {
            let r = next();
            let a = match i % 10 {
                // Anywhere at all.
                0 => r,
                // Just past either end of the first clients' span.
                1 => 0x0A00_0000 - 1 - r % 50_000,
                2 => 0x0A01_0000 + r % 200_000,
                // Mostly one /16.
                _ => 0x0A00_0000 + r % 0x1_0000,
            };
            s.push_client_v4(a);
            *want.entry(a).or_insert(0) += 1;
        }
        assert!(s.few_spilled && !s.dense.is_empty());
        assert_eq!(all_v4(&mut s), want.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn the_dense_window_covers_the_busiest_span_with_room_around_it() {
        assert_eq!(dense_window(&[]), None);
        // Spread over the address space: no span holds a quarter of the rows.
        let spread: Vec<(u32, u64)> = (0..100u32).map(|i| (i << 24, 1)).collect();
        assert_eq!(dense_window(&spread), None);
        // A /20 of clients and a few far away.
        let mut few: Vec<(u32, u64)> = (0..4096u32).map(|i| (0x0A00_1000 + i, 2)).collect();
        few.extend([(1, 1000), (0xF000_0000, 1000)]);
        few.sort_unstable();
        let (base, len) = dense_window(&few).expect("a window");
        assert_eq!(len, 8192);
        assert_eq!(base, 0x0A00_1000 - 2048);
        // At the top of the address space the window still fits below 2^32.
        let top: Vec<(u32, u64)> = (0..10u32).map(|i| (u32::MAX - i, 1)).rev().collect();
        let (base, len) = dense_window(&top).expect("a window");
        assert_eq!(u64::from(base) + len as u64, 1 << 32);
    }

    #[test]
    fn dense_counts_carry_past_u16() {
        let mut s = ConnSummer::new(1);
        for a in 0..(FEW_CLIENTS as u32) {
            s.push_client_v4(u32::MAX - a);
        }
        assert!(s.few_spilled && !s.dense.is_empty());
        let top = u32::MAX - s.dense_base;
        if let Some(n) = s.dense.get_mut(top as usize) {
            *n = u16::MAX - 1;
        }
        for _ in 0..3 {
            s.push_client_v4(u32::MAX);
        }
        let v4 = all_v4(&mut s);
        assert_eq!(v4.last(), Some(&(u32::MAX, u64::from(u16::MAX) + 2)));
        assert_eq!(v4.len(), FEW_CLIENTS);
    }

    #[test]
    fn a_client_with_more_rows_than_a_u16_counts_is_counted_exactly() {
        // One client behind a NAT with 150,000 entries among 20,000 others, summed in chunks
        // on two threads: its count carries out of the window's u16 on each.
        let mut t = HEADER.to_string();
        for i in 0..170_000u32 {
            let client = if i % 17 < 15 {
                0xC633_6400
            } else {
                0xC633_6401 + i % 20_000
            };
            t += &v4_row(client, 1000, 0x0A00_0002 + i % 3, "ESTABLISHED", 60);
        }
        let nat = (0..170_000u32).filter(|i| i % 17 < 15).count() as u64;
        for threads in [1, 2] {
            let s = sum_on_threads(t.as_bytes(), 2, threads, 1 << 16).expect("parses");
            assert_eq!(s.total, 170_000);
            assert_eq!(
                s.top_clients.first(),
                Some(&(IpAddr::V4(Ipv4Addr::from(0xC633_6400u32)), nat)),
                "{threads} threads"
            );
        }
    }

    #[test]
    fn the_small_client_table_grows_with_its_clients_and_keeps_their_counts() {
        let mut s = ConnSummer::new(3);
        s.push_client_v4(7);
        assert_eq!(s.few_clients.len(), FEW_FIRST_SLOTS);
        for round in 1..=3u32 {
            for a in 0..3_000u32 {
                for _ in 0..=(a % 4) * round {
                    s.push_client_v4(0x0A00_0000 + a * 977);
                }
            }
        }
        assert!(!s.few_spilled);
        assert_eq!(s.few_clients.len(), 8_192);
        let v4 = all_v4(&mut s);
        assert_eq!(v4.len(), 3_001);
        for (addr, n) in v4.into_iter().filter(|&(a, _)| a != 7) {
            let a = (addr - 0x0A00_0000) / 977;
            assert_eq!(
                n,
                (1..=3).map(|r| u64::from(a % 4 * r + 1)).sum::<u64>(),
                "{addr:#x}"
            );
        }
    }

    #[test]
    fn clients_colliding_in_the_small_table_spill_it_early() {
        // 100 addresses that all start probing at slot 0, as a crafted SYN flood could send.
        let colliding: Vec<u32> = (0..u32::MAX)
            .filter(|&a| few_slot(a, FEW_SLOTS) == 0)
            .take(100)
            .collect();
        let mut s = ConnSummer::new(2);
        for round in 0..3 {
            for &a in &colliding {
                s.push_client_v4(a);
            }
            assert!(s.few_spilled, "round {round}");
        }
        let top = s.finish().top_clients;
        let want: Vec<(IpAddr, u64)> = colliding
            .iter()
            .take(2)
            .map(|&a| (Ipv4Addr::from(a).into(), 3))
            .collect();
        assert_eq!(top, want);
    }

    /// A table of `rows` kernel-format IPv4 rows whose clients are drawn from `clients`
    /// addresses starting at `base` (spread over the whole address space when `wide`), so that
    /// many clients tie on their counts.
    fn many_rows(rows: usize, clients: u32, base: u32, wide: bool, seed: u64) -> String {
        const STATES: [&str; 4] = ["ESTABLISHED", "FIN_WAIT", "TIME_WAIT", "SYN_RECV"];
        let mut t = String::with_capacity(rows * 66 + HEADER.len());
        t += HEADER;
        let mut x = seed | 1;
        for _ in 0..rows {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = (x % u64::from(clients)) as u32;
            let client = if wide {
                k.wrapping_mul(0x9E37_79B9)
            } else {
                base.wrapping_add(k)
            };
            let state = STATES[((x >> 40) % 4) as usize];
            t += &v4_row(client, 1, 0x0A00_0000 + ((x >> 50) % 7) as u32, state, 5);
        }
        t
    }

    #[test]
    fn large_tables_sum_the_same_on_one_thread_and_on_several() {
        // Few clients (the small table), many from one subnet (counted in an array), and many
        // spread over the address space (radix sorted).
        for (clients, wide) in [(500, false), (40_000, false), (40_000, true)] {
            let t = many_rows(80_000, clients, 0xC633_0000, wide, u64::from(clients));
            let one = sum_on_threads(t.as_bytes(), 10, 1, ONE_SHOT).expect("parses");
            assert_eq!(one.total, 80_000);
            for (threads, chunk) in [
                (1, 4_099),
                (2, CHUNK_BYTES),
                (2, 100_000),
                (3, 7_000),
                (7, 2 << 20),
            ] {
                let several = sum_on_threads(t.as_bytes(), 10, threads, chunk).expect("parses");
                assert_eq!(
                    several, one,
                    "{clients} clients, wide {wide}, {threads} threads, chunks of {chunk}"
                );
            }
            assert_eq!(
                sum_on_threads(t.as_bytes(), 0, 3, 50_000),
                sum_on_threads(t.as_bytes(), 0, 1, ONE_SHOT)
            );
        }
    }

    #[test]
    fn a_table_of_many_chunks_with_rows_across_their_edges_sums_as_in_one() {
        let t = many_rows(16 * CHUNK_BYTES / 66 + 1000, 30_000, 0x0A14_0000, false, 3);
        assert!(t.len() > 16 * CHUNK_BYTES);
        // Rows are 66 bytes and a chunk is a power of two: every chunk ends inside a row.
        assert_ne!(CHUNK_BYTES % 66, 0);
        let public = sum(&t, 10).expect("parses");
        let one = sum_on_threads(t.as_bytes(), 10, 1, ONE_SHOT).expect("parses");
        assert_eq!(public, one);
        assert_eq!(
            sum_on_threads(t.as_bytes(), 10, 1, CHUNK_BYTES).expect("parses"),
            one
        );
        // Ties: with ~5 rows per client, the top ten share counts and are ordered by address.
        let top = &one.top_clients;
        assert_eq!(top.len(), 10);
        assert!(
            top.windows(2)
                .all(|w| w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0))
        );
        assert!(top.windows(2).any(|w| w[0].1 == w[1].1));
    }

    #[test]
    fn errors_in_a_later_piece_name_their_line_in_the_whole_table() {
        let mut t = many_rows(999, 50, 1, false, 9);
        t += "TCP C0000201 D431\n";
        t += &many_rows(500, 50, 1, false, 10);
        t += "TCP C0000201 D431\n";
        for (threads, chunk) in [
            (1, ONE_SHOT),
            (1, 1_000),
            (2, 1_000),
            (3, 5_000),
            (5, 100_000),
        ] {
            let e = sum_on_threads(t.as_bytes(), 3, threads, chunk).expect_err("must fail");
            assert_eq!(e.line, 1001, "{threads} threads, chunks of {chunk}");
        }
    }

    #[test]
    fn an_error_chunks_into_a_large_table_names_its_line() {
        let rows = 3 * CHUNK_BYTES / 66;
        let mut t = many_rows(rows, 50, 1, false, 11);
        t += "TCP C0000201 D431 C000020A 0050 ZZZZZZZZ 0050 ESTABLISHED     899\n";
        t += &many_rows(rows, 50, 1, false, 12);
        // The header, the rows, then the bad one.
        let e = sum(&t, 3).expect_err("must fail");
        assert_eq!((e.input, e.line), (IP_VS_CONN, rows + 2));
        assert!(rows * 66 > 2 * CHUNK_BYTES);
    }

    #[test]
    fn a_line_longer_than_a_chunk_is_refused_naming_it() {
        let mut t = many_rows(100, 5, 1, false, 13);
        t += &"A".repeat(5_000);
        t += "\n";
        t += &many_rows(100, 5, 1, false, 14);
        for threads in [1, 2, 3] {
            let e = sum_on_threads(t.as_bytes(), 3, threads, 1_000).expect_err("must fail");
            assert_eq!(e.line, 102, "{threads} threads");
            assert!(e.message.contains("longer than 999 bytes"), "{e}");
        }
        // Endless bytes without a newline stop at the first chunk.
        let zeros = vec![0u8; 10 * CHUNK_BYTES];
        let e = sum_bytes(&zeros, 1).expect_err("must fail");
        assert_eq!(e.line, 1);
    }

    #[test]
    fn reading_stops_past_the_limit() {
        let t = many_rows(1_000, 5, 1, false, 15);
        for (threads, chunk) in [(1, 1_000), (2, 1_000), (2, 10_000)] {
            let r = sum_stream(t.as_bytes(), 1, threads, chunk, 20_000);
            assert!(
                matches!(r, Err(ConnReadError::TooLarge { limit: 20_000 })),
                "{threads} threads, chunks of {chunk}: {r:?}"
            );
            let whole = sum_stream(t.as_bytes(), 1, threads, chunk, t.len() as u64);
            assert_eq!(whole.map(|s| s.total).ok(), Some(1_000));
        }
        let e = ConnReadError::TooLarge {
            limit: MAX_TABLE_BYTES,
        };
        assert_eq!(
            e.to_string(),
            "the connection table is larger than 1.0 GiB; not read further"
        );
    }

    /// A reader that gives at most a few bytes at a time, as a pipe or `/proc` may.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.1 = self.1 % 7 + 1;
            let n = self.1.min(buf.len()).min(self.0.len());
            let (head, rest) = self.0.split_at(n);
            buf.get_mut(..n)
                .ok_or_else(|| std::io::Error::other("short buffer"))?
                .copy_from_slice(head);
            self.0 = rest;
            Ok(n)
        }
    }

    #[test]
    fn chunks_are_whole_lines_and_keep_every_byte_however_reads_come() {
        for t in [&b"a\nbb\n\nccc\ndddd"[..], b"a\nbb\n\nccc\n", b"abc", b""] {
            for size in 5..12 {
                let mut chunks = LineChunks::new(Trickle(t, 0), 1 << 20);
                let mut buf = vec![0; size];
                let mut got = Vec::new();
                loop {
                    match chunks.next(&mut buf).expect("reads") {
                        Chunk::Lines(n) => {
                            let piece = &buf[..n];
                            assert!(piece.ends_with(b"\n") || chunks.at_end());
                            got.extend_from_slice(piece);
                        }
                        Chunk::LongLine => panic!("no line is that long"),
                        Chunk::End => break,
                    }
                }
                assert_eq!(got, t.to_vec());
            }
        }
    }

    #[test]
    fn read_errors_come_back_after_the_rows_read() {
        /// Rows, then an error instead of the end.
        struct Failing<'a>(&'a [u8]);
        impl Read for Failing<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("device gone"));
                }
                let n = self.0.read(buf)?;
                Ok(n)
            }
        }
        let rows = many_rows(100, 5, 1, false, 16);
        for threads in [1, 2] {
            let r = sum_stream(Failing(rows.as_bytes()), 1, threads, 1_000, MAX_TABLE_BYTES);
            assert!(matches!(r, Err(ConnReadError::Io(_))), "{r:?}");
        }
    }

    #[test]
    fn count_addresses_counts_like_a_map() {
        let mut x: u32 = 99;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let narrow: Vec<u32> = (0..5000).map(|_| 0xC000_0000 + next() % 3000).collect();
        let wide: Vec<u32> = (0..5000).map(|_| next() % 3000 * 0x10_0001).collect();
        let edges = vec![u32::MAX, 0, u32::MAX, 7];
        for v in [narrow, wide, edges, vec![u32::MAX], Vec::new()] {
            let mut want: BTreeMap<u32, u64> = BTreeMap::new();
            for &a in &v {
                *want.entry(a).or_insert(0) += 1;
            }
            let mut v = v;
            let got = count_addresses(&mut v);
            assert!(v.is_empty());
            assert_eq!(got, want.into_iter().collect::<Vec<_>>());
        }
    }

    mod parts {
        use super::*;
        use proptest::prelude::*;

        /// A line of a connection table: well-formed rows of every shape the parser knows, and
        /// now and then a blank line, a CRLF ending, a repeated header or a bad row.
        fn line() -> impl Strategy<Value = String> {
            let v4 = (0u32..6, 0u32..3, 0usize..4, 0u32..1000).prop_map(|(c, d, s, e)| {
                let state = ["ESTABLISHED", "SYN_RECV", "NONE", "CLOSE"][s];
                v4_row(0xC000_0200 + c, 1000, 0xC633_6400 + d, state, e)
            });
            let v6 = (0u32..3, 0u32..2).prop_map(|(c, d)| {
                format!(
                    "TCP 2001:0db8:0000:0000:0000:0000:0000:000{c} D431 \
                     2001:0db8:0000:0000:0000:0000:0000:0010 01BB \
                     2001:0db8:0000:0000:0000:0000:0000:010{d} 01BB ESTABLISHED     899\n"
                )
            });
            prop_oneof![
                20 => v4,
                3 => v6,
                2 => (0u32..6).prop_map(|c| format!(
                    "SCTP C00002{c:02X} D431 C000020A 0050 C6336401 0050 SHUTDOWN_ACK_SENT       3\n"
                )),
                2 => (0u32..6).prop_map(|c| format!(
                    "UDP C00002{c:02X} D431 C000020A 13C4 C6336401 13C4 UDP             299 sip 6a3f\r\n"
                )),
                1 => Just("\n".to_string()),
                1 => Just(HEADER.to_string()),
                1 => Just("TCP C0000201 D431 C000020A 0050 ZZZZZZZZ 0050 NONE 1\n".to_string()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Rows of a few keys, any byte of any row possibly changed to anything: counted by
            /// their known bytes or not, the sum (or the first error) is the one every row read
            /// the long way gives.
            #[test]
            fn known_rows_sum_as_the_long_way_whatever_bytes_change(
                rows in prop::collection::vec((0u32..4, 0usize..3, 0u32..2000), 1..60),
                changes in prop::collection::vec((0usize..4000, any::<u8>()), 0..6),
                top_n in 0usize..4,
            ) {
                let mut text = HEADER.to_string().into_bytes();
                for (d, s, e) in rows {
                    let state = ["ESTABLISHED", "SYN_RECV", "NONE"][s];
                    text.extend(v4_row(0xC000_0200 + e % 7, 1000, 0xC633_6400 + d, state, e).bytes());
                }
                for (at, byte) in changes {
                    let len = text.len();
                    if let Some(c) = text.get_mut(HEADER.len() + at % (len - HEADER.len())) {
                        *c = byte;
                    }
                }
                prop_assert_eq!(
                    sum_bytes(&text, top_n),
                    sum_every_row_the_long_way(&text, top_n)
                );
            }

            /// Summing a table in chunks on several threads gives exactly what one chunk gives,
            /// busiest clients (many tied) and the line of the first bad row included.
            #[test]
            fn parts_sum_exactly_as_one_thread(
                lines in prop::collection::vec(line(), 0..80),
                header in any::<bool>(),
                unterminated in any::<bool>(),
                top_n in 0usize..5,
                threads in 1usize..5,
                chunk_bytes in 160usize..500,
            ) {
                let mut text = if header { HEADER.to_string() } else { String::new() };
                text.extend(lines);
                if unterminated {
                    text.pop();
                }
                let one = sum_on_threads(text.as_bytes(), top_n, 1, ONE_SHOT);
                let several = sum_on_threads(text.as_bytes(), top_n, threads, chunk_bytes);
                prop_assert_eq!(several, one);
            }
        }
    }

    #[test]
    fn radix_sort_sorts_like_std() {
        let mut x: u32 = 12345;
        let mut v: Vec<u32> = (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x
            })
            .collect();
        v.extend([0, u32::MAX, 0x7FF, 0x800]);
        let mut want = v.clone();
        want.sort_unstable();
        radix_sort(&mut v);
        assert_eq!(v, want);
    }
}
