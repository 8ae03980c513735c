//! The command-line actions (`lbtop drain|weight|restore`): the same plan, re-check, change and
//! audit as the TUI's keys.

use super::audit::{Attempt, AuditLog, AuditRecord};
use super::plan::{self, ActionKind, PlanError, WeightChange};
use super::{AnyControl, ControlError, RouterControl, apply};
use crate::control::plan::RealKey;
use crate::model::sample::ServiceKey;
use crate::source::remote::SudoMode;
use crate::source::spec::RouterSpec;
use crate::source::ssh::SshArgs;

/// Which real server of which service an action is about, and how to reach the router.
#[derive(Debug, Clone)]
pub struct ActionTarget {
    pub router: RouterSpec,
    pub service: ServiceKey,
    pub real: RealKey,
    /// The audit log; `None`: the default place.
    pub audit_log: Option<std::path::PathBuf>,
    pub ssh: SshArgs,
    pub router_sudo: SudoMode,
    pub router_agent: crate::source::agent::AgentChoice,
}

/// Why an action from the command line failed: bad input (exit 2) or a refused or failed action
/// (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Control(#[from] ControlError),
}

/// Runs one action; returns the line to print on success. Once the arguments are known to be
/// good, every outcome goes to the audit log: done, refused (read-only, no such service or real
/// server, nothing to restore, the weight unchanged or moved) or failed (the router unreachable).
pub async fn run_action(
    target: &ActionTarget,
    kind: ActionKind,
    weight: Option<i64>,
    force: bool,
    read_only: bool,
) -> Result<String, ActionError> {
    let audit = target
        .audit_log
        .clone()
        .or_else(AuditLog::default_path)
        .map(AuditLog::at);
    if read_only {
        let e = ControlError::from(PlanError::ReadOnly);
        let router = match &target.router {
            RouterSpec::Local => "local",
            RouterSpec::None => "none",
            RouterSpec::Pair(_) => "pair",
            RouterSpec::Remote(host) | RouterSpec::Prometheus(host) => host.as_str(),
        };
        let attempt = Attempt {
            service: target.service,
            real: target.real,
            kind,
            old_weight: None,
            new_weight: asked_weight(kind, weight),
        };
        log_unapplied(audit.as_ref(), router, attempt, &e);
        return Err(e.into());
    }
    let ctrl = AnyControl::for_router(
        &target.router,
        &target.ssh,
        target.router_sudo,
        std::time::Duration::from_secs(1),
    )
    .map_err(ActionError::Usage)?;
    let Some(mut ctrl) = ctrl.map(|c| c.with_agent(target.router_agent.clone())) else {
        return Err(ActionError::Usage(
            "--router none: an action needs a router".into(),
        ));
    };
    let line = act(&mut ctrl, target, kind, weight, force, audit.as_ref()).await?;
    Ok(format!("{line} (via {})", ctrl.method()))
}

/// The weight an action asks for before the router is read: 0 for a drain, the argument for a
/// reweight, unknown for a restore.
fn asked_weight(kind: ActionKind, weight: Option<i64>) -> Option<i32> {
    match kind {
        ActionKind::Drain => Some(0),
        ActionKind::Reweight => weight.and_then(|w| i32::try_from(w).ok()),
        ActionKind::Restore => None,
    }
}

/// Appends an action that ended before a change was planned. A log that cannot be written is
/// logged, not fatal: the action was not made either way.
fn log_unapplied(audit: Option<&AuditLog>, router: &str, attempt: Attempt, e: &ControlError) {
    if let Some(log) = audit
        && let Err(err) = log.append(&AuditRecord::of(router, attempt, Err(e)))
    {
        tracing::error!("{err}");
    }
}

async fn act<C: RouterControl>(
    ctrl: &mut C,
    target: &ActionTarget,
    kind: ActionKind,
    weight: Option<i64>,
    force: bool,
    audit: Option<&AuditLog>,
) -> Result<String, ActionError> {
    let mut attempt = Attempt {
        service: target.service,
        real: target.real,
        kind,
        old_weight: None,
        new_weight: asked_weight(kind, weight),
    };
    let change = match plan_action(ctrl, target, weight, audit, &mut attempt).await {
        Ok(change) => change,
        Err(ActionError::Control(e)) => {
            log_unapplied(audit, &ctrl.router_name(), attempt, &e);
            return Err(e.into());
        }
        Err(e) => return Err(e),
    };
    apply(ctrl, &change, force, audit).await?;
    Ok(format!("{change}: done"))
}

