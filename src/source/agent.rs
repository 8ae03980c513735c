//! The router agent's wire. `lbtop agent` runs at the far end of an SSH session (started by
//! lbtop, never listening on a port): it reads IPVS over netlink and the connection table on the
//! router, and answers requests on its stdin with replies on its stdout.
//!
//! - The agent speaks first: [`MAGIC`], then a [`Hello`] frame with its protocol and version.
//!   lbtop uses it only when both match its own; otherwise it falls back to the shell program.
//! - A frame is a 4-byte little-endian length and that many bytes of CBOR, the recording's
//!   encoding of the same raw sample types ([`crate::model::delta`]): a router sample is its
//!   services and the rest, each as a [`Part`] — the shape when it changed, else only the numbers
//!   that changed, each with its place and its difference from the previous sample's (an idle
//!   table sends nearly nothing).
//! - An operator action is one request on the open session: its body is control's own
//!   ([`crate::control::agent`]), carried here as bytes.
//!
//! Both ends bound what they read: a frame longer than the reader's limit is refused before it is
//! read.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::delta::{Coding, Last, Packed, Part, decode_part_as, encode_owned_as};
use crate::model::sample::{RouterSample, RouterSourceKind, VirtualServiceSample};
use crate::source::remote::SudoMode;
use crate::source::ssh::{Connection, RemoteProgram, SshError};

/// What the agent writes before anything else.
pub const MAGIC: &[u8; 8] = b"lbtop-a\n";
/// The wire's version. Bumped on any change to the messages.
/// 2: router samples carry the sync daemons (`sync`).
pub const PROTOCOL: u32 = 2;
/// How an error the agent answered with begins: the agent goes on after it.
pub const FAILED: &str = "the router's agent failed: ";
/// The largest request the agent reads.
pub const MAX_REQUEST: usize = 1 << 20;

/// The agent's greeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    /// The lbtop version (`CARGO_PKG_VERSION`): the sample types must be the same on both ends.
    pub version: String,
}

impl Hello {
    /// This build's greeting.
    pub fn ours() -> Hello {
        Hello {
            protocol: PROTOCOL,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// Why a greeting cannot be used, if it cannot.
    pub fn mismatch(&self) -> Option<String> {
        let ours = Hello::ours();
        (self != &ours).then(|| {
            format!(
                "the router's lbtop is version {} (protocol {}), this one {} (protocol {})",
                crate::model::text::printable(&self.version, 40),
                self.protocol,
                ours.version,
                ours.protocol
            )
        })
    }
}

/// What lbtop asks the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// A router sample. `full`: every service's real servers dumped, none carried (the poll
    /// after an operator's action or a refresh: the change may have gone through another
    /// process on the router).
    Poll {
        seq: u64,
        #[serde(default)]
        full: bool,
    },
    /// The table as it is now, for an action's plan.
    Table { seq: u64 },
    /// An operator action (control's encoding).
    Act { seq: u64, body: Packed },
}

impl Request {
    pub fn seq(&self) -> u64 {
        match self {
            Request::Poll { seq, .. } | Request::Table { seq } | Request::Act { seq, .. } => *seq,
        }
    }
}

/// What the agent answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    Sample {
        seq: u64,
        services: Part<Vec<VirtualServiceSample>>,
        rest: Box<Part<RouterSample>>,
    },
    Table {
        seq: u64,
        services: Vec<VirtualServiceSample>,
    },
    /// An action's outcome (control's encoding).
    Acted { seq: u64, body: Packed },
    /// The request could not be answered; the session goes on.
    Failed { seq: u64, message: String },
}

impl Reply {
    pub fn seq(&self) -> u64 {
        match self {
            Reply::Sample { seq, .. }
            | Reply::Table { seq, .. }
            | Reply::Acted { seq, .. }
            | Reply::Failed { seq, .. } => *seq,
        }
    }
}

/// One frame: its length, then its CBOR.
pub fn frame<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![0; 4];
    // Writing into a Vec fails only for a value serde cannot encode, which these types are not.
    if let Err(e) = ciborium::into_writer(value, &mut out) {
        tracing::error!("agent frame: {e}");
        out.truncate(4);
    }
    let len = u32::try_from(out.len() - 4).unwrap_or(u32::MAX);
    out[..4].copy_from_slice(&len.to_le_bytes());
    out
}

