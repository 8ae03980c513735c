//! One SSH connection: TCP (or a jump host's forwarded channel), the host key checked against
//! known_hosts, public-key authentication through the agent and key files, and `exec` with a size
//! limit. Connecting has one deadline for all of it, so a host that accepts TCP and then says
//! nothing (a stopped sshd) fails in time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use russh::ChannelMsg;
use russh::client::{self, AuthResult, Handle};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{
    Algorithm, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate,
};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::{Instant, timeout_at};

use super::config::{IdentityAgent, ResolvedHost, SshSettings, StrictHostKeyChecking};
use super::jump::JumpPool;
use super::known_hosts::{self, Verdict};
use super::{SshError, SshTuning, io_message};
use crate::fsutil;

/// What every connection shares: the configuration, the tuning and the jump host connections.
#[derive(Debug)]
pub struct SshContext {
    pub settings: SshSettings,
    pub tuning: SshTuning,
    pub jumps: JumpPool,
}

impl SshContext {
    pub fn new(settings: SshSettings, tuning: SshTuning) -> Arc<SshContext> {
        Arc::new(SshContext {
            settings,
            tuning,
            jumps: JumpPool::default(),
        })
    }
}

/// How the host key is judged, and where a learned key goes.
#[derive(Debug, Clone)]
struct HostKeyPolicy {
    name: String,
    files: Vec<PathBuf>,
    learn_to: Option<PathBuf>,
    strict: StrictHostKeyChecking,
    hash: bool,
}

impl HostKeyPolicy {
    fn for_host(host: &ResolvedHost) -> HostKeyPolicy {
        HostKeyPolicy {
            name: known_hosts::lookup_name(
                &host.hostname,
                host.port,
                host.host_key_alias.as_deref(),
            ),
            files: host.known_hosts_files(),
            learn_to: host.user_known_hosts.first().cloned(),
            strict: host.strict_host_key_checking,
            hash: host.hash_known_hosts,
        }
    }

    /// Runs on the blocking pool: it reads and may append to files.
    fn judge(&self, key: &PublicKey) -> Result<(), SshError> {
        let fingerprint = known_hosts::fingerprint(key);
        let key_type = key.algorithm().to_string();
        match known_hosts::check(&self.files, &self.name, key) {
            Verdict::Known => Ok(()),
            Verdict::Changed { path, line } => Err(SshError::HostKeyChanged {
                name: self.name.clone(),
                key_type,
                fingerprint,
                path,
                line,
                revoked: false,
            }),
            Verdict::Revoked { path, line } => Err(SshError::HostKeyChanged {
                name: self.name.clone(),
                key_type,
                fingerprint,
                path,
                line,
                revoked: true,
            }),
            Verdict::Unknown { other_types } => {
                let learn_to = match (self.strict, &self.learn_to) {
                    (StrictHostKeyChecking::Yes, _) | (_, None) => {
                        return Err(SshError::HostKeyUnknown {
                            name: self.name.clone(),
                            key_type,
                            fingerprint,
                            files: self.files.first().map_or_else(
                                || "any known_hosts file".into(),
                                |p| p.display().to_string(),
                            ),
                            other_types,
                        });
                    }
                    (_, Some(path)) => path,
                };
                known_hosts::learn(learn_to, &self.name, key, self.hash).map_err(|e| {
                    SshError::KnownHostsWrite {
                        path: learn_to.clone(),
                        message: e.to_string(),
                    }
                })?;
                tracing::warn!(
                    host = %self.name,
                    "learned a new host key: {key_type} {fingerprint} (added to {})",
                    learn_to.display()
                );
                Ok(())
            }
        }
    }
}

/// Why a connection ended, as the handler learned it: read when a later call finds it closed,
/// and awaited between polls so that a connection lost while idle is reported at once.
#[derive(Clone)]
struct EndReason(Arc<tokio::sync::watch::Sender<Option<String>>>);

impl EndReason {
    fn new() -> EndReason {
        EndReason(Arc::new(tokio::sync::watch::channel(None).0))
    }