/// Reads the router's table and plans the change, filling in `attempt` as it learns the weights.
async fn plan_action<C: RouterControl>(
    ctrl: &mut C,
    target: &ActionTarget,
    weight: Option<i64>,
    audit: Option<&AuditLog>,
    attempt: &mut Attempt,
) -> Result<WeightChange, ActionError> {
    let table = ctrl.table().await?;
    if let Ok((_, r)) = plan::find(&table, &target.service, &target.real) {
        attempt.old_weight = Some(r.weight);
    }
    let to = match attempt.kind {
        ActionKind::Drain => 0,
        ActionKind::Reweight => {
            weight.ok_or_else(|| ActionError::Usage("no weight given".into()))?
        }
        ActionKind::Restore => {
            let log = audit.ok_or_else(|| {
                ActionError::Usage("no audit log location: pass --audit-log FILE".into())
            })?;
            let w = log
                .restore_weight(&ctrl.router_name(), &target.service, &target.real)
                .map_err(|e| ActionError::Usage(e.to_string()))?
                .ok_or_else(|| {
                    ControlError::from(PlanError::NothingToRestore {
                        service: target.service.to_string(),
                        real: target.real.to_string(),
                    })
                })?;
            attempt.new_weight = Some(w);
            i64::from(w)
        }
    };
    Ok(
        plan::plan(&table, attempt.kind, &target.service, &target.real, to)
            .map_err(ControlError::from)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::audit::AuditRecord;
    use crate::control::plan::tests::table;
    use crate::model::sample::{RealServerSample, VirtualServiceSample};

    /// A router whose table is `table`, or that cannot be reached when it is `None`.
    struct Fake {
        table: Option<Vec<VirtualServiceSample>>,
        set: Vec<i32>,
    }

    impl RouterControl for Fake {
        fn router_name(&self) -> String {
            "lb1".into()
        }

        async fn table(&mut self) -> Result<Vec<VirtualServiceSample>, ControlError> {
            self.table
                .clone()
                .ok_or_else(|| ControlError::Backend("lb1: connection refused".into()))
        }

        async fn set_weight(
            &mut self,
            _: &VirtualServiceSample,
            _: &RealServerSample,
            weight: i32,
        ) -> Result<(), ControlError> {
            self.set.push(weight);
            Ok(())
        }
    }

    fn target(real: &str, log: &std::path::Path) -> ActionTarget {
        ActionTarget {
            router: RouterSpec::Remote("lb1".into()),
            service: plan::parse_service("tcp:192.0.2.10:80").expect("valid"),
            real: real.parse().expect("valid"),
            audit_log: Some(log.to_path_buf()),
            ssh: SshArgs::default(),
            router_sudo: SudoMode::Auto,
            router_agent: crate::source::agent::AgentChoice::Never,
        }
    }

    /// Runs `kind` against `fake` and returns its outcome and the audit log's last record.
    fn run(
        fake: &mut Fake,
        real: &str,
        kind: ActionKind,
        weight: Option<i64>,
    ) -> (Result<String, ActionError>, AuditRecord) {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("audit.jsonl");
        let t = target(real, &path);
        let log = AuditLog::at(&path);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let out = rt.block_on(act(fake, &t, kind, weight, false, Some(&log)));
        let (mut records, bad) = log.records().expect("readable");
        assert_eq!((records.len(), bad), (1, 0), "one record per action");
        (out, records.remove(0))
    }

    #[test]
    fn refusals_before_a_change_is_planned_are_audited_with_the_reason() {
        let mut fake = Fake {
            table: Some(table(&[3, 5])),
            set: Vec::new(),
        };
        let (out, rec) = run(&mut fake, "10.0.0.99:80", ActionKind::Drain, None);
        assert!(matches!(out, Err(ActionError::Control(_))), "{out:?}");
        assert_eq!(
            rec.result,
            "refused: tcp:192.0.2.10:80 has no real server 10.0.0.99:80"
        );
        assert_eq!((rec.old_weight, rec.new_weight), (None, Some(0)));
        assert_eq!(
            (rec.router.as_str(), rec.action),
            ("lb1", ActionKind::Drain)
        );

        let (_, rec) = run(&mut fake, "10.0.0.3:80", ActionKind::Reweight, Some(5));
        assert!(rec.result.starts_with("refused: ") && rec.result.contains("already has weight 5"));
        assert_eq!((rec.old_weight, rec.new_weight), (Some(5), Some(5)));

        let (_, rec) = run(&mut fake, "10.0.0.2:80", ActionKind::Restore, None);
        assert!(
            rec.result.starts_with("refused: no earlier drain"),
            "{rec:?}"
        );
        assert_eq!((rec.old_weight, rec.new_weight), (Some(3), None));
        assert!(fake.set.is_empty(), "nothing was changed");
    }

    #[test]
    fn an_unreachable_router_is_audited_as_an_error_and_a_change_as_ok() {
        let mut down = Fake {
            table: None,
            set: Vec::new(),
        };
        let (out, rec) = run(&mut down, "10.0.0.2:80", ActionKind::Reweight, Some(9));
        assert!(out.is_err());
        assert_eq!(rec.result, "error: lb1: connection refused");
        assert_eq!((rec.old_weight, rec.new_weight), (None, Some(9)));

        let mut up = Fake {
            table: Some(table(&[3, 5])),
            set: Vec::new(),
        };
        let (out, rec) = run(&mut up, "10.0.0.2:80", ActionKind::Reweight, Some(9));
        assert!(out.is_ok(), "{out:?}");
        assert_eq!(rec.result, "ok");
        assert_eq!((rec.old_weight, rec.new_weight), (Some(3), Some(9)));
        assert_eq!(up.set, [9]);
    }
}
