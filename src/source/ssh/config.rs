//! OpenSSH client configuration for one host: `-o` options, then `~/.ssh/config` (or `-F FILE`),
//! then `/etc/ssh/ssh_config`, the first value obtained winning, as ssh(1) does. Files are parsed
//! by the `ssh2-config` crate (Host patterns, Include, HostName, User, Port, IdentityFile,
//! ProxyJump, ConnectTimeout, ServerAliveInterval); the options it passes through unparsed
//! (UserKnownHostsFile, StrictHostKeyChecking, HashKnownHosts, HostKeyAlias, IdentitiesOnly,
//! IdentityAgent, ServerAliveCountMax, GlobalKnownHostsFile) are read here.

use std::collections::HashMap;
use std::io::BufReader;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh2_config::{HostParams, ParseRule, SshConfig};

use super::hosts::{HostSpec, HostsError, is_safe_host, is_safe_user};

/// The system-wide client configuration, read after the user's unless `-F` is given.
pub(crate) const SYSTEM_CONFIG: &str = "/etc/ssh/ssh_config";
/// The system-wide known hosts files OpenSSH reads by default.
pub(crate) const SYSTEM_KNOWN_HOSTS: [&str; 2] =
    ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];

/// Why the SSH configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SshConfigError {
    #[error("ssh config {}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("-o {option}: {message}")]
    Option { option: String, message: String },
    #[error("{host}: {message}")]
    Value { host: String, message: String },
    #[error(transparent)]
    Host(#[from] HostsError),
    #[error("no home directory (set HOME)")]
    NoHome,
}

/// `StrictHostKeyChecking`. `ask` behaves as `yes`: lbtop never prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictHostKeyChecking {
    /// Refuse unknown keys (the default).
    Yes,
    /// Learn unknown keys; refuse changed ones.
    AcceptNew,
    /// Learn unknown keys; changed keys are still refused (lbtop never connects to those).
    No,
}

/// Where to find the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityAgent {
    /// `SSH_AUTH_SOCK`, when set.
    Env,
    /// `IdentityAgent none`.
    Disabled,
    Socket(PathBuf),
}

/// Everything needed to reach one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedHost {
    /// The host as given (an alias or an address), for messages and `%n`.
    pub alias: String,
    /// What to connect to: `HostName`, or the alias.
    pub hostname: String,
    pub port: u16,
    pub user: String,
    /// In order; the defaults (`~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`) when none is configured.
    pub identity_files: Vec<PathBuf>,
    /// Whether `IdentityFile` was set (so a missing file is worth a message).
    pub identity_files_configured: bool,
    pub identities_only: bool,
    pub identity_agent: IdentityAgent,
    /// Hops to go through, first hop first; empty for a direct connection.
    pub proxy_jump: Vec<HostSpec>,
    /// `UserKnownHostsFile`: checked in order; a learned key goes to the first.
    pub user_known_hosts: Vec<PathBuf>,
    /// `GlobalKnownHostsFile`: checked after the user files, never written.
    pub global_known_hosts: Vec<PathBuf>,
    pub strict_host_key_checking: StrictHostKeyChecking,
    pub hash_known_hosts: bool,
    pub host_key_alias: Option<String>,
    pub connect_timeout: Option<Duration>,
    pub server_alive_interval: Option<Duration>,
    pub server_alive_count_max: Option<usize>,
}

impl ResolvedHost {
    /// Every known hosts file, user files first.
    pub(crate) fn known_hosts_files(&self) -> Vec<PathBuf> {
        self.user_known_hosts
            .iter()
            .chain(&self.global_known_hosts)
            .cloned()
            .collect()
    }

    /// `user@hostname:port` for messages and as the identity of a shared jump connection.
    pub(crate) fn endpoint(&self) -> String {
        let spec = HostSpec {
            user: Some(self.user.clone()),
            host: self.hostname.clone(),
            port: Some(self.port),
        };
        spec.to_string()
    }
}

/// The configuration for every host lbtop watches.
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// `-o` options, parsed like a config file's global section; they win over the files.
    overrides: SshConfig,
    /// `-F FILE` or `~/.ssh/config`, then the system file: first value wins.
    files: Vec<SshConfig>,
    home: PathBuf,
    local_user: String,
}