    fn set(&self, why: String) {
        self.0.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(why);
                true
            } else {
                false
            }
        });
    }

    fn get(&self) -> Option<String> {
        self.0.borrow().clone()
    }
}

/// Why the host says it closed the connection: its own words, printable (they end up in errors
/// printed to the terminal and in the log), at most 200 characters.
fn host_closed(message: &str) -> String {
    format!(
        "the host closed the connection ({})",
        crate::model::text::printable(message.trim(), 200)
    )
}

/// The russh client handler: it judges the host key and remembers why the connection ended.
struct Client {
    policy: Arc<HostKeyPolicy>,
    ended: EndReason,
}

impl client::Handler for Client {
    type Error = SshError;

    async fn disconnected(
        &mut self,
        reason: client::DisconnectReason<SshError>,
    ) -> Result<(), SshError> {
        let why = match &reason {
            client::DisconnectReason::ReceivedDisconnect(info) => host_closed(&info.message),
            client::DisconnectReason::Error(e) => e.to_string(),
        };
        self.ended.set(why);
        match reason {
            client::DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            client::DisconnectReason::Error(e) => Err(e),
        }
    }

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, SshError> {
        let key = key.public_key();
        let policy = self.policy.clone();
        tokio::task::spawn_blocking(move || policy.judge(&key))
            .await
            .map_err(|e| SshError::Reply(format!("host key check failed: {e}")))??;
        Ok(true)
    }
}

/// The output of one remote command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    /// At most 64 KiB are kept.
    pub stderr: Vec<u8>,
    pub exit_status: Option<u32>,
    pub exit_signal: Option<String>,
}

impl ExecOutput {
    /// The first line of stderr, for messages: printable (the router's escapes shown escaped,
    /// never sent to a terminal or a log) and at most 200 characters.
    pub fn stderr_line(&self) -> Option<String> {
        String::from_utf8_lossy(&self.stderr)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| crate::model::text::printable(l, 200))
    }
}

const MAX_STDERR: usize = 64 << 10;

/// An open, authenticated SSH connection.
pub struct Connection {
    handle: Handle<Client>,
    /// The jump host connection this one runs through; kept open as long as this one is.
    _via: Option<Arc<Connection>>,
    endpoint: String,
    ended: EndReason,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// The host key algorithms to offer: those recorded for the host first, so the server proves a
/// key that can be checked (as OpenSSH orders them).
fn preferred_host_keys(known: &[Algorithm]) -> Vec<Algorithm> {
    let mut all: Vec<Algorithm> = russh::Preferred::DEFAULT.key.to_vec();
    let rank = |a: &Algorithm| {
        known
            .iter()
            .position(|k| {
                k == a || (matches!(k, Algorithm::Rsa { .. }) && matches!(a, Algorithm::Rsa { .. }))
            })
            .unwrap_or(usize::MAX)
    };
    all.sort_by_key(rank);
    all
}

fn client_config(host: &ResolvedHost, tuning: &SshTuning, known: &[Algorithm]) -> client::Config {
    let preferred = russh::Preferred {
        key: preferred_host_keys(known).into(),
        ..russh::Preferred::default()
    };
    client::Config {
        keepalive_interval: Some(
            host.server_alive_interval
                .unwrap_or(tuning.keepalive_interval),
        )
        .filter(|d| !d.is_zero()),
        keepalive_max: host.server_alive_count_max.unwrap_or(tuning.keepalive_max),
        nodelay: true,
        preferred,
        ..client::Config::default()
    }
}

async fn tcp_connect(host: &ResolvedHost) -> Result<TcpStream, SshError> {
    let addrs: Vec<std::net::SocketAddr> = match host.hostname.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![std::net::SocketAddr::new(ip, host.port)],
        Err(_) => tokio::net::lookup_host((host.hostname.as_str(), host.port))
            .await
            .map_err(|e| SshError::Unreachable(format!("cannot resolve {}: {e}", host.hostname)))?
            .collect(),
    };
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(SshError::Unreachable(match last {
        Some(e) => io_message(&e),
        None => format!("{} has no address", host.hostname),
    }))
}

