//! Operator actions on the router: drain, reweight, restore. The keys and the command line share
//! one path: plan against the table, re-check just before sending, change only the weight, audit.

use std::future::Future;

pub mod agent;
pub mod audit;
pub mod ipvsadm;
pub mod plan;
pub mod run;
pub mod ssh;

use crate::model::sample::{RealServerSample, VirtualServiceSample};
use crate::source::parse::{self, ParseError};
use audit::{AuditLog, AuditRecord};
use plan::{PlanError, WeightChange, find, recheck};

/// Why an action failed. Each message says what happened and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Backend(String),
    #[error("reading the router's table: {0}")]
    Parse(#[from] ParseError),
}

/// A router whose real servers' weights can be read and changed.
pub trait RouterControl {
    /// Names the router in the audit log: `local`, or the SSH host.
    fn router_name(&self) -> String;
    /// The router's table as it is now, with forwarding methods and thresholds.
    fn table(&mut self) -> impl Future<Output = Result<Vec<VirtualServiceSample>, ControlError>>;
    /// Sets `real`'s weight in `svc`, keeping its forwarding method, thresholds and tunnel
    /// settings.
    fn set_weight(
        &mut self,
        svc: &VirtualServiceSample,
        real: &RealServerSample,
        weight: i32,
    ) -> impl Future<Output = Result<(), ControlError>>;
    /// Re-reads the table, aborts if the weight moved or (unless forced) the drain would cut
    /// the service off, and changes the weight. A router reached over SSH does it all in one
    /// round trip.
    fn change_weight(
        &mut self,
        change: &WeightChange,
        force: bool,
    ) -> impl Future<Output = Result<(), ControlError>> {
        async move {
            let table = self.table().await?;
            recheck(&table, change, force)?;
            let (svc, real) = find(&table, &change.service, &change.real)?;
            self.set_weight(svc, real, change.to).await
        }
    }
}

/// Applies a confirmed change: re-reads the table, aborts if the weight moved or (unless forced)
/// the drain would cut the service off, changes the weight, and appends the outcome to the audit
/// log — refusals and failures included.
pub async fn apply<C: RouterControl>(
    ctrl: &mut C,
    change: &WeightChange,
    force: bool,
    audit: Option<&AuditLog>,
) -> Result<(), ControlError> {
    apply_warned(ctrl, change, force, &[], audit).await
}

/// [`apply`] after a confirmation that showed `warnings`: the audit line records them.
pub async fn apply_warned<C: RouterControl>(
    ctrl: &mut C,
    change: &WeightChange,
    force: bool,
    warnings: &[String],
    audit: Option<&AuditLog>,
) -> Result<(), ControlError> {
    let result = ctrl.change_weight(change, force).await;
    if let Some(log) = audit {
        let mut record = AuditRecord::new(&ctrl.router_name(), change, result.as_ref().map(|_| ()));
        record.warnings = warnings.to_vec();
        if let Err(e) = log.append(&record) {
            tracing::error!("{e}");
            if result.is_ok() {
                return Err(ControlError::Backend(format!(
                    "the weight was changed, but {e}"
                )));
            }
        }
    }
    result
}

/// Any of the ways lbtop can change a router, chosen at start-up.
#[derive(Debug, Clone)]
pub enum AnyControl {
    Netlink(NetlinkControl),
    LocalIpvsadm(LocalIpvsadm),
    Ssh(Box<ssh::SshControl>),
}

impl AnyControl {
    /// How changes are made: `netlink` or `ipvsadm`.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Netlink(_) => "netlink",
            Self::LocalIpvsadm(_) => "ipvsadm",
            Self::Ssh(c) => c.method(),
        }
    }

    /// This machine's router: netlink SET_DEST when IPVS answers over netlink (root or
    /// CAP_NET_ADMIN), else the `ipvsadm` program.
    pub fn local() -> Self {
        match crate::source::netlink::IpvsNetlink::connect().and_then(|mut n| n.services()) {
            Ok(_) => Self::Netlink(NetlinkControl),
            Err(e) => {
                tracing::info!("weight changes use ipvsadm: {e}");
                Self::LocalIpvsadm(LocalIpvsadm::default())
            }
        }
    }
}