/// What the command line says about SSH.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshArgs {
    /// `-F FILE`: instead of `~/.ssh/config`, and the system file is then not read.
    pub config_file: Option<PathBuf>,
    /// `-o Option=Value`, OpenSSH's option names.
    pub options: Vec<String>,
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf()))
}

/// The login name of this process: `USER`, `LOGNAME`, or `/etc/passwd` for our uid.
fn local_user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(var)
            && !u.is_empty()
        {
            return u;
        }
    }
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let passwd =
        crate::fsutil::read_text(Path::new("/etc/passwd"), crate::fsutil::SMALL_FILE_BYTES);
    if let (Some(uid), Ok(passwd)) = (uid, passwd) {
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid) {
                return f[0].to_string();
            }
        }
    }
    "root".to_string()
}

/// A `Host` pattern no host lbtop accepts can match (`:` is not in a host name).
const NEVER: &str = "lbtop:unsupported-match-block";

/// `Match` blocks are not understood by the parser, which would apply their options to the `Host`
/// block before them. They become a block that matches no host, so their options apply nowhere
/// (as for a `Match` whose criteria fail); the operator is told once.
fn neutralise_match_blocks(text: &str, path: &Path) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let keyword = line
            .trim_start()
            .split(|c: char| c.is_whitespace() || c == '=')
            .next()
            .unwrap_or("");
        if keyword.eq_ignore_ascii_case("match") {
            tracing::warn!(
                "{}: `{}`: Match blocks are not supported; their options are ignored",
                path.display(),
                line.trim()
            );
            out.push_str("Host ");
            out.push_str(NEVER);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn parse_file(path: &Path, home: &Path, rules: ParseRule) -> Result<SshConfig, SshConfigError> {
    let text = crate::fsutil::read_text(path, crate::fsutil::SMALL_FILE_BYTES).map_err(|e| {
        SshConfigError::File {
            path: path.to_path_buf(),
            message: e.problem(),
        }
    })?;
    check_includes(&text, home, 0)?;
    let text = neutralise_match_blocks(&text, path);
    SshConfig::default()
        .home_dir(home)
        .parse(&mut BufReader::new(text.as_bytes()), rules)
        .map_err(|e| SshConfigError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// How deep `Include`s are followed by [`check_includes`] (the parser reports a cycle itself).
const MAX_INCLUDE_DEPTH: usize = 16;

/// The ssh2-config parser opens the files an `Include` names itself, and would wait forever on a
/// FIFO among them or read a device without end. So each file it would open (the same paths:
/// absolute, `~/…`, else under `~/.ssh/`, globbed) is read first through [`fsutil`], refused
/// with its path unless it is a regular file of a config file's size, and its own `Include`s in
/// turn.
fn check_includes(text: &str, home: &Path, depth: usize) -> Result<(), SshConfigError> {
    if depth > MAX_INCLUDE_DEPTH {
        return Ok(());
    }
    for line in text.lines() {
        let mut words = line
            .split(|c: char| c.is_whitespace() || c == '=')
            .filter(|w| !w.is_empty());
        if !words
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("include"))
        {
            continue;
        }
        for arg in words {
            let arg = arg.trim_matches('"');
            let escaped = |p: &Path| PathBuf::from(glob::Pattern::escape(&p.to_string_lossy()));
            let pattern = if arg.starts_with('/') {
                PathBuf::from(arg)
            } else if arg == "~" {
                escaped(home)
            } else if let Some(rest) = arg.strip_prefix("~/") {
                escaped(home).join(rest)
            } else if arg.starts_with('~') {
                continue; // `~user/…`: the parser keeps it as it is, and finds nothing
            } else {
                escaped(home).join(".ssh").join(arg)
            };
            let Ok(files) = glob::glob(&pattern.to_string_lossy()) else {
                continue; // a bad pattern: the parser says so
            };
            for file in files.flatten() {
                let text = crate::fsutil::read_text(&file, crate::fsutil::SMALL_FILE_BYTES)
                    .map_err(|e| SshConfigError::File {
                        path: file.clone(),
                        message: e.problem(),
                    })?;
                check_includes(&text, home, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// The `-o` options OpenSSH has but lbtop does not act on are still accepted (as ssh(1) would),
/// except these, which would change what the connection does in ways lbtop cannot honour.
const REFUSED_OPTIONS: [&str; 3] = ["proxycommand", "localcommand", "remotecommand"];

impl SshSettings {
    /// Reads the files the way ssh(1) would for this user.
    pub fn load(args: &SshArgs) -> Result<SshSettings, SshConfigError> {
        let home = home_dir().ok_or(SshConfigError::NoHome)?;
        let system = args
            .config_file
            .is_none()
            .then(|| PathBuf::from(SYSTEM_CONFIG));
        SshSettings::load_from(args, &home, system.as_deref(), local_user())
    }

    /// As [`load`](Self::load) with the home directory, the system file and the local user given
    /// (tests use their own).
    pub fn load_from(
        args: &SshArgs,
        home: &Path,
        system_file: Option<&Path>,
        local_user: String,
    ) -> Result<SshSettings, SshConfigError> {
        let lenient = ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS;
        let mut files = Vec::new();
        match &args.config_file {
            Some(path) => files.push(parse_file(path, home, lenient)?),
            None => {
                let user = home.join(".ssh/config");
                if user.exists() {
                    files.push(parse_file(&user, home, lenient)?);
                }
            }
        }
        if let Some(sys) = system_file
            && sys.exists()
        {
            match parse_file(sys, home, lenient) {
                Ok(c) => files.push(c),
                Err(e) => tracing::warn!("{e}; ignoring it"),
            }
        }
        let mut text = String::new();
        for option in &args.options {
            let line = option.trim();
            let name = line
                .split(|c: char| c == '=' || c.is_whitespace())
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if name.is_empty() || !line.contains(|c: char| c == '=' || c.is_whitespace()) {
                return Err(SshConfigError::Option {
                    option: option.clone(),
                    message: "write it as Option=Value".into(),
                });
            }
            if matches!(name.as_str(), "host" | "match" | "include") {
                return Err(SshConfigError::Option {
                    option: option.clone(),
                    message: "not an option for -o".into(),
                });
            }
            if REFUSED_OPTIONS.contains(&name.as_str()) {
                return Err(SshConfigError::Option {
                    option: option.clone(),
                    message: "lbtop does not support this option".into(),
                });
            }
            // Each option is checked on its own, so the error names it.
            SshConfig::default()
                .home_dir(home)
                .parse(&mut line.as_bytes(), ParseRule::ALLOW_UNSUPPORTED_FIELDS)
                .map_err(|e| SshConfigError::Option {
                    option: option.clone(),
                    message: e.to_string(),
                })?;
            text.push_str(line);
            text.push('\n');
        }
        let overrides = SshConfig::default()
            .home_dir(home)
            .parse(&mut text.as_bytes(), ParseRule::ALLOW_UNSUPPORTED_FIELDS)
            .map_err(|e| SshConfigError::Option {
                option: args.options.join(" "),
                message: e.to_string(),
            })?;
        let settings = SshSettings {
            overrides,
            files,
            home: home.to_path_buf(),
            local_user,
        };
        // Values the files only store as text are checked now, not at the first connection.
        settings.check_values()?;
        Ok(settings)
    }

    fn check_values(&self) -> Result<(), SshConfigError> {
        let p = self.overrides.query("*");
        let fields = &p.unsupported_fields;
        let wrap = |option: &str, message: String| SshConfigError::Option {
            option: option.to_string(),
            message,
        };
        if let Some(v) = fields.get("stricthostkeychecking") {
            strict_value(v).map_err(|m| wrap("StrictHostKeyChecking", m))?;
        }
        for name in ["hashknownhosts", "identitiesonly"] {
            if let Some(v) = fields.get(name) {
                yes_no(v).map_err(|m| wrap(name, m))?;
            }
        }
        if let Some(v) = fields.get("serveralivecountmax") {
            count_value(v).map_err(|m| wrap("ServerAliveCountMax", m))?;
        }
        Ok(())
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The parameters for `alias`: `-o` first, then each file; first value wins.
    fn params(&self, alias: &str) -> HostParams {
        let mut p = self.overrides.query(alias);
        for f in &self.files {
            p.overwrite_if_none(&f.query(alias));
        }
        p
    }

    /// Resolves a host as typed. `jump` (from `--jump`) replaces the host's `ProxyJump`.
    pub fn resolve(
        &self,
        spec: &HostSpec,
        jump: Option<&[HostSpec]>,
    ) -> Result<ResolvedHost, SshConfigError> {
        let alias = spec.host.clone();
        let p = self.params(&alias);
        let err = |message: String| SshConfigError::Value {
            host: alias.clone(),
            message,
        };
        let fields: &Fields = &p.unsupported_fields;
        let (hostname, port, user) = self.destination(spec, &p, &alias).map_err(err)?;
        let tokens = Tokens {
            home: &self.home,
            local_user: &self.local_user,
            hostname: &hostname,
            alias: &alias,
            port,
            user: &user,
        };
        let (identity_files, identity_files_configured) = self.identity_files(&p, &tokens);
        let identities_only = flag(fields, "identitiesonly").map_err(err)?;
        let identity_agent = identity_agent(fields, &tokens);
        let proxy_jump = match jump {
            Some(j) => j.to_vec(),
            None => parse_jump_list(p.proxy_jump.as_deref().unwrap_or_default())
                .map_err(|e| err(format!("ProxyJump: {e}")))?,
        };
        let (user_known_hosts, global_known_hosts) = self.known_hosts_files(fields, &tokens);
        let strict_host_key_checking = match fields.get("stricthostkeychecking") {
            Some(v) => strict_value(v).map_err(err)?,
            None => StrictHostKeyChecking::Yes,
        };
        let hash_known_hosts = flag(fields, "hashknownhosts").map_err(err)?;
        let host_key_alias = host_key_alias(fields).map_err(err)?;
        let server_alive_count_max = match fields.get("serveralivecountmax") {
            Some(v) => Some(count_value(v).map_err(err)?),
            None => None,
        };
        Ok(ResolvedHost {
            alias,
            hostname,
            port,
            user,
            identity_files,
            identity_files_configured,
            identities_only,
            identity_agent,
            proxy_jump,
            user_known_hosts,
            global_known_hosts,
            strict_host_key_checking,
            hash_known_hosts,
            host_key_alias,
            connect_timeout: p.connect_timeout.filter(|d| !d.is_zero()),
            server_alive_interval: p.server_alive_interval,
            server_alive_count_max,
        })
    }

    /// Where to connect and as whom: `HostName` (with `%h`), the port and the user, typed ones
    /// first; a name that is not safe to pass on is refused.
    fn destination(
        &self,
        spec: &HostSpec,
        p: &HostParams,
        alias: &str,
    ) -> Result<(String, u16, String), String> {
        let hostname = match &p.host_name {
            Some(h) => expand_percent_h(h, alias),
            None => alias.to_string(),
        };
        if !is_safe_host(&hostname) {
            return Err(format!("HostName {hostname:?} is not a safe host name"));
        }
        let port = spec.port.or(p.port).unwrap_or(22);
        let user = spec
            .user
            .clone()
            .or_else(|| p.user.clone())
            .unwrap_or_else(|| self.local_user.clone());
        if !is_safe_user(&user) {
            return Err(format!("User {user:?} is not a safe user name"));
        }
        Ok((hostname, port, user))
    }

    /// The `IdentityFile`s, or ssh's default keys when none is configured; and whether any was.
    fn identity_files(&self, p: &HostParams, tokens: &Tokens) -> (Vec<PathBuf>, bool) {
        let configured = p.identity_file.clone().unwrap_or_default();
        if configured.is_empty() {
            let defaults = ["id_ed25519", "id_ecdsa", "id_rsa"]
                .iter()
                .map(|n| self.home.join(".ssh").join(n))
                .collect();
            return (defaults, false);
        }
        let files = configured
            .iter()
            .map(|f| tokens.path(&f.to_string_lossy()))
            .collect();
        (files, true)
    }

    /// `UserKnownHostsFile` and `GlobalKnownHostsFile`, with ssh's defaults; `none` for none.
    fn known_hosts_files(&self, fields: &Fields, tokens: &Tokens) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let user_known_hosts: Vec<PathBuf> = match fields.get("userknownhostsfile") {
            Some(v) if v.iter().any(|f| f.eq_ignore_ascii_case("none")) => Vec::new(),
            Some(v) => v.iter().map(|f| tokens.path(f)).collect(),
            None => vec![
                self.home.join(".ssh/known_hosts"),
                self.home.join(".ssh/known_hosts2"),
            ],
        };
        let global_known_hosts: Vec<PathBuf> = match fields.get("globalknownhostsfile") {
            Some(v) if v.iter().any(|f| f.eq_ignore_ascii_case("none")) => Vec::new(),
            Some(v) => v.iter().map(|f| tokens.path(f)).collect(),
            None => SYSTEM_KNOWN_HOSTS.iter().map(PathBuf::from).collect(),
        };
        (user_known_hosts, global_known_hosts)
    }

    /// A `Host` alias whose `HostName` is `addr` (a plain pattern, no wildcard), for nodes found
    /// on the router: the first such alias in file order.
    pub(crate) fn alias_for_address(&self, addr: IpAddr) -> Option<String> {
        for f in &self.files {
            for host in f.get_hosts() {
                let Some(name) = &host.params.host_name else {
                    continue;
                };
                if name.parse::<IpAddr>().ok() != Some(addr) {
                    continue;
                }
                if let Some(clause) = host.pattern.iter().find(|c| {
                    !c.negated && !c.pattern.contains(['*', '?']) && is_safe_host(&c.pattern)
                }) {
                    return Some(clause.pattern.clone());
                }
            }
        }
        None
    }
}

/// `ProxyJump` hops: `[user@]host[:port]` or `ssh://[user@]host[:port]`; `none` is no jump.
pub(crate) fn parse_jump_list(hops: &[String]) -> Result<Vec<HostSpec>, HostsError> {
    let mut out = Vec::new();
    for hop in hops.iter().flat_map(|h| h.split(',')) {
        let hop = hop.trim();
        if hop.is_empty() {
            continue;
        }
        if hop.eq_ignore_ascii_case("none") {
            return Ok(Vec::new());
        }
        out.push(HostSpec::parse(hop.strip_prefix("ssh://").unwrap_or(hop))?);
    }
    Ok(out)
}

fn first(v: &[String]) -> &str {
    v.first().map_or("", String::as_str)
}

/// The options ssh2-config leaves to lbtop, by lower-case name.
type Fields = HashMap<String, Vec<String>>;

/// A yes/no option, `no` when absent.
fn flag(fields: &Fields, name: &str) -> Result<bool, String> {
    match fields.get(name) {
        Some(v) => yes_no(v),
        None => Ok(false),
    }
}

/// `IdentityAgent`: `none`, `SSH_AUTH_SOCK` (the default), or a socket path.
fn identity_agent(fields: &Fields, tokens: &Tokens) -> IdentityAgent {
    match fields.get("identityagent").and_then(|v| v.first()) {
        None => IdentityAgent::Env,
        Some(v) if v.eq_ignore_ascii_case("none") => IdentityAgent::Disabled,
        Some(v) if v == "SSH_AUTH_SOCK" || v == "$SSH_AUTH_SOCK" => IdentityAgent::Env,
        Some(v) => IdentityAgent::Socket(tokens.path(v)),
    }
}

/// `HostKeyAlias`, which must be a safe host name.
fn host_key_alias(fields: &Fields) -> Result<Option<String>, String> {
    let host_key_alias = fields
        .get("hostkeyalias")
        .and_then(|v| v.first())
        .map(|a| a.to_string());
    if let Some(a) = &host_key_alias
        && !is_safe_host(a)
    {
        return Err(format!("HostKeyAlias {a:?} is not a safe host name"));
    }
    Ok(host_key_alias)
}

fn yes_no(v: &[String]) -> Result<bool, String> {
    match first(v).to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        other => Err(format!("expected yes or no, got {other:?}")),
    }
}

fn strict_value(v: &[String]) -> Result<StrictHostKeyChecking, String> {
    match first(v).to_ascii_lowercase().as_str() {
        "yes" | "true" | "ask" => Ok(StrictHostKeyChecking::Yes),
        "accept-new" => Ok(StrictHostKeyChecking::AcceptNew),
        "no" | "off" | "false" => Ok(StrictHostKeyChecking::No),
        other => Err(format!(
            "StrictHostKeyChecking: expected yes, accept-new, no or ask, got {other:?}"
        )),
    }
}

fn count_value(v: &[String]) -> Result<usize, String> {
    first(v)
        .parse::<usize>()
        .map_err(|_| format!("expected a number, got {:?}", first(v)))
}

/// `%h` in `HostName` is the name as given.
fn expand_percent_h(value: &str, alias: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(alias),
            Some('%') => out.push('%'),
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    out
}

/// The `%` tokens and `~` of file names (ssh_config(5) "TOKENS").
struct Tokens<'a> {
    home: &'a Path,
    local_user: &'a str,
    hostname: &'a str,
    alias: &'a str,
    port: u16,
    user: &'a str,
}

impl Tokens<'_> {
    fn path(&self, value: &str) -> PathBuf {
        let mut out = String::new();
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('d') => out.push_str(&self.home.to_string_lossy()),
                Some('u') => out.push_str(self.local_user),
                Some('h') => out.push_str(self.hostname),
                Some('n') => out.push_str(self.alias),
                Some('p') => out.push_str(&self.port.to_string()),
                Some('r') => out.push_str(self.user),
                Some(o) => {
                    out.push('%');
                    out.push(o);
                }
                None => out.push('%'),
            }
        }
        if out == "~" {
            return self.home.to_path_buf();
        }
        match out.strip_prefix("~/") {
            Some(rest) => self.home.join(rest),
            None => PathBuf::from(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(config: &str, options: &[&str]) -> (tempfile::TempDir, SshSettings) {
        let home = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(home.path().join(".ssh")).expect("mkdir");
        std::fs::write(home.path().join(".ssh/config"), config).expect("write");
        let args = SshArgs {
            config_file: None,
            options: options.iter().map(|s| s.to_string()).collect(),
        };
        let s = SshSettings::load_from(&args, home.path(), None, "alice".into()).expect("load");
        (home, s)
    }

    fn spec(s: &str) -> HostSpec {
        HostSpec::parse(s).expect("spec")
    }

    #[test]
    fn host_blocks_resolve_with_first_value_winning() {
        let (home, s) = settings(
            "Host web*\n  HostName %h.example.com\n  User deploy\n  Port 2222\n  IdentityFile ~/.ssh/web_key\n\
             Host web1\n  User ignored\n  ProxyJump bastion,ops@gw:2200\n\
             Host *\n  User fallback\n  IdentityFile %d/.ssh/all_%r\n",
            &[],
        );
        let h = s.resolve(&spec("web1"), None).expect("resolve");
        assert_eq!(h.hostname, "web1.example.com");
        assert_eq!(h.user, "deploy");
        assert_eq!(h.port, 2222);
        assert_eq!(
            h.identity_files,
            vec![
                home.path().join(".ssh/web_key"),
                home.path().join(".ssh/all_deploy")
            ]
        );
        assert_eq!(h.proxy_jump, vec![spec("bastion"), spec("ops@gw:2200")]);
        assert_eq!(h.strict_host_key_checking, StrictHostKeyChecking::Yes);
        assert_eq!(
            h.user_known_hosts,
            vec![
                home.path().join(".ssh/known_hosts"),
                home.path().join(".ssh/known_hosts2")
            ]
        );
        let other = s.resolve(&spec("root@db1:22"), None).expect("resolve");
        assert_eq!((other.user.as_str(), other.port), ("root", 22));
        assert_eq!(other.hostname, "db1");
        assert!(other.proxy_jump.is_empty());
    }

    #[test]
    fn unparsed_options_are_read_here_and_dash_o_wins() {
        let (home, s) = settings(
            "Host n*\n  UserKnownHostsFile ~/kh/%h_%p /tmp/other\n  StrictHostKeyChecking yes\n  HashKnownHosts yes\n  IdentitiesOnly yes\n  IdentityAgent none\n  ServerAliveCountMax 5\n  ServerAliveInterval 7\n  ConnectTimeout 3\n",
            &["StrictHostKeyChecking=accept-new", "Port 2201"],
        );
        let h = s.resolve(&spec("n1"), None).expect("resolve");
        assert_eq!(h.strict_host_key_checking, StrictHostKeyChecking::AcceptNew);
        assert_eq!(h.port, 2201);
        assert_eq!(
            h.user_known_hosts,
            vec![home.path().join("kh/n1_2201"), PathBuf::from("/tmp/other")]
        );
        assert!(h.hash_known_hosts && h.identities_only);
        assert_eq!(h.identity_agent, IdentityAgent::Disabled);
        assert_eq!(h.server_alive_count_max, Some(5));
        assert_eq!(h.server_alive_interval, Some(Duration::from_secs(7)));
        assert_eq!(h.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(h.user, "alice");
        assert_eq!(
            h.identity_files,
            vec![
                home.path().join(".ssh/id_ed25519"),
                home.path().join(".ssh/id_ecdsa"),
                home.path().join(".ssh/id_rsa")
            ]
        );
    }

    #[test]
    fn an_included_fifo_is_refused_naming_it_not_waited_on() {
        let home = tempfile::tempdir().expect("tempdir");
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(ssh.join("conf.d")).expect("mkdir");
        std::fs::write(ssh.join("config"), "Include conf.d/*.conf\n").expect("write");
        std::fs::write(ssh.join("conf.d/a.conf"), "Include ~/.ssh/deeper\n").expect("write");
        let fifo = ssh.join("deeper");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        let dir = home.path().to_path_buf();
        std::thread::spawn(move || {
            let r = SshSettings::load_from(&SshArgs::default(), &dir, None, "me".into());
            let _ = tx.send(r.err().map(|e| e.to_string()));
        });
        let e = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("answered within five seconds")
            .expect("refused");
        assert_eq!(
            e,
            format!("ssh config {}: not a regular file (a FIFO)", fifo.display())
        );
    }

    #[test]
    fn include_files_are_followed() {
        let home = tempfile::tempdir().expect("tempdir");
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(ssh.join("conf.d")).expect("mkdir");
        std::fs::write(
            ssh.join("config"),
            "Include conf.d/*.conf\nHost *\n  User outer\n",
        )
        .expect("write");
        std::fs::write(
            ssh.join("conf.d/lab.conf"),
            "Host rs1\n  HostName 10.77.0.11\n  User labuser\n",
        )
        .expect("write");
        let s = SshSettings::load_from(&SshArgs::default(), home.path(), None, "me".into())
            .expect("load");
        let h = s.resolve(&spec("rs1"), None).expect("resolve");
        assert_eq!(
            (h.hostname.as_str(), h.user.as_str()),
            ("10.77.0.11", "labuser")
        );
        assert_eq!(
            s.alias_for_address("10.77.0.11".parse().expect("ip")),
            Some("rs1".into())
        );
        assert_eq!(s.alias_for_address("10.77.0.12".parse().expect("ip")), None);
    }

    #[test]
    fn bad_values_and_options_are_refused_with_their_name() {
        let home = tempfile::tempdir().expect("tempdir");
        let load = |opts: &[&str]| {
            SshSettings::load_from(
                &SshArgs {
                    config_file: None,
                    options: opts.iter().map(|s| s.to_string()).collect(),
                },
                home.path(),
                None,
                "me".into(),
            )
        };
        for (opt, needle) in [
            ("StrictHostKeyChecking=maybe", "maybe"),
            ("NoSuchOption=1", "NoSuchOption"),
            ("Port=http", "Port"),
            ("ProxyCommand=nc %h %p", "ProxyCommand"),
            ("Port", "Option=Value"),
        ] {
            let e = load(&[opt]).expect_err(opt).to_string();
            assert!(e.contains(needle), "{opt}: {e}");
        }
        let (_h, s) = settings("Host evil\n  HostName a;reboot\n", &[]);
        let e = s.resolve(&spec("evil"), None).expect_err("unsafe");
        assert!(e.to_string().contains("not a safe host name"), "{e}");
        let (_h, s) = settings("Host j\n  ProxyJump none\n", &[]);
        assert!(
            s.resolve(&spec("j"), None)
                .expect("resolve")
                .proxy_jump
                .is_empty()
        );
    }

    #[test]
    fn options_in_match_blocks_apply_to_no_host() {
        let (_h, s) = settings(
            "Host web1\n  User deploy\nMatch host web1 exec \"true\"\n  User wrong\n  Port 2222\n\
             Host *\n  Port 22\n",
            &[],
        );
        let h = s.resolve(&spec("web1"), None).expect("resolve");
        assert_eq!((h.user.as_str(), h.port), ("deploy", 22));
    }

    #[test]
    fn the_command_line_jump_replaces_proxy_jump() {
        let (_h, s) = settings("Host n1\n  ProxyJump a\n", &[]);
        let jump = [spec("root@router")];
        let h = s.resolve(&spec("n1"), Some(&jump)).expect("resolve");
        assert_eq!(h.proxy_jump, jump.to_vec());
    }
}
