//! The command line (clap derive). Values are parsed into types here, at the edge.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::control::plan::{MAX_WEIGHT, RealKey, parse_service};
use crate::model::sample::ServiceKey;

pub use crate::source::spec::{NodesSpec, RouterSpec};
use crate::source::spec::{RouterBudget, SourceSpec, parse_core_share};

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 1s, 2m)"))
}

/// The sources to watch, shared by live mode and later by recording.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// The IPVS router: `local`, `none`, `[user@]host[:port]`, `prometheus:INSTANCE`
    /// (node_exporter's ipvs metrics from Prometheus, read-only), or `A,B`: the two directors of
    /// an HA pair, each local or over SSH; where not given, the config file's `router`
    #[arg(long, default_value = "local", env = "LBTOP_ROUTER")]
    pub router: RouterSpec,
    /// The nodes: `local`, `none`, `auto` (the router's real servers), or a comma list of
    /// `[user@]host[:port]`, ranges like `web[01-24].example.com`, and `@FILE`
    #[arg(long, default_value = "local", env = "LBTOP_NODES")]
    pub nodes: NodesSpec,
    /// Time between polls [default: 1s, or the config file's `interval`]
    #[arg(long, value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// Read the local /proc files from DIR instead of /proc (a captured snapshot); never netlink
    #[arg(long, value_name = "DIR")]
    pub proc_root: Option<PathBuf>,
    /// SSH client config file to read instead of ~/.ssh/config (as ssh -F)
    #[arg(short = 'F', value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// An OpenSSH option that wins over the config, e.g. -o StrictHostKeyChecking=accept-new
    /// (as ssh -o; repeatable)
    #[arg(short = 'o', value_name = "OPTION=VALUE")]
    pub ssh_option: Vec<String>,
    /// Reach the nodes through this jump host, `[user@]host[:port]` (a comma list for a chain);
    /// replaces their ProxyJump
    #[arg(long, value_name = "HOST")]
    pub jump: Option<String>,
    /// How a router watched over SSH runs ipvsadm: through `sudo -n` when not root (auto),
    /// always, or never
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub router_sudo: crate::source::remote::SudoMode,
    /// Over SSH, the share of one router core (in %) that ipvsadm's counters, thresholds and
    /// persistent-connection counts may take; `/proc/net/ip_vs` is read at every poll regardless
    #[arg(long, value_name = "PERCENT", default_value = "3", value_parser = parse_core_share)]
    pub router_budget: f64,
    /// Over SSH, run `lbtop agent` on the router (netlink there; sudo once per session): `auto`
    /// (when lbtop is on the router's PATH), `never`, or its absolute path on the router
    /// [default: auto, or the config file's `router-agent`]
    #[arg(long, value_name = "WHEN|PATH", env = "LBTOP_ROUTER_AGENT")]
    pub router_agent: Option<crate::source::agent::AgentChoice>,
    /// Prometheus's URL, for `--nodes prometheus` [default: the config file's [prometheus] url];
    /// credentials come from the config file or LBTOP_PROMETHEUS_USER/_PASSWORD/_TOKEN
    #[arg(long, value_name = "URL", env = "LBTOP_PROMETHEUS")]
    pub prometheus: Option<String>,
    /// A CA certificate file (PEM) that signs Prometheus's, besides the system's roots
    #[arg(long, value_name = "FILE")]
    pub prometheus_ca: Option<PathBuf>,
}

impl SourceArgs {
    /// The sources' own view of these arguments.
    pub fn spec(&self) -> SourceSpec {
        SourceSpec {
            router: self.router.clone(),
            // `local` in a list is this machine, polled locally (`runtime::sources_for`).
            nodes: self.nodes.split_local().1,
            ssh: crate::source::ssh::SshArgs {
                config_file: self.ssh_config.clone(),
                options: self.ssh_option.clone(),
            },
            jump: self.jump.clone(),
            router_sudo: self.router_sudo,
            router_budget: RouterBudget {
                ipvsadm: self.router_budget,
                ..RouterBudget::default()
            },
            router_agent: self.router_agent.clone().unwrap_or_default(),
            // The URL and CA merged with the config file's, and the credentials, come in
            // `runtime::sources_for`.
            prometheus: None,
            // The config's, set in `runtime::sources_for`.
            forget_after: crate::source::spec::FORGET_AFTER,
        }
    }
}