impl AnyControl {
    /// The control for `router`: netlink or ipvsadm locally, ipvsadm over SSH for a remote host
    /// (with `-F`, `-o` and `--router-sudo` as the watch uses them).
    pub fn for_router(
        router: &crate::source::spec::RouterSpec,
        ssh: &crate::source::ssh::config::SshArgs,
        sudo: crate::source::remote::SudoMode,
        interval: std::time::Duration,
    ) -> Result<Option<Self>, String> {
        use crate::source::spec::RouterSpec;
        use crate::source::ssh::config::SshSettings;
        use crate::source::ssh::connection::SshContext;
        use crate::source::ssh::{SshTuning, hosts::HostSpec};
        match router {
            RouterSpec::Local => Ok(Some(Self::local())),
            RouterSpec::None => Ok(None),
            RouterSpec::Prometheus(_) => Err(PlanError::Prometheus.to_string()),
            // The live view sends a change to the pair's master; here, name the director.
            RouterSpec::Pair(_) => Err(
                "--router a,b: a change goes to one director; name the master with --router"
                    .to_string(),
            ),
            RouterSpec::Remote(text) => {
                let settings = SshSettings::load(ssh).map_err(|e| e.to_string())?;
                let spec = HostSpec::parse(text).map_err(|e| format!("--router: {e}"))?;
                let host = settings
                    .resolve(&spec, None)
                    .map_err(|e| format!("--router: {e}"))?;
                let ctx = SshContext::new(settings, SshTuning::for_interval(interval));
                Ok(Some(Self::Ssh(Box::new(ssh::SshControl::new(
                    text.clone(),
                    ctx,
                    host,
                    sudo,
                )))))
            }
        }
    }
}

impl AnyControl {
    /// The same control, acting through `lbtop agent` on a router over SSH when `agent` allows.
    pub fn with_agent(self, agent: crate::source::agent::AgentChoice) -> Self {
        match self {
            Self::Ssh(c) => Self::Ssh(Box::new(c.with_agent(agent))),
            other => other,
        }
    }

    /// Starts what actions will go through, so that the first one does not wait for it: the
    /// router's agent (sudo paid once, now). Nothing for other routers.
    pub async fn warm_up(&self) {
        if let Self::Ssh(c) = self
            && let Err(e) = c.agent_ready().await
        {
            tracing::info!("the router's agent for actions: {e}");
        }
    }
}

impl RouterControl for AnyControl {
    fn router_name(&self) -> String {
        match self {
            Self::Netlink(c) => c.router_name(),
            Self::LocalIpvsadm(c) => c.router_name(),
            Self::Ssh(c) => c.router_name(),
        }
    }

    async fn table(&mut self) -> Result<Vec<VirtualServiceSample>, ControlError> {
        match self {
            Self::Netlink(c) => c.table().await,
            Self::LocalIpvsadm(c) => c.table().await,
            Self::Ssh(c) => c.table().await,
        }
    }

    async fn set_weight(
        &mut self,
        svc: &VirtualServiceSample,
        real: &RealServerSample,
        weight: i32,
    ) -> Result<(), ControlError> {
        match self {
            Self::Netlink(c) => c.set_weight(svc, real, weight).await,
            Self::LocalIpvsadm(c) => c.set_weight(svc, real, weight).await,
            Self::Ssh(c) => c.set_weight(svc, real, weight).await,
        }
    }

    async fn change_weight(
        &mut self,
        change: &WeightChange,
        force: bool,
    ) -> Result<(), ControlError> {
        match self {
            Self::Netlink(c) => c.change_weight(change, force).await,
            Self::LocalIpvsadm(c) => c.change_weight(change, force).await,
            Self::Ssh(c) => c.change_weight(change, force).await,
        }
    }
}

