//! What to watch, as the command line and the config file say it, in the sources' own types: nothing under
//! `source` or `control` names clap or the command line; `cli` parses into these.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::source::agent::AgentChoice;
use crate::source::prometheus::Selector;
use crate::source::remote::SudoMode;
use crate::source::ssh::SshArgs;

/// Which router to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterSpec {
    Local,
    None,
    /// `[user@]host[:port]`, reached over SSH.
    Remote(String),
    /// `prometheus:INSTANCE`: node_exporter's ipvs metrics of the instance labelled so, from
    /// Prometheus (read-only).
    Prometheus(String),
    /// `a,b`: the two directors of an HA pair (keepalived VRRP with the IPVS sync daemon), each
    /// `local` or `[user@]host[:port]`.
    Pair(Box<[RouterSpec; 2]>),
}

impl RouterSpec {
    /// The name a director's events carry: `local`, or the host as written.
    pub fn host_name(&self) -> Option<&str> {
        match self {
            RouterSpec::Local => Some("local"),
            RouterSpec::Remote(h) => Some(h),
            RouterSpec::None | RouterSpec::Prometheus(_) | RouterSpec::Pair(_) => None,
        }
    }

    /// The directors watched: one, or both of a pair.
    pub fn directors(&self) -> Vec<&RouterSpec> {
        match self {
            RouterSpec::Pair(p) => p.iter().collect(),
            RouterSpec::None => Vec::new(),
            one => vec![one],
        }
    }

    /// The pair's two names, when this is a pair.
    pub fn pair_names(&self) -> Option<[String; 2]> {
        match self {
            RouterSpec::Pair(p) => Some([0, 1].map(|i| p[i].host_name().unwrap_or("").to_string())),
            _ => None,
        }
    }

    fn pair(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let [a, b] = parts.as_slice() else {
            return Err(format!(
                "--router {s:?}: a pair is two directors, `a,b` (each local or [user@]host[:port])"
            ));
        };
        let side = |x: &str| match x.parse::<RouterSpec>()? {
            r @ (RouterSpec::Local | RouterSpec::Remote(_)) => Ok(r),
            _ => Err(format!(
                "--router {s:?}: each director of a pair is local or [user@]host[:port], not {x:?}"
            )),
        };
        let (a, b) = (side(a)?, side(b)?);
        if a == b {
            return Err(format!("--router {s:?}: the two directors are the same"));
        }
        Ok(RouterSpec::Pair(Box::new([a, b])))
    }
}

impl FromStr for RouterSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            p if p.contains(',') => Self::pair(p),
            "local" => Ok(Self::Local),
            "none" => Ok(Self::None),
            "" => Err("empty router; use local, none or [user@]host[:port]".into()),
            "prometheus:" => Err(
                "--router prometheus: names no instance; use prometheus:INSTANCE (e.g. lb1:9100)"
                    .into(),
            ),
            // `prometheus:22` stays an SSH host named prometheus on port 22.
            p if p.starts_with("prometheus:")
                && !p["prometheus:".len()..].chars().all(|c| c.is_ascii_digit()) =>
            {
                let instance = p["prometheus:".len()..].trim();
                if instance.chars().any(char::is_control) || instance.contains('"') {
                    return Err(format!(
                        "--router {p:?}: the instance label holds a quote or a control character"
                    ));
                }
                Ok(Self::Prometheus(instance.to_string()))
            }
            other => Ok(Self::Remote(other.to_string())),
        }
    }
}

/// Which nodes to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodesSpec {
    Local,
    None,
    /// A comma list of `[user@]host[:port]`, ranges (`web[01-24]`) and `@FILE`s, reached over SSH.
    List(Vec<String>),
    /// The router's real servers, reached over SSH.
    Auto,
    /// The instances Prometheus scrapes with node_exporter, those the selector picks.
    Prometheus(Selector),
}