impl Connection {
    /// Connects, checks the host key and authenticates, all before `deadline`.
    pub async fn connect(
        ctx: &Arc<SshContext>,
        host: &ResolvedHost,
        deadline: Instant,
    ) -> Result<Connection, SshError> {
        Self::connect_depth(ctx, host, deadline, 0).await
    }

    pub(crate) async fn connect_depth(
        ctx: &Arc<SshContext>,
        host: &ResolvedHost,
        deadline: Instant,
        depth: usize,
    ) -> Result<Connection, SshError> {
        let policy = Arc::new(HostKeyPolicy::for_host(host));
        let known = {
            let policy = policy.clone();
            tokio::task::spawn_blocking(move || {
                known_hosts::known_algorithms(&policy.files, &policy.name)
            })
            .await
            .unwrap_or_default()
        };
        let config = Arc::new(client_config(host, &ctx.tuning, &known));
        let ended = EndReason::new();
        let handler = Client {
            policy,
            ended: ended.clone(),
        };
        let (handle, via) = if host.proxy_jump.is_empty() {
            let handle = Self::handshake_direct(ctx, host, deadline, config, handler).await?;
            (handle, None)
        } else {
            let via = ctx
                .jumps
                .get(ctx, &host.proxy_jump, deadline, depth + 1)
                .await?;
            let handle = Self::handshake_via(ctx, host, deadline, &via, config, handler).await?;
            (handle, Some(via))
        };
        let mut conn = Connection {
            handle,
            _via: via,
            endpoint: host.endpoint(),
            ended,
        };
        timeout_at(deadline, conn.authenticate(host))
            .await
            .map_err(|_| timed_out(ctx, "authentication"))??;
        Ok(conn)
    }

    /// TCP to the host, then the SSH handshake over it.
    async fn handshake_direct(
        ctx: &SshContext,
        host: &ResolvedHost,
        deadline: Instant,
        config: Arc<client::Config>,
        handler: Client,
    ) -> Result<Handle<Client>, SshError> {
        let tcp = timeout_at(deadline, tcp_connect(host))
            .await
            .map_err(|_| timed_out(ctx, "TCP connect"))??;
        timeout_at(deadline, client::connect_stream(config, tcp, handler))
            .await
            .map_err(|_| timed_out(ctx, "SSH handshake"))?
    }

    /// A channel forwarded through the jump host `via`, then the SSH handshake over it.
    async fn handshake_via(
        ctx: &SshContext,
        host: &ResolvedHost,
        deadline: Instant,
        via: &Connection,
        config: Arc<client::Config>,
        handler: Client,
    ) -> Result<Handle<Client>, SshError> {
        let wrap = |e: SshError| SshError::Jump {
            via: via.endpoint.clone(),
            source: Box::new(e),
        };
        let channel = timeout_at(
            deadline,
            via.handle.channel_open_direct_tcpip(
                host.hostname.as_str(),
                u32::from(host.port),
                "127.0.0.1",
                0,
            ),
        )
        .await
        .map_err(|_| wrap(timed_out(ctx, "forwarding")))?
        .map_err(|e| match e {
            russh::Error::ChannelOpenFailure(reason) => wrap(SshError::Unreachable(format!(
                "cannot reach {}:{} ({})",
                host.hostname,
                host.port,
                open_failure(&reason)
            ))),
            other => wrap(other.into()),
        })?;
        timeout_at(
            deadline,
            client::connect_stream(config, channel.into_stream(), handler),
        )
        .await
        .map_err(|_| timed_out(ctx, "SSH handshake"))?
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the connection has ended (the host went away, or keepalives went unanswered).
    pub(crate) fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Waits until the connection ends (the host closed it, or keepalives went unanswered) and
    /// says why.
    pub async fn closed(&self) -> SshError {
        let mut rx = self.ended.0.subscribe();
        let why = match rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone().unwrap_or_default(),
            Err(_) => String::new(),
        };
        SshError::Unreachable(if why.is_empty() {
            "connection lost".into()
        } else {
            why
        })
    }