/// A frame's length from its first four bytes, refused above `limit`.
pub fn frame_len(head: [u8; 4], limit: usize) -> Result<usize, String> {
    let len = u32::from_le_bytes(head) as usize;
    if len > limit {
        return Err(format!(
            "a frame of {len} bytes, more than the {limit} allowed — not lbtop's agent"
        ));
    }
    Ok(len)
}

/// A frame's body to a message.
pub fn decode<T: for<'de> Deserialize<'de>>(body: &[u8], what: &str) -> Result<T, String> {
    ciborium::from_reader(body).map_err(|e| {
        format!(
            "{what} that does not decode ({}): not lbtop's agent, or a damaged stream",
            crate::model::text::printable(&e.to_string(), 120)
        )
    })
}

/// The agent's side of the sample coding: each sample against the one sent before.
#[derive(Default)]
pub struct SampleEncoder {
    services: Option<Last<Vec<VirtualServiceSample>>>,
    rest: Option<Last<RouterSample>>,
    /// The generation of the services last encoded ([`crate::source::local::LocalRouter::services_generation`]).
    generation: Option<u64>,
}

impl SampleEncoder {
    /// The generation of the services last encoded: a sample read after it may leave them out
    /// when they are still those.
    pub fn generation(&self) -> Option<u64> {
        self.generation.filter(|_| self.services.is_some())
    }

    /// `sample` against the last one. `generation`, when given, is equal to the last sample's
    /// exactly when the services are equal to that sample's: they are then sent as nothing
    /// changed without being looked at (a table of 10,000 real servers, every poll).
    pub fn reply(&mut self, seq: u64, mut sample: RouterSample, generation: Option<u64>) -> Reply {
        let services = std::mem::take(&mut sample.services);
        let services =
            if generation.is_some() && generation == self.generation && self.services.is_some() {
                Part {
                    shape: None,
                    nums: Packed(Vec::new()),
                }
            } else {
                self.generation = generation;
                encode_owned_as(&mut self.services, services, Coding::Sparse)
            };
        Reply::Sample {
            seq,
            services,
            rest: Box::new(encode_owned_as(&mut self.rest, sample, Coding::Sparse)),
        }
    }
}

/// lbtop's side: samples back from their parts. Its state is the agent's: a new agent needs a
/// new decoder.
#[derive(Default)]
pub struct SampleDecoder {
    services: Option<Last<Vec<VirtualServiceSample>>>,
    rest: Option<Last<RouterSample>>,
}

impl SampleDecoder {
    pub fn sample(
        &mut self,
        services: Part<Vec<VirtualServiceSample>>,
        rest: Part<RouterSample>,
    ) -> Result<RouterSample, String> {
        let services = decode_part_as(&mut self.services, services, Coding::Sparse);
        let rest = decode_part_as(&mut self.rest, rest, Coding::Sparse);
        match (services, rest) {
            (Some(services), Some(mut sample)) => {
                sample.services = services;
                sample.make_printable();
                sample.source = RouterSourceKind::Agent;
                Ok(sample)
            }
            _ => Err("the agent sent numbers that do not fit the sample's shape".into()),
        }
    }
}

/// Whether and how the router session runs lbtop on the router (`--router-agent`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AgentChoice {
    /// `lbtop` from the router's PATH when it is there; the shell program otherwise.
    #[default]
    Auto,
    /// Always the shell program.
    Never,
    /// This program on the router.
    Path(String),
}

impl FromStr for AgentChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "auto" => Ok(AgentChoice::Auto),
            "never" => Ok(AgentChoice::Never),
            "" => Err("empty; use auto, never or the agent's path on the router".into()),
            p if !p.starts_with('/') => Err(format!(
                "{:?}: give an absolute path on the router, or auto or never",
                crate::model::text::printable(p, 80)
            )),
            p if p.chars().any(|c| c.is_control()) => {
                Err("the agent's path holds control characters".into())
            }
            p => Ok(AgentChoice::Path(p.to_string())),
        }
    }
}

/// What the agent's exit status means when it ends before greeting.
pub const NOT_FOUND_STATUS: u32 = 127;