impl FromStr for NodesSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "local" => Ok(Self::Local),
            "none" => Ok(Self::None),
            "auto" => Ok(Self::Auto),
            "prometheus" => Ok(Self::Prometheus(Selector::default())),
            p if p.starts_with("prometheus:") => Selector::parse(&p["prometheus:".len()..])
                .map(Self::Prometheus)
                .map_err(|e| format!("prometheus: {e}")),
            "" => Err("empty node list; use local, none, auto or a comma list of hosts".into()),
            list => Ok(Self::List(
                list.split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(String::from)
                    .collect(),
            )),
        }
    }
}

impl NodesSpec {
    /// Whether this machine is one of the nodes (`local`, also inside a list: `local,web1`), and
    /// the nodes to reach over SSH.
    pub(crate) fn split_local(&self) -> (bool, NodesSpec) {
        match self {
            NodesSpec::Local => (true, NodesSpec::None),
            NodesSpec::List(hosts) if hosts.iter().any(|h| h == "local") => {
                let rest: Vec<String> = hosts.iter().filter(|h| *h != "local").cloned().collect();
                let rest = if rest.is_empty() {
                    NodesSpec::None
                } else {
                    NodesSpec::List(rest)
                };
                (true, rest)
            }
            other => (false, other.clone()),
        }
    }
}

/// How much of one router core the costlier parts of a router poll over SSH may take, as a
/// fraction (0.1 is 10 %). Every ipvsadm view shares it (the per-service counters and the
/// details); the connection table has its own, smaller share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouterBudget {
    pub ipvsadm: f64,
    pub connections: f64,
}

impl Default for RouterBudget {
    fn default() -> Self {
        RouterBudget {
            ipvsadm: 0.03,
            connections: 0.05,
        }
    }
}

/// Everything the SSH sources need to know from the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    pub router: RouterSpec,
    pub nodes: NodesSpec,
    /// `-F` and `-o`, as ssh takes them.
    pub ssh: SshArgs,
    /// `--jump`: reach the nodes through this host (a comma list for a chain).
    pub jump: Option<String>,
    pub router_sudo: SudoMode,
    pub router_budget: RouterBudget,
    /// Whether a router over SSH runs `lbtop agent` (`--router-agent`).
    pub router_agent: AgentChoice,
    /// Where Prometheus is, for `--nodes prometheus`.
    pub prometheus: Option<PrometheusSpec>,
    /// How long a node its source no longer lists (an instance whose target left Prometheus, a
    /// real server gone from the router's table under `--nodes auto`) is kept before it is
    /// forgotten ([`HostStatus::Gone`](crate::model::sample::HostStatus::Gone)).
    pub forget_after: Duration,
}

/// [`SourceSpec::forget_after`] unless the config says (`forget-after`): long enough for the
/// operator to see a node go, short enough that a fleet that scales in and out does not pile up
/// nodes that are no more.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);

/// A Prometheus server: its URL, the CA that signs its certificate (besides the system's), and
/// how to sign in.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusSpec {
    /// `http://host:9090`, or with a path prefix (`https://host/prometheus`).
    pub url: String,
    pub ca: Option<PathBuf>,
    pub auth: PrometheusAuth,
    /// How long one poll (every query of it) may take; by default twice the interval, 2 to 10 s.
    pub timeout: Option<Duration>,
    /// The most bytes of answers held at once, by every query in flight (64 MiB by default).
    pub answer_memory: Option<u64>,
}

/// How lbtop signs in to Prometheus: from the config file or the environment, never the command
/// line (where every user of the machine could read it).
#[derive(Clone, PartialEq, Eq, Default)]
pub enum PrometheusAuth {
    #[default]
    None,
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
}

impl fmt::Debug for PrometheusAuth {
    /// Never the secret: logs and error reports print this.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrometheusAuth::None => f.write_str("None"),
            PrometheusAuth::Basic { user, .. } => write!(f, "Basic({user:?}, password hidden)"),
            PrometheusAuth::Bearer(_) => f.write_str("Bearer(token hidden)"),
        }
    }
}

