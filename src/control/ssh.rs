//! Changing weights on a router reached over SSH: `ipvsadm` through `sudo -n` when the login user
//! is not root. Scripts go to the remote `/bin/sh` on stdin and are built from constants and typed
//! values only, so nothing from the configuration, IPVS or the operator is ever interpreted by
//! the remote shell.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::agent::{AgentAction, AgentOutcome};
use super::ipvsadm::{self, CheckedEdit, VIEW_END};
use super::plan::WeightChange;
use super::{ControlError, RouterControl, read_ipvsadm_table};
use crate::model::sample::{RealServerSample, VirtualServiceSample};
use crate::source::agent::{AgentChoice, AgentProgram, AgentStart, FAILED, decode};
use crate::source::remote::{PROGRAM_COMMAND, SudoMode};
use crate::source::ssh::SshError;
use crate::source::ssh::config::ResolvedHost;
use crate::source::ssh::connection::{Connection, SshContext};

/// How long an action's exec may take: every ipvsadm run goes through `sudo -n` for a login
/// that is not root, and a slow or busy router takes seconds for that.
const ACTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A router over SSH. The connection is opened on first use and kept for the action's re-read
/// and change, so a change costs one round trip after the re-check.
#[derive(Clone)]
pub struct SshControl {
    name: String,
    ctx: Arc<SshContext>,
    host: ResolvedHost,
    sudo: SudoMode,
    conn: Arc<Mutex<Option<Arc<Connection>>>>,
    /// Whether to run `lbtop agent` on the router for actions, and the one running.
    agent: AgentChoice,
    agent_slot: Arc<Mutex<AgentSlot>>,
    /// Whether the last action went through the agent (for [`SshControl::method`]).
    via_agent: Arc<AtomicBool>,
}

/// The router's agent for actions: not tried yet, running (sudo paid once), or not usable.
#[derive(Default)]
enum AgentSlot {
    #[default]
    Untried,
    Running(Box<AgentProgram>),
    Fallback,
}

impl std::fmt::Debug for SshControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshControl")
            .field("name", &self.name)
            .finish()
    }
}

impl SshControl {
    pub fn new(name: String, ctx: Arc<SshContext>, host: ResolvedHost, sudo: SudoMode) -> Self {
        Self {
            name,
            ctx,
            host,
            sudo,
            conn: Arc::default(),
            agent: AgentChoice::Never,
            agent_slot: Arc::default(),
            via_agent: Arc::default(),
        }
    }

    /// The same control, acting through `lbtop agent` on the router when `agent` allows.
    pub fn with_agent(mut self, agent: AgentChoice) -> Self {
        self.agent = agent;
        self
    }

    /// `agent` once actions go through the router's agent, else `ssh` (ipvsadm over SSH).
    pub fn method(&self) -> &'static str {
        if self.via_agent.load(Ordering::Relaxed) {
            "agent"
        } else {
            "ssh"
        }
    }

    /// Whether actions go through the router's agent: starts it the first time (through sudo
    /// when the login is not root); after a fallback, never again for this control.
    pub async fn agent_ready(&self) -> Result<bool, ControlError> {
        let Some(command) = self.agent.command(self.sudo) else {
            return Ok(false);
        };
        let mut slot = self.agent_slot.lock().await;
        // An agent on a connection that is gone is gone too: started again on the new one.
        let connected = self
            .conn
            .lock()
            .await
            .as_ref()
            .is_some_and(|c| !c.is_closed());
        if !connected && let AgentSlot::Running(agent) = std::mem::take(&mut *slot) {
            agent.close().await;
        }
        match &*slot {
            AgentSlot::Running(_) => return Ok(true),
            AgentSlot::Fallback => return Ok(false),
            AgentSlot::Untried => {}
        }
        let conn = self.connection().await?;
        // The first reply holds the whole table: as large as the shell session's expanded replies.
        let limit = self.ctx.tuning.max_reply_bytes.saturating_mul(8);
        match AgentProgram::start(&conn, &command, limit, ACTION_TIMEOUT).await {
            Ok(agent) => {
                *slot = AgentSlot::Running(agent);
                self.via_agent.store(true, Ordering::Relaxed);
                Ok(true)
            }
            Err(AgentStart::Fallback(why)) => {
                tracing::info!(router = %self.name, "actions use ipvsadm: {why}");
                *slot = AgentSlot::Fallback;
                self.via_agent.store(false, Ordering::Relaxed);
                Ok(false)
            }
            Err(AgentStart::Failed(e)) => Err(ControlError::Backend(format!("{}: {e}", self.name))),
        }
    }

    /// One request to the running agent, within the action's time. A failure to talk to it ends
    /// it; it is started again at the next action.
    async fn with_agent_program<T>(
        &self,
        ask: impl AsyncFnOnce(&mut AgentProgram) -> Result<T, SshError>,
    ) -> Result<T, ControlError> {
        let mut slot = self.agent_slot.lock().await;
        let AgentSlot::Running(agent) = &mut *slot else {
            return Err(ControlError::Backend(format!(
                "{}: the router's agent is not running",
                self.name
            )));
        };
        let answer = tokio::time::timeout(ACTION_TIMEOUT, ask(agent)).await;
        let error = match answer {
            Ok(Ok(t)) => return Ok(t),
            Ok(Err(SshError::Reply(why))) if why.starts_with(FAILED) => {
                // The agent answered with a failure; it goes on.
                return Err(ControlError::Backend(format!("{}: {why}", self.name)));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!(
                "no answer from the router's agent in {}s; a change may or may not have been made, \
                 look at the table before retrying",
                ACTION_TIMEOUT.as_secs()
            ),
        };
        if let AgentSlot::Running(agent) = std::mem::take(&mut *slot) {
            agent.close().await;
        }
        Err(ControlError::Backend(format!("{}: {error}", self.name)))
    }

    async fn connection(&self) -> Result<Arc<Connection>, ControlError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let deadline = Instant::now() + self.ctx.tuning.connect_timeout;
        let c = Arc::new(
            Connection::connect(&self.ctx, &self.host, deadline)
                .await
                .map_err(|e| ControlError::Backend(format!("{}: {e}", self.name)))?,
        );
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn run(&self, script: &str) -> Result<String, ControlError> {
        let conn = self.connection().await?;
        let limit = self.ctx.tuning.poll_timeout.max(ACTION_TIMEOUT);
        let out = tokio::time::timeout(
            limit,
            conn.exec(PROGRAM_COMMAND, Some(script.as_bytes()), 8 << 20),
        )
        .await
        .map_err(|_| {
            ControlError::Backend(format!(
                "{}: no answer from the router in {}s; a change may or may not have been made, \
                 look at the table before retrying",
                self.name,
                limit.as_secs()
            ))
        })?
        .map_err(|e| ControlError::Backend(format!("{}: {e}", self.name)))?;
        if out.exit_status != Some(0) {
            return Err(ControlError::Backend(format!(
                "{}: ipvsadm failed ({}){}",
                self.name,
                out.exit_status
                    .map_or_else(|| "no exit status".into(), |s| format!("exit status {s}")),
                out.stderr_line()
                    .map_or_else(String::new, |l| format!(": {l}"))
            )));
        }
        String::from_utf8(out.stdout).map_err(|_| {
            ControlError::Backend(format!(
                "{}: ipvsadm printed text that is not UTF-8",
                self.name
            ))
        })
    }
}