impl AgentChoice {
    /// The command the SSH session runs for the agent, or None for `never`. With `sudo` (for a
    /// login that is not root, as ipvsadm runs), `sudo -n` runs it: sudo is paid once per
    /// session. The path is quoted for the remote shell.
    pub fn command(&self, sudo: SudoMode) -> Option<String> {
        let program = match self {
            AgentChoice::Never => return None,
            AgentChoice::Auto => "lbtop".to_string(),
            AgentChoice::Path(p) => shell_quote(p),
        };
        // Without the program, exit 127 with a word of our own, whatever the login shell says.
        let found = match self {
            AgentChoice::Auto => "command -v lbtop >/dev/null 2>&1".to_string(),
            _ => format!("[ -x {program} ]"),
        };
        let run = match sudo {
            SudoMode::Never => format!("exec {program} agent"),
            SudoMode::Always => format!("exec sudo -n {program} agent"),
            SudoMode::Auto => format!(
                "if [ \"$(id -u)\" = 0 ]; then exec {program} agent; else exec sudo -n {program} agent; fi"
            ),
        };
        let script = format!(
            "{found} || {{ echo 'lbtop agent: not found' >&2; exit {NOT_FOUND_STATUS}; }}; {run}"
        );
        // Through /bin/sh, whatever the login shell is.
        Some(format!("exec /bin/sh -c {}", shell_quote(&script)))
    }
}

/// `s` in single quotes for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

// ───────────────────────────── lbtop's side ─────────────────────────────

/// The agent running at the far end of an SSH session.
pub struct AgentProgram {
    program: RemoteProgram,
    decoder: SampleDecoder,
    /// The largest reply frame read.
    limit: usize,
    seq: u64,
}

/// Why the agent could not be used.
#[derive(Debug)]
pub enum AgentStart {
    /// It is absent, another version, refused by sudo, or not lbtop: the shell program serves
    /// instead, and this note says why.
    Fallback(String),
    /// The connection failed: nothing else would work either.
    Failed(Box<SshError>),
}

impl AgentProgram {
    /// Starts the agent with `command` (from [`AgentChoice::command`]) and reads its greeting.
    /// The caller bounds the time.
    pub async fn start(
        conn: &Connection,
        command: &str,
        limit: usize,
        wait: std::time::Duration,
    ) -> Result<Box<AgentProgram>, AgentStart> {
        let mut program = conn
            .start_program(command, b"")
            .await
            .map_err(|e| AgentStart::Failed(Box::new(e)))?;
        let greeted = match tokio::time::timeout(wait, greeting(&mut program)).await {
            Ok(g) => g,
            Err(_) => {
                // Nothing is left running on the router: the channel is closed.
                program.close().await;
                return Err(AgentStart::Fallback(format!(
                    "the router's agent did not greet within {}",
                    humantime::format_duration(wait)
                )));
            }
        };
        match greeted {
            Ok(()) => Ok(Box::new(AgentProgram {
                program,
                decoder: SampleDecoder::default(),
                limit,
                seq: 0,
            })),
            Err(e) => {
                let why = match e {
                    // The connection went, not the agent: nothing else would work either.
                    Greeting::Lost(e) if e.loses_connection() || conn.is_closed() => {
                        program.close().await;
                        return Err(AgentStart::Failed(Box::new(e)));
                    }
                    Greeting::Lost(_) => not_started(&program),
                    Greeting::Refused(why) => why,
                };
                program.close().await;
                Err(AgentStart::Fallback(why))
            }
        }
    }

    /// Sends `request` and reads the reply to it.
    async fn ask(&mut self, request: impl FnOnce(u64) -> Request) -> Result<Reply, SshError> {
        self.seq += 1;
        let seq = self.seq;
        let sent = self.program.send(&frame(&request(seq))).await;
        let reply: Reply = match read_frame(&mut self.program, self.limit, "a reply").await {
            Ok(r) => r,
            Err(e) => return Err(sent.err().unwrap_or(e)),
        };
        if reply.seq() != seq {
            return Err(SshError::Reply(format!(
                "the router's agent answered request {} to request {seq}",
                reply.seq()
            )));
        }
        match reply {
            Reply::Failed { message, .. } => Err(SshError::Reply(format!(
                "{FAILED}{}",
                crate::model::text::printable(&message, 300)
            ))),
            r => Ok(r),
        }
    }