    /// An error from a call on this connection, with the reason it ended when it has.
    fn lost(&self, e: russh::Error) -> SshError {
        match (SshError::from(e), self.ended.get()) {
            (SshError::Unreachable(_), Some(why)) => SshError::Unreachable(why),
            (other, _) => other,
        }
    }

    /// Public-key authentication: agent keys (those matching an `IdentityFile` first; only those
    /// with `IdentitiesOnly`), then key files the agent did not offer. Never prompts: an
    /// encrypted key without an agent is reported, not asked about.
    async fn authenticate(&mut self, host: &ResolvedHost) -> Result<(), SshError> {
        let mut log = AuthLog {
            user: host.user.clone(),
            tried: Vec::new(),
            notes: Vec::new(),
            rsa_hash: None,
        };
        let files = load_identity_files(host).await;
        let file_publics: Vec<PublicKey> = files.iter().filter_map(|f| f.public.clone()).collect();

        let (mut agent, mut agent_keys) = agent_keys(host, &mut log.notes).await;
        let in_files = |k: &PublicKey| file_publics.iter().any(|f| f.key_data() == k.key_data());
        agent_keys.sort_by_key(|k| !in_files(k));
        if host.identities_only {
            agent_keys.retain(|k| in_files(k));
        }
        if let Some(agent) = agent.as_mut()
            && self.offer_agent_keys(agent, &agent_keys, &mut log).await?
        {
            return Ok(());
        }
        for file in files {
            if self
                .offer_key_file(host, file, &agent_keys, &mut log)
                .await?
            {
                return Ok(());
            }
        }
        Err(log.failed("permission denied"))
    }

    /// Offers the agent's keys in turn; `true` once the server accepts one.
    async fn offer_agent_keys(
        &mut self,
        agent: &mut AgentClient<UnixStream>,
        agent_keys: &[PublicKey],
        log: &mut AuthLog,
    ) -> Result<bool, SshError> {
        for key in agent_keys {
            let hash = self.hash_for(key.algorithm(), &mut log.rsa_hash).await;
            log.tried
                .push(format!("agent key {}", known_hosts::fingerprint(key)));
            match self
                .handle
                .authenticate_publickey_with(&log.user, key.clone(), hash, agent)
                .await
            {
                Ok(answer) => match key_answer(answer) {
                    KeyAnswer::Accepted => return Ok(true),
                    KeyAnswer::NextKey => {}
                    KeyAnswer::Stop(why) => return Err(log.failed(why)),
                },
                Err(e) => log.notes.push(format!("the agent could not sign: {e}")),
            }
            if self.handle.is_closed() {
                return Err(log.failed("the server closed the connection"));
            }
        }
        Ok(false)
    }

    /// Offers one key file, unless the agent offered it already, or notes why it cannot;
    /// `true` when the server accepts it.
    async fn offer_key_file(
        &mut self,
        host: &ResolvedHost,
        file: IdentityFile,
        agent_keys: &[PublicKey],
        log: &mut AuthLog,
    ) -> Result<bool, SshError> {
        let shown = tilde(&file.path, &host_home(host));
        match file.private {
            Ok(key) => {
                let public = key.public_key().clone();
                if agent_keys.iter().any(|k| k.key_data() == public.key_data()) {
                    return Ok(false);
                }
                let hash = self.hash_for(key.algorithm(), &mut log.rsa_hash).await;
                log.tried.push(shown);
                match self
                    .handle
                    .authenticate_publickey(
                        &log.user,
                        PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                    )
                    .await
                {
                    Ok(answer) => match key_answer(answer) {
                        KeyAnswer::Accepted => return Ok(true),
                        KeyAnswer::NextKey => {}
                        KeyAnswer::Stop(why) => return Err(log.failed(why)),
                    },
                    Err(e) => {
                        return Err(match SshError::from(e) {
                            SshError::Unreachable(m) => log.failed(&m),
                            other => other,
                        });
                    }
                }
            }
            Err(KeyLoad::Missing) => {
                if host.identity_files_configured {
                    log.notes.push(format!("{shown} does not exist"));
                }
            }
            Err(KeyLoad::Encrypted) => {
                let in_agent = file
                    .public
                    .as_ref()
                    .is_some_and(|p| agent_keys.iter().any(|k| k.key_data() == p.key_data()));
                if !in_agent {
                    log.notes.push(format!(
                        "{shown} is encrypted and no agent holds it (lbtop never asks for \
                         passphrases: add it with ssh-add)"
                    ));
                }
            }
            Err(KeyLoad::Unreadable(e)) => log.notes.push(format!("cannot use {shown}: {e}")),
        }
        Ok(false)
    }