/// Which real server of which service an action is about.
#[derive(Debug, Clone, Args)]
pub struct ActionTarget {
    /// The router: `local`, or `[user@]host[:port]` over SSH
    #[arg(long, default_value = "local", env = "LBTOP_ROUTER")]
    pub router: RouterSpec,
    /// The virtual service: tcp:ADDR:PORT, udp:ADDR:PORT, sctp:ADDR:PORT or fwm:MARK (IPv6 as [ADDR])
    #[arg(value_parser = parse_service)]
    pub service: ServiceKey,
    /// The real server: ADDR:PORT (IPv6 as [ADDR]:PORT)
    pub real: RealKey,
    /// Audit log [default: $XDG_STATE_HOME/lbtop/audit.jsonl]
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// SSH client config file to read instead of ~/.ssh/config (as ssh -F)
    #[arg(short = 'F', value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// An OpenSSH option that wins over the config (as ssh -o; repeatable)
    #[arg(short = 'o', value_name = "OPTION=VALUE")]
    pub ssh_option: Vec<String>,
    /// Over SSH, run ipvsadm through `sudo -n` when not root (auto), always, or never
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub router_sudo: crate::source::remote::SudoMode,
    /// Over SSH, change the weight through `lbtop agent` on the router: auto, never, or its path
    #[arg(
        long,
        value_name = "WHEN|PATH",
        default_value = "auto",
        env = "LBTOP_ROUTER_AGENT"
    )]
    pub router_agent: crate::source::agent::AgentChoice,
}

impl ActionTarget {
    /// The control's own view of these arguments.
    pub fn target(&self) -> crate::control::run::ActionTarget {
        crate::control::run::ActionTarget {
            router: self.router.clone(),
            service: self.service,
            real: self.real,
            audit_log: self.audit_log.clone(),
            ssh: crate::source::ssh::SshArgs {
                config_file: self.ssh_config.clone(),
                options: self.ssh_option.clone(),
            },
            router_sudo: self.router_sudo,
            router_agent: self.router_agent.clone(),
        }
    }
}

/// What lbtop does besides the live view. The actions are for scripts and runbooks; the TUI's
/// keys take the same path.
#[derive(Debug, Clone, Subcommand)]
pub enum Commands {
    /// Record without the TUI (for cron, load tests, tests), with the same source options as live
    Record(RecordArgs),
    /// Replay a recording in the TUI (seek, pause, speed), or export it with --export
    Replay(ReplayArgs),
    /// Write a recording's report: one self-contained HTML page of charts and tables
    Report(ReportArgs),
    /// Drain a real server: weight 0, so existing connections finish and no new ones arrive
    Drain {
        #[command(flatten)]
        target: ActionTarget,
        /// Drain even the last real server with weight > 0 (cuts the service off)
        #[arg(long)]
        force: bool,
    },
    /// Set a real server's weight (0–65535)
    Weight {
        #[command(flatten)]
        target: ActionTarget,
        /// The new weight, 0–65535 (checked here, before the router is contacted)
        #[arg(value_parser = clap::value_parser!(i64).range(0..=i64::from(MAX_WEIGHT)))]
        weight: i64,
    },
    /// Restore the weight a real server had before lbtop last drained it (from the audit log)
    Restore {
        #[command(flatten)]
        target: ActionTarget,
    },
    /// Print a shell completion script, e.g. `lbtop completions bash > /etc/bash_completion.d/lbtop`
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `lbtop man > /usr/local/share/man/man1/lbtop.1`
    Man,
    /// On the router, at the far end of lbtop's SSH session (--router-agent): answers lbtop's
    /// requests on stdin over netlink; exits when stdin closes; never listens on a port
    Agent,
}

/// Writes the completion script for `shell`, generated from the command line's definition.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut command = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut command, "lbtop", out);
}

/// Writes the manual page (section 1, roff), generated from the command line's definition.
pub fn write_man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(out)
}

/// lbtop: watch an IPVS/LVS router and its nodes on one screen.
#[derive(Debug, Parser)]
#[command(name = "lbtop", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Commands>,
    #[command(flatten)]
    pub sources: SourceArgs,
    /// Theme: a built-in name (default, light, high-contrast, monochrome) or a file path
    #[arg(long, env = "LBTOP_THEME", global = true)]
    pub theme: Option<String>,
    /// Config file [default: $XDG_CONFIG_HOME/lbtop/config.toml when it exists]
    #[arg(long, value_name = "FILE", env = "LBTOP_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Record the live session into FILE, a new file (R in the TUI stops and starts recordings)
    #[arg(long, value_name = "FILE", conflicts_with = "once")]
    pub record: Option<PathBuf>,
    /// Never change anything on the router: action keys are disabled
    #[arg(long)]
    pub read_only: bool,
    /// Take one snapshot (two samples --interval apart), print it as JSON (schema in
    /// docs/json.md) and exit
    #[arg(long)]
    pub once: bool,
    /// With --once: JSON, the one format of --once (accepted for scripts that name it)
    #[arg(long, requires = "once")]
    pub json: bool,
    /// Log file [default: $XDG_STATE_HOME/lbtop/lbtop.log]; level from LBTOP_LOG (e.g. debug)
    #[arg(long, value_name = "FILE", global = true)]
    pub log_file: Option<PathBuf>,
}

