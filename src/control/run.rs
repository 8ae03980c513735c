//! The command-line actions (`lbtop drain|weight|restore`): the same plan, re-check, change and
//! audit as the TUI's keys.

use super::audit::AuditLog;
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

/// Runs one action; returns the line to print on success.
pub async fn run_action(
    target: &ActionTarget,
    kind: ActionKind,
    weight: Option<i64>,
    force: bool,
    read_only: bool,
) -> Result<String, ActionError> {
    if read_only {
        return Err(ControlError::from(PlanError::ReadOnly).into());
    }
    let audit = target
        .audit_log
        .clone()
        .or_else(AuditLog::default_path)
        .map(AuditLog::at);
    let ctrl = AnyControl::for_router(
        &target.router,
        &target.ssh,
        target.router_sudo,
        std::time::Duration::from_secs(1),
    )
    .map_err(ActionError::Usage)?;
    let Some(mut ctrl) = ctrl else {
        return Err(ActionError::Usage(
            "--router none: an action needs a router".into(),
        ));
    };
    let line = act(&mut ctrl, target, kind, weight, force, audit.as_ref()).await?;
    Ok(format!("{line} (via {})", ctrl.method()))
}

async fn act<C: RouterControl>(
    ctrl: &mut C,
    target: &ActionTarget,
    kind: ActionKind,
    weight: Option<i64>,
    force: bool,
    audit: Option<&AuditLog>,
) -> Result<String, ActionError> {
    let table = ctrl.table().await?;
    let to = match kind {
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
            i64::from(w)
        }
    };
    let change: WeightChange =
        plan::plan(&table, kind, &target.service, &target.real, to).map_err(ControlError::from)?;
    apply(ctrl, &change, force, audit).await?;
    Ok(format!("{change}: done"))
}
