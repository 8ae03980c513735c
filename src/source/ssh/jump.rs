//! Jump hosts (`ProxyJump`, `--jump`): one connection per jump host, shared by every host behind
//! it and closed when the last of them lets go. Chains connect hop by hop: for `a,b` the target is
//! reached through `b`, and `b` through `a`, as ssh(1) does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::time::Instant;

use super::SshError;
use super::connection::{Connection, SshContext};
use super::hosts::HostSpec;

/// Hops deeper than this are a loop in the configuration.
pub(crate) const MAX_HOPS: usize = 8;

type Slot = Arc<tokio::sync::Mutex<Weak<Connection>>>;

/// The open jump host connections, by where they go and how.
#[derive(Debug, Default)]
pub struct JumpPool {
    slots: Mutex<HashMap<String, Slot>>,
}

impl JumpPool {
    /// One slot per distinct jump (there are few); a slot whose connection has gone holds nothing.
    fn slot(&self, key: &str) -> Slot {
        let mut slots = match self.slots.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        slots.entry(key.to_string()).or_default().clone()
    }

    /// The connection to the last hop of `hops`, open and authenticated, made (through the hops
    /// before it) if there is none yet. Hosts waiting for the same jump host wait for one connect.
    pub async fn get(
        &self,
        ctx: &Arc<SshContext>,
        hops: &[HostSpec],
        deadline: Instant,
        depth: usize,
    ) -> Result<Arc<Connection>, SshError> {
        let Some((last, before)) = hops.split_last() else {
            return Err(SshError::Reply("empty jump host list".into()));
        };
        let via_name = last.to_string();
        let wrap = |e: SshError| match e {
            SshError::Jump { .. } => e,
            other => SshError::Jump {
                via: via_name.clone(),
                source: Box::new(other),
            },
        };
        if depth > MAX_HOPS {
            return Err(wrap(SshError::Reply(format!(
                "more than {MAX_HOPS} jump hosts; is there a ProxyJump loop?"
            ))));
        }
        let resolved = ctx
            .settings
            .resolve(last, (!before.is_empty()).then_some(before))
            .map_err(|e| wrap(e.into()))?;
        let key = format!(
            "{} via [{}]",
            resolved.endpoint(),
            resolved
                .proxy_jump
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        let slot = self.slot(&key);
        let mut guard = slot.lock().await;
        if let Some(conn) = guard.upgrade()
            && !conn.is_closed()
        {
            return Ok(conn);
        }
        let conn = Box::pin(Connection::connect_depth(ctx, &resolved, deadline, depth))
            .await
            .map_err(wrap)?;
        let conn = Arc::new(conn);
        *guard = Arc::downgrade(&conn);
        tracing::info!(jump = %key, "jump host connected");
        Ok(conn)
    }
}