    /// The RSA signature hash to use, asked of the server once (it may take up to a second).
    async fn hash_for(
        &self,
        algorithm: Algorithm,
        cache: &mut Option<Option<HashAlg>>,
    ) -> Option<HashAlg> {
        if !algorithm.is_rsa() {
            return None;
        }
        if let Some(h) = cache {
            return *h;
        }
        let h = self
            .handle
            .best_supported_rsa_hash()
            .await
            .ok()
            .flatten()
            .flatten();
        *cache = Some(h);
        h
    }

    /// A new session channel running `command`, with `input` written to its stdin (left open).
    pub(super) async fn open_exec(
        &self,
        command: &str,
        input: &[u8],
    ) -> Result<russh::Channel<client::Msg>, SshError> {
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| match e {
                russh::Error::ChannelOpenFailure(reason) => SshError::Reply(format!(
                    "the host refused a session ({})",
                    open_failure(&reason)
                )),
                other => self.lost(other),
            })?;
        channel
            .exec(true, command)
            .await
            .map_err(|e| self.lost(e))?;
        if !input.is_empty() {
            channel.data(input).await.map_err(|e| self.lost(e))?;
        }
        Ok(channel)
    }

    /// Runs `command` with `input` on its stdin (then end of file) and collects its output; more
    /// than `limit` bytes of stdout is an error.
    pub async fn exec(
        &self,
        command: &str,
        input: Option<&[u8]>,
        limit: usize,
    ) -> Result<ExecOutput, SshError> {
        let mut channel = self.open_exec(command, input.unwrap_or_default()).await?;
        channel.eof().await.map_err(|e| self.lost(e))?;
        let mut out = ExecOutput::default();
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    if out.stdout.len() + data.len() > limit {
                        // A dropped channel stays open on the server; this connection goes on.
                        let _ = channel.close().await;
                        return Err(SshError::Reply(format!(
                            "reply larger than {} — not what lbtop asked for",
                            bytesize_text(limit)
                        )));
                    }
                    out.stdout.extend_from_slice(&data);
                }
                ChannelMsg::ExtendedData { data, .. } => {
                    let room = MAX_STDERR.saturating_sub(out.stderr.len());
                    out.stderr.extend_from_slice(&data[..data.len().min(room)]);
                }
                ChannelMsg::ExitStatus { exit_status } => out.exit_status = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    out.exit_signal = Some(format!("{signal_name:?}"));
                }
                ChannelMsg::Failure => {
                    let _ = channel.close().await;
                    return Err(SshError::Reply(
                        "the host refused to run the command".into(),
                    ));
                }
                _ => {}
            }
        }
        if out.exit_status.is_none() && out.exit_signal.is_none() && self.handle.is_closed() {
            return Err(SshError::Unreachable(
                self.ended
                    .get()
                    .unwrap_or_else(|| "connection lost during a poll".into()),
            ));
        }
        Ok(out)
    }

    /// Says goodbye to the server; errors are of no interest, the connection is going anyway.
    pub async fn close(&self) {
        let _ = tokio::time::timeout(
            Duration::from_millis(200),
            self.handle
                .disconnect(russh::Disconnect::ByApplication, "", "en"),
        )
        .await;
    }
}

/// Why a channel was refused, in words.
fn open_failure(reason: &russh::ChannelOpenFailure) -> String {
    use russh::ChannelOpenFailure as F;
    match reason {
        F::AdministrativelyProhibited => "refused by its sshd's configuration".into(),
        F::ConnectFailed => "connection failed".into(),
        F::UnknownChannelType => "channel type not supported".into(),
        F::ResourceShortage => "out of resources".into(),
        F::Other { code, reason } => format!("code {code}: {}", reason.trim()),
    }
}