/// This machine's router over IPVS generic netlink: the table from GET_SERVICE/GET_DEST, the
/// change with SET_DEST carrying every other attribute back. A socket per action: actions are rare.
#[derive(Debug, Clone, Default)]
pub struct NetlinkControl;

fn netlink_error(e: crate::source::netlink::NetlinkError) -> ControlError {
    ControlError::Backend(e.to_string())
}

impl RouterControl for NetlinkControl {
    fn router_name(&self) -> String {
        "local".into()
    }

    async fn table(&mut self) -> Result<Vec<VirtualServiceSample>, ControlError> {
        tokio::task::spawn_blocking(|| {
            crate::source::netlink::IpvsNetlink::connect()
                .and_then(|mut n| n.services())
                .map_err(netlink_error)
        })
        .await
        .map_err(|e| ControlError::Backend(format!("netlink task: {e}")))?
    }

    async fn set_weight(
        &mut self,
        svc: &VirtualServiceSample,
        real: &RealServerSample,
        weight: i32,
    ) -> Result<(), ControlError> {
        let (svc, real) = (svc.clone(), real.clone());
        tokio::task::spawn_blocking(move || {
            crate::source::netlink::IpvsNetlink::connect()
                .and_then(|mut n| n.set_weight(&svc, &real, weight))
                .map_err(netlink_error)
        })
        .await
        .map_err(|e| ControlError::Backend(format!("netlink task: {e}")))?
    }
}

/// Runs `ipvsadm` on this machine (for a local router without netlink access, and in tests).
#[derive(Debug, Clone)]
pub struct LocalIpvsadm {
    pub program: String,
}

impl Default for LocalIpvsadm {
    fn default() -> Self {
        Self {
            program: "ipvsadm".into(),
        }
    }
}

fn run(program: &str, args: &[String]) -> Result<String, ControlError> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|e| ControlError::Backend(format!("cannot run {program}: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(ControlError::Backend(format!(
            "{program} {} failed ({}): {err}",
            args.join(" "),
            out.status
        )));
    }
    String::from_utf8(out.stdout)
        .map_err(|_| ControlError::Backend(format!("{program} printed text that is not UTF-8")))
}

/// Reads the table through ipvsadm's `--tun-info` (or, where ipvsadm lacks it, plain),
/// thresholds and persistent-conn views.
pub(crate) fn read_ipvsadm_table(
    mut run_view: impl FnMut(&[String]) -> Result<String, ControlError>,
) -> Result<Vec<VirtualServiceSample>, ControlError> {
    let args = |view: &[&str]| view.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    let mut listings = Vec::new();
    for (i, view) in ipvsadm::READ_VIEWS.iter().enumerate() {
        let text = match i {
            0 => run_view(&args(ipvsadm::TUN_INFO_VIEW)).or_else(|_| run_view(&args(view)))?,
            _ => run_view(&args(view))?,
        };
        listings.push(parse::ipvsadm_list(&text)?);
    }
    let (plain, others) = listings.split_at(1);
    Ok(parse::merge_ipvsadm(&plain[0], others)?)
}

impl RouterControl for LocalIpvsadm {
    fn router_name(&self) -> String {
        "local".into()
    }

    async fn table(&mut self) -> Result<Vec<VirtualServiceSample>, ControlError> {
        let program = self.program.clone();
        tokio::task::spawn_blocking(move || read_ipvsadm_table(|args| run(&program, args)))
            .await
            .map_err(|e| ControlError::Backend(format!("ipvsadm task: {e}")))?
    }

    async fn set_weight(
        &mut self,
        svc: &VirtualServiceSample,
        real: &RealServerSample,
        weight: i32,
    ) -> Result<(), ControlError> {
        let program = self.program.clone();
        let args = ipvsadm::edit_args(svc, real, weight)?;
        tokio::task::spawn_blocking(move || run(&program, &args).map(|_| ()))
            .await
            .map_err(|e| ControlError::Backend(format!("ipvsadm task: {e}")))?
    }
}