impl Default for SourceSpec {
    fn default() -> Self {
        SourceSpec {
            router: RouterSpec::Local,
            nodes: NodesSpec::Local,
            ssh: SshArgs::default(),
            jump: None,
            router_sudo: SudoMode::Auto,
            router_budget: RouterBudget::default(),
            router_agent: AgentChoice::Auto,
            prometheus: None,
            forget_after: FORGET_AFTER,
        }
    }
}

/// A share of one core from a percentage, `1` to `100` (`20`, `20%`, `2.5`).
pub(crate) fn parse_core_share(s: &str) -> Result<f64, String> {
    let n: f64 = s
        .trim()
        .trim_end_matches('%')
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage of one core (e.g. 20)"))?;
    if !(0.1..=100.0).contains(&n) {
        return Err(format!("{s:?}: use 0.1 to 100 (% of one core)"));
    }
    Ok(n / 100.0)
}

/// Which SSH host to use for nodes whose address matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeMapping {
    /// A CIDR block (`10.0.0.0/24`) or an exact address, as written in the file.
    pub match_: String,
    /// An SSH host (alias from `~/.ssh/config`, or `user@host`).
    pub host: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_in_a_node_list_is_this_machine() {
        let spec: NodesSpec = "local,web1, web2".parse().expect("list");
        assert_eq!(
            spec.split_local(),
            (true, NodesSpec::List(vec!["web1".into(), "web2".into()]))
        );
        let only: NodesSpec = "local,".parse().expect("list");
        assert_eq!(only.split_local(), (true, NodesSpec::None));
        assert_eq!(NodesSpec::Local.split_local(), (true, NodesSpec::None));
        let remote: NodesSpec = "web1,localhost".parse().expect("list");
        assert_eq!(remote.split_local(), (false, remote.clone()));
        assert_eq!(NodesSpec::Auto.split_local(), (false, NodesSpec::Auto));
    }

    #[test]
    fn a_router_from_prometheus_is_named_by_its_instance_label() {
        assert_eq!(
            "prometheus:10.0.0.1:9100".parse(),
            Ok(RouterSpec::Prometheus("10.0.0.1:9100".into()))
        );
        assert_eq!(
            "prometheus:lb1".parse(),
            Ok(RouterSpec::Prometheus("lb1".into()))
        );
        // An SSH host called prometheus, on port 22.
        assert_eq!(
            "prometheus:22".parse(),
            Ok(RouterSpec::Remote("prometheus:22".into()))
        );
        assert!("prometheus:lb\"1".parse::<RouterSpec>().is_err());
        // No instance: in PromQL `instance=""` would match series without the label.
        for empty in ["prometheus:", "prometheus: ", " prometheus:"] {
            let e = empty.parse::<RouterSpec>().expect_err("refused");
            assert!(e.contains("names no instance"), "{e}");
        }
    }

    #[test]
    fn a_pair_is_two_different_directors_each_local_or_over_ssh() {
        assert_eq!(
            "lb1, root@lb2:2222".parse(),
            Ok(RouterSpec::Pair(Box::new([
                RouterSpec::Remote("lb1".into()),
                RouterSpec::Remote("root@lb2:2222".into())
            ])))
        );
        let p: RouterSpec = "local,lb2".parse().expect("pair");
        assert_eq!(p.pair_names(), Some(["local".into(), "lb2".into()]));
        assert_eq!(p.directors().len(), 2);
        for bad in [
            "lb1,",
            ",lb2",
            "lb1,lb2,lb3",
            "lb1,lb1",
            "local,local",
            "lb1,none",
            "lb1,prometheus:lb2",
        ] {
            assert!(bad.parse::<RouterSpec>().is_err(), "{bad}");
        }
    }
}