    /// One router sample, timed by this machine's clock (when it was asked for), as the shell
    /// program's are: a router whose clock is off must not move lbtop's. The times of its older
    /// parts move by the same offset.
    pub async fn poll(&mut self, full: bool) -> Result<RouterSample, SshError> {
        let asked = crate::model::sample::Timestamp::now();
        match self.ask(|seq| Request::Poll { seq, full }).await? {
            Reply::Sample { services, rest, .. } => {
                let mut sample = self
                    .decoder
                    .sample(services, *rest)
                    .map_err(|e| SshError::Reply(format!("the router's agent: {e}")))?;
                let offset = asked.0.saturating_sub(sample.time.0);
                sample.time = asked;
                for t in [
                    &mut sample.parts.counters,
                    &mut sample.parts.details,
                    &mut sample.parts.connections,
                ]
                .into_iter()
                .flatten()
                {
                    t.0 = t.0.saturating_add(offset);
                }
                Ok(sample)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// The table as it is now.
    pub async fn table(&mut self) -> Result<Vec<VirtualServiceSample>, SshError> {
        match self.ask(|seq| Request::Table { seq }).await? {
            Reply::Table { mut services, .. } => {
                crate::model::sample::printable_services(&mut services);
                Ok(services)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// An action, in control's encoding; its outcome, in the same.
    pub async fn act(&mut self, body: Vec<u8>) -> Result<Vec<u8>, SshError> {
        let body = Packed(body);
        match self.ask(|seq| Request::Act { seq, body }).await? {
            Reply::Acted { body, .. } => Ok(body.0),
            other => Err(unexpected(&other)),
        }
    }

    /// Ends the agent: end of file on its stdin, then the channel is closed.
    pub async fn close(self) {
        self.program.close().await;
    }
}

fn unexpected(reply: &Reply) -> SshError {
    let what = match reply {
        Reply::Sample { .. } => "a sample",
        Reply::Table { .. } => "a table",
        Reply::Acted { .. } => "an action's outcome",
        Reply::Failed { .. } => "a failure",
    };
    SshError::Reply(format!(
        "the router's agent sent {what}, not what was asked"
    ))
}

/// Why a greeting was not read.
enum Greeting {
    /// The program ended or the connection went.
    Lost(SshError),
    /// It answered, but not as this lbtop's agent.
    Refused(String),
}

/// Reads and checks the agent's greeting: [`MAGIC`], then a [`Hello`] of this version.
async fn greeting(program: &mut RemoteProgram) -> Result<(), Greeting> {
    let magic = program
        .read_exact(MAGIC.len())
        .await
        .map_err(Greeting::Lost)?;
    if magic != MAGIC {
        return Err(Greeting::Refused(format!(
            "the router's `lbtop agent` did not greet as lbtop's agent (it wrote {:?})",
            crate::model::text::printable(&String::from_utf8_lossy(&magic), 40)
        )));
    }
    let hello: Hello = read_frame(program, 4096, "a greeting")
        .await
        .map_err(|e| match e {
            SshError::Reply(why) => Greeting::Refused(format!("the router's agent: {why}")),
            e => Greeting::Lost(e),
        })?;
    match hello.mismatch() {
        Some(why) => Err(Greeting::Refused(why)),
        None => Ok(()),
    }
}

/// Why the agent ended before its greeting: absent, refused by sudo, or failed.
fn not_started(program: &RemoteProgram) -> String {
    let stderr = program.stderr_line().unwrap_or_default();
    if program.exit_status() == Some(NOT_FOUND_STATUS) && stderr.contains("lbtop agent: not found")
    {
        return "no lbtop on the router (for the agent, install it there: see the README)".into();
    }
    if stderr.starts_with("sudo:") {
        return format!(
            "sudo refused to start the router's agent ({stderr}); add the sudoers line from the README"
        );
    }
    format!(
        "the router's agent did not start: {}",
        program.ended().unwrap_or("it ended before greeting")
    )
}

/// Reads one frame and decodes it, refusing one longer than `limit`.
async fn read_frame<T: for<'de> Deserialize<'de>>(
    program: &mut RemoteProgram,
    limit: usize,
    what: &str,
) -> Result<T, SshError> {
    let head = program.read_exact(4).await?;
    let head: [u8; 4] = head
        .try_into()
        .map_err(|_| SshError::Reply("a frame without its length".into()))?;
    let len = frame_len(head, limit).map_err(SshError::Reply)?;
    let body = program.read_exact(len).await?;
    decode(&body, what).map_err(SshError::Reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::scripted::{ClusterShape, ScriptedCluster};

    fn router_samples(n: usize) -> Vec<RouterSample> {
        let mut c = ScriptedCluster::new(
            ClusterShape {
                nodes: 2,
                cores: 2,
                services: 4,
                reals_per_service: 3,
            },
            7,
        );
        let mut out = Vec::new();
        while out.len() < n {
            for e in c.step() {
                if let crate::model::sample::SourceEvent::Router {
                    report: crate::model::sample::Report::Sample(s),
                    ..
                } = e
                {
                    out.push(s);
                }
            }
        }
        out
    }

    #[test]
    fn samples_cross_the_wire_exactly_and_later_ones_as_differences() {
        let (mut enc, mut dec) = (SampleEncoder::default(), SampleDecoder::default());
        let samples = router_samples(5);
        let mut sizes = Vec::new();
        for (i, s) in samples.iter().enumerate() {
            let bytes = frame(&enc.reply(i as u64, s.clone(), None));
            let len = frame_len(bytes[..4].try_into().expect("4 bytes"), 1 << 20).expect("fits");
            assert_eq!(len, bytes.len() - 4);
            sizes.push(bytes.len());
            let Reply::Sample { services, rest, .. } = decode(&bytes[4..], "a reply").expect("ok")
            else {
                panic!("not a sample");
            };
            let got = dec.sample(services, *rest).expect("decodes");
            let mut want = s.clone();
            want.source = RouterSourceKind::Agent;
            assert_eq!(got, want);
        }
        assert!(
            sizes[1] * 2 < sizes[0],
            "differences are smaller: {sizes:?}"
        );
    }

    /// A sample whose services the router says are those of the last one (same generation) is
    /// sent without them, and decodes to them; a new generation sends what changed.
    #[test]
    fn services_of_the_same_generation_are_sent_as_nothing_changed() {
        let (mut enc, mut dec) = (SampleEncoder::default(), SampleDecoder::default());
        let samples = router_samples(3);
        let mut send = |s: &RouterSample, generation| {
            let bytes = frame(&enc.reply(1, s.clone(), Some(generation)));
            let Reply::Sample { services, rest, .. } = decode(&bytes[4..], "a reply").expect("ok")
            else {
                panic!("not a sample");
            };
            let empty = services.shape.is_none() && services.nums.0.is_empty();
            (dec.sample(services, *rest).expect("decodes"), empty)
        };
        let (first, _) = send(&samples[0], 7);
        assert_eq!(first.services, samples[0].services);
        // The same generation: the services are not looked at (here they even differ).
        let mut later = samples[1].clone();
        later.services.clone_from(&samples[2].services);
        let (got, empty) = send(&later, 7);
        assert!(empty);
        assert_eq!(got.services, samples[0].services);
        assert_eq!(got.time, later.time);
        let (got, empty) = send(&samples[2], 8);
        assert!(!empty);
        assert_eq!(got.services, samples[2].services);
    }

    #[test]
    fn a_decoder_that_missed_the_shape_says_so_and_garbage_does_not_decode() {
        let mut enc = SampleEncoder::default();
        let samples = router_samples(2);
        let _first = enc.reply(1, samples[0].clone(), None);
        let Reply::Sample { services, rest, .. } = enc.reply(2, samples[1].clone(), None) else {
            panic!("not a sample");
        };
        let err = SampleDecoder::default()
            .sample(services, *rest)
            .expect_err("an error");
        assert!(err.contains("shape"), "{err}");
        let err = decode::<Reply>(b"\xff\x00garbage", "a reply").expect_err("an error");
        assert!(err.contains("not lbtop's agent"), "{err}");
        assert!(frame_len([0xff, 0xff, 0xff, 0x7f], 1 << 20).is_err());
    }

    #[test]
    fn versions_must_match_and_paths_are_quoted() {
        assert_eq!(Hello::ours().mismatch(), None);
        let other = Hello {
            protocol: PROTOCOL,
            version: "0.0.1\x1b[2J".into(),
        };
        let m = other.mismatch().expect("a mismatch");
        assert!(m.contains("0.0.1") && !m.contains('\x1b'), "{m}");
        let c = AgentChoice::Path("/opt/it's/lbtop".into())
            .command(SudoMode::Always)
            .expect("a command");
        assert_eq!(
            c,
            "exec /bin/sh -c '[ -x '\\''/opt/it'\\''\\'\\'''\\''s/lbtop'\\'' ] || { echo '\\''lbtop agent: \
             not found'\\'' >&2; exit 127; }; exec sudo -n '\\''/opt/it'\\''\\'\\'''\\''s/lbtop'\\'' agent'"
        );
        // The shell reads it as one command that runs the path as given.
        let out = std::process::Command::new("/bin/sh")
            .args(["-n", "-c", &c])
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(AgentChoice::Never.command(SudoMode::Auto), None);
        assert!("lbtop".parse::<AgentChoice>().is_err());
        assert!("/a\nb".parse::<AgentChoice>().is_err());
        assert_eq!("never".parse(), Ok(AgentChoice::Never));
    }
}