impl SshControl {
    /// One round trip to the router on the kept connection: a remote shell that does nothing.
    pub async fn round_trip(&self) -> Result<std::time::Duration, ControlError> {
        self.connection().await?;
        let start = std::time::Instant::now();
        self.run(":\n").await?;
        Ok(start.elapsed())
    }
}

impl RouterControl for SshControl {
    fn router_name(&self) -> String {
        self.name.clone()
    }

    async fn table(&mut self) -> Result<Vec<VirtualServiceSample>, ControlError> {
        if self.agent_ready().await? {
            return self.with_agent_program(async |a| a.table().await).await;
        }
        let mut script = String::from(self.sudo.program_line());
        script.push_str("set -e\n");
        for (i, view) in ipvsadm::READ_VIEWS.iter().enumerate() {
            if i == 0 {
                // The plain view where ipvsadm lacks --tun-info.
                script.push_str("$S ipvsadm ");
                script.push_str(&ipvsadm::TUN_INFO_VIEW.join(" "));
                script.push_str(" </dev/null 2>/dev/null || ");
            }
            script.push_str("$S ipvsadm ");
            script.push_str(&view.join(" "));
            script.push_str(" </dev/null\necho '");
            script.push_str(VIEW_END.trim_end());
            script.push_str("'\n");
        }
        let text = self.run(&script).await?;
        let mut views = text.split(VIEW_END);
        read_ipvsadm_table(|_| {
            views.next().map(str::to_string).ok_or_else(|| {
                ControlError::Backend("ipvsadm printed fewer views than asked".into())
            })
        })
    }

    async fn set_weight(
        &mut self,
        svc: &VirtualServiceSample,
        real: &RealServerSample,
        weight: i32,
    ) -> Result<(), ControlError> {
        let mut script = String::from(self.sudo.program_line());
        script.push_str("exec $S ipvsadm ");
        script.push_str(&ipvsadm::edit_args(svc, real, weight)?.join(" "));
        script.push_str(" </dev/null\n");
        self.run(&script).await.map(|_| ())
    }

    /// The re-check and the change in one exec ([`ipvsadm::checked_edit_script`]). A refusal
    /// carries the same message as on any other router.
    async fn change_weight(
        &mut self,
        change: &WeightChange,
        force: bool,
    ) -> Result<(), ControlError> {
        if self.agent_ready().await? {
            let action = AgentAction {
                change: change.clone(),
                force,
            };
            let mut body = Vec::new();
            ciborium::into_writer(&action, &mut body)
                .map_err(|e| ControlError::Backend(format!("the action did not encode: {e}")))?;
            let out = self.with_agent_program(async |a| a.act(body).await).await?;
            let outcome: AgentOutcome = decode(&out, "an action's outcome")
                .map_err(|e| ControlError::Backend(format!("{}: {e}", self.name)))?;
            return outcome.result(&self.name);
        }
        let mut script = String::from(self.sudo.program_line());
        script.push_str(&ipvsadm::checked_edit_script(change, force));
        let out = self.run(&script).await?;
        match ipvsadm::read_checked_edit(&out, change)? {
            CheckedEdit::Refused(refusal) => Err(match refusal.error(change) {
                Ok(plan) => plan.into(),
                Err(why) => ControlError::Backend(format!("{}: {why}", self.name)),
            }),
            CheckedEdit::Applied { after } if after != Some(change.to) => {
                Err(ControlError::Backend(format!(
                    "{}: ipvsadm -e succeeded, but ipvsadm then showed {} for {}",
                    self.name,
                    after.map_or_else(|| "no such real server".into(), |w| format!("weight {w}")),
                    change.real
                )))
            }
            CheckedEdit::Applied { .. } => Ok(()),
        }
    }
}