pub(super) fn bytesize_text(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{} KiB", n >> 10)
    }
}

/// What the server's answer to one offered key means for the next.
enum KeyAnswer {
    Accepted,
    NextKey,
    /// No more keys are worth offering; the reason for the error.
    Stop(&'static str),
}

fn key_answer(answer: AuthResult) -> KeyAnswer {
    match answer {
        AuthResult::Success => KeyAnswer::Accepted,
        AuthResult::Failure {
            remaining_methods, ..
        } if !remaining_methods.contains(&russh::MethodKind::PublicKey) => {
            KeyAnswer::Stop("the server does not accept public keys")
        }
        AuthResult::Failure { .. } => KeyAnswer::NextKey,
    }
}

/// What an authentication offered and learned on the way, for its error.
struct AuthLog {
    user: String,
    /// The keys offered, as shown in the error.
    tried: Vec<String>,
    /// Why other keys were not offered, or the agent could not help.
    notes: Vec<String>,
    /// The server's RSA signature hash, once asked.
    rsa_hash: Option<Option<HashAlg>>,
}

impl AuthLog {
    fn failed(&self, why: &str) -> SshError {
        auth_failed(&self.user, why, &self.tried, &self.notes)
    }
}

/// The agent for `host` and the keys it holds; without one (none configured, unreachable, or
/// not listing keys), a note says why.
async fn agent_keys(
    host: &ResolvedHost,
    notes: &mut Vec<String>,
) -> (Option<AgentClient<UnixStream>>, Vec<PublicKey>) {
    let mut agent_keys: Vec<PublicKey> = Vec::new();
    let agent = match agent_socket(&host.identity_agent) {
        None => None,
        Some(path) => match AgentClient::connect_uds(&path).await {
            Ok(mut a) => match a.request_identities().await {
                Ok(ids) => {
                    for id in ids {
                        if let AgentIdentity::PublicKey { key, .. } = id {
                            agent_keys.push(key);
                        }
                    }
                    Some(a)
                }
                Err(e) => {
                    notes.push(format!(
                        "the agent at {} did not list keys: {e}",
                        path.display()
                    ));
                    None
                }
            },
            Err(e) => {
                notes.push(format!("cannot reach the agent at {}: {e}", path.display()));
                None
            }
        },
    };
    (agent, agent_keys)
}

/// A connection stage that ran out of time, against the whole connect timeout.
fn timed_out(ctx: &SshContext, stage: &str) -> SshError {
    let total = ctx.tuning.connect_timeout;
    SshError::Unreachable(format!(
        "no answer within {} ({stage})",
        humantime::format_duration(Duration::from_secs(total.as_secs().max(1)))
    ))
}

fn auth_failed(user: &str, why: &str, tried: &[String], notes: &[String]) -> SshError {
    let mut detail = why.to_string();
    if tried.is_empty() {
        detail.push_str("; no key to offer (no agent keys, no usable key files)");
    } else {
        detail.push_str(&format!("; tried {}", tried.join(", ")));
    }
    for n in notes {
        detail.push_str("; ");
        detail.push_str(n);
    }
    SshError::AuthFailed {
        user: user.to_string(),
        detail,
    }
}

fn agent_socket(agent: &IdentityAgent) -> Option<PathBuf> {
    match agent {
        IdentityAgent::Disabled => None,
        IdentityAgent::Socket(p) => Some(p.clone()),
        IdentityAgent::Env => std::env::var_os("SSH_AUTH_SOCK")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    }
}

fn host_home(host: &ResolvedHost) -> PathBuf {
    // The default identities live in the home the settings were made for.
    host.identity_files
        .iter()
        .find_map(|p| {
            let s = p.to_string_lossy();
            s.find("/.ssh/").map(|i| PathBuf::from(&s[..i]))
        })
        .unwrap_or_default()
}

/// `~/.ssh/id_rsa` rather than the full path, for messages.
fn tilde(path: &Path, home: &Path) -> String {
    match path.strip_prefix(home) {
        Ok(rest) if !home.as_os_str().is_empty() => format!("~/{}", rest.display()),
        _ => path.display().to_string(),
    }
}

enum KeyLoad {
    Missing,
    Encrypted,
    Unreadable(String),
}

struct IdentityFile {
    path: PathBuf,
    private: Result<PrivateKey, KeyLoad>,
    /// From the key itself, or from `FILE.pub` when the key is encrypted.
    public: Option<PublicKey>,
}

/// Reads the identity files on the blocking pool.
async fn load_identity_files(host: &ResolvedHost) -> Vec<IdentityFile> {
    let paths = host.identity_files.clone();
    tokio::task::spawn_blocking(move || {
        paths
            .into_iter()
            .map(|path| {
                let private = match fsutil::read_text(&path, fsutil::SMALL_FILE_BYTES) {
                    Err(e) if e.is_not_found() => Err(KeyLoad::Missing),
                    Err(e) => Err(KeyLoad::Unreadable(e.to_string())),
                    Ok(text) => match russh::keys::decode_secret_key(&text, None) {
                        Ok(k) => Ok(k),
                        Err(russh::keys::Error::KeyIsEncrypted) => Err(KeyLoad::Encrypted),
                        Err(e) => Err(KeyLoad::Unreadable(e.to_string())),
                    },
                };
                let public = match &private {
                    Ok(k) => Some(k.public_key().clone()),
                    Err(_) => {
                        let mut pub_path = path.clone().into_os_string();
                        pub_path.push(".pub");
                        public_key_file(Path::new(&pub_path))
                    }
                };
                IdentityFile {
                    path,
                    private,
                    public,
                }
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// `FILE.pub`: the first line that is not blank or a comment, `ALGORITHM BASE64 [COMMENT]` or
/// the bare base64 (as `russh::keys::load_public_key` reads it, through [`fsutil`]).
fn public_key_file(path: &Path) -> Option<PublicKey> {
    let text = fsutil::read_text(path, fsutil::SMALL_FILE_BYTES).ok()?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let base64 = match line.split_once(char::is_whitespace) {
        None => line,
        Some((_, rest)) => rest.split_whitespace().next()?,
    };
    russh::keys::parse_public_key_base64(base64).ok()
}

#[cfg(test)]
mod key_file_tests {
    use super::*;

    #[test]
    fn a_public_key_file_is_read_and_a_fifo_in_its_place_is_not_waited_on() {
        let dir = tempfile::tempdir().expect("dir");
        let good = dir.path().join("id.pub");
        std::fs::write(
            &good,
            "# comment\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ me@x\n",
        )
        .expect("write");
        assert!(public_key_file(&good).is_some());
        let fifo = dir.path().join("fifo.pub");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(public_key_file(&fifo).is_none());
        });
        assert!(
            rx.recv_timeout(Duration::from_secs(5))
                .expect("answered within five seconds")
        );
    }
}

#[cfg(test)]
mod stderr_tests {
    use super::{ExecOutput, host_closed};

    #[test]
    fn the_hosts_disconnect_message_shows_its_escape_sequences_escaped() {
        let why = host_closed(" bye \x1b]0;pwned\x07\x1b[2J ");
        assert!(!why.contains('\x1b') && !why.contains('\x07'), "{why:?}");
        assert_eq!(
            why,
            "the host closed the connection (bye \\u{1b}]0;pwned\\u{7}\\u{1b}[2J)"
        );
    }

    #[test]
    fn stderr_line_shows_the_routers_escape_sequences_escaped() {
        let out = ExecOutput {
            stdout: Vec::new(),
            stderr: b"\n ipvsadm: \x1b]0;pwned\x07\x1b[2J failed\nmore\n".to_vec(),
            exit_status: Some(1),
            exit_signal: None,
        };
        let line = out.stderr_line().expect("a line");
        assert!(!line.contains('\x1b') && !line.contains('\x07'), "{line:?}");
        assert_eq!(line, "ipvsadm: \\u{1b}]0;pwned\\u{7}\\u{1b}[2J failed");
    }
}