impl Cli {
    /// The sources in use: `lbtop record`'s, or the live view's.
    pub fn source_args(&self) -> &SourceArgs {
        match &self.command {
            Some(Commands::Record(r)) => &r.sources,
            _ => &self.sources,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// The recording to write; must not exist yet (format: docs/recording-format.md)
    pub file: PathBuf,
    /// Stop after this long (e.g. 30s, 2h); without it, record until SIGINT or SIGTERM
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub sources: SourceArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One `--once --json` snapshot per line (JSON lines), one per recorded frame
    Json,
    /// One row per node per sample and one per real server per sample
    Csv,
}

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// The recording to replay
    pub file: PathBuf,
    /// Export instead of opening the TUI
    #[arg(long, value_enum)]
    pub export: Option<ExportFormat>,
    /// Export from this time: 90s (from the start), 14:05:30 (UTC), or RFC 3339
    #[arg(long, requires = "export", allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Export up to this time (same forms as --from)
    #[arg(long, requires = "export", allow_hyphen_values = true)]
    pub to: Option<String>,
    /// Write the export to FILE instead of standard output
    #[arg(long, short, value_name = "FILE", requires = "export")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The recording to report on
    pub file: PathBuf,
    /// Report from this time: 90s (from the start), 14:05:30 (UTC), or RFC 3339
    #[arg(long, allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Report up to this time (same forms as --from)
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<String>,
    /// The HTML file to write (replaced if it exists); standard output without it
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lists_split_on_commas_and_keep_ipv6_brackets() {
        assert_eq!(
            "web1, [2001:db8::1]:2222,root@web3".parse::<NodesSpec>(),
            Ok(NodesSpec::List(vec![
                "web1".into(),
                "[2001:db8::1]:2222".into(),
                "root@web3".into()
            ]))
        );
        assert_eq!("local".parse::<NodesSpec>(), Ok(NodesSpec::Local));
        assert_eq!("auto".parse::<NodesSpec>(), Ok(NodesSpec::Auto));
    }

    #[test]
    fn ssh_options_repeat_and_take_openssh_forms() {
        let cli = Cli::try_parse_from([
            "lbtop",
            "-F",
            "/tmp/cfg",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "Port=2222",
            "--jump",
            "root@router",
            "--router-sudo",
            "never",
            "--nodes",
            "web[01-03],@nodes.txt",
        ])
        .expect("parse");
        assert_eq!(cli.sources.ssh_config, Some(PathBuf::from("/tmp/cfg")));
        assert_eq!(
            cli.sources.ssh_option,
            ["StrictHostKeyChecking=accept-new", "Port=2222"]
        );
        assert_eq!(cli.sources.jump.as_deref(), Some("root@router"));
        assert_eq!(
            cli.sources.router_sudo,
            crate::source::remote::SudoMode::Never
        );
        assert!(Cli::try_parse_from(["lbtop", "--router-sudo", "sometimes"]).is_err());
    }

    #[test]
    fn once_prints_json_and_json_requires_once() {
        assert!(Cli::try_parse_from(["lbtop", "--once"]).is_ok_and(|c| c.once));
        assert!(Cli::try_parse_from(["lbtop", "--json"]).is_err());
        assert!(Cli::try_parse_from(["lbtop", "--once", "--json", "--interval", "0s"]).is_ok());
    }

    #[test]
    fn actions_parse_service_and_real_server() {
        let cli = Cli::try_parse_from([
            "lbtop",
            "drain",
            "--router",
            "local",
            "tcp:[2001:db8::10]:443",
            "[2001:db8::2]:443",
            "--force",
        ])
        .expect("parses");
        match cli.command {
            Some(Commands::Drain { target, force }) => {
                assert!(force);
                assert_eq!(target.service.to_string(), "tcp:[2001:db8::10]:443");
                assert_eq!(target.real.to_string(), "[2001:db8::2]:443");
            }
            other => panic!("not a drain: {other:?}"),
        }
        assert!(Cli::try_parse_from(["lbtop", "weight", "fwm:42", "10.0.0.2:80", "7"]).is_ok());
        assert!(Cli::try_parse_from(["lbtop", "weight", "fwm:42", "10.0.0.2:80", "65535"]).is_ok());
        let e = Cli::try_parse_from(["lbtop", "weight", "fwm:42", "10.0.0.2:80", "65536"])
            .expect_err("out of range");
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(e.to_string().contains("0..=65535"), "{e}");
        assert!(Cli::try_parse_from(["lbtop", "drain", "tcp:1.2.3.4", "10.0.0.2:80"]).is_err());
    }

    #[test]
    fn record_and_replay_are_subcommands_with_their_options() {
        let c = Cli::try_parse_from([
            "lbtop",
            "record",
            "x.lbrec",
            "--duration",
            "2s",
            "--nodes",
            "local",
            "--router",
            "none",
        ])
        .expect("parses");
        let Some(Commands::Record(r)) = &c.command else {
            panic!("not record: {c:?}");
        };
        assert_eq!(r.duration, Some(Duration::from_secs(2)));
        assert_eq!(c.source_args().router, RouterSpec::None);
        let c = Cli::try_parse_from([
            "lbtop", "replay", "x.lbrec", "--export", "csv", "--from", "10s", "--theme", "light",
        ])
        .expect("parses");
        assert!(matches!(
            &c.command,
            Some(Commands::Replay(ReplayArgs {
                export: Some(ExportFormat::Csv),
                ..
            }))
        ));
        assert_eq!(c.theme.as_deref(), Some("light"));
        assert!(Cli::try_parse_from(["lbtop", "replay", "x", "--from", "1s"]).is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
