//! The router and the nodes over SSH.
//!
//! Each host has one connection and, on it, one long-lived exec of lbtop's small fixed program
//! (`program`): a poll is a request line on its stdin and a reply on its stdout, so a poll starts
//! no login shell and reads no rc file on the host. A node poll starts no process at all; a
//! router poll reads `/proc/net/ip_vs` every time and ipvsadm and the connection table as a CPU
//! budget on the router allows (`router`).
//!
//! - `program`: the text that runs on the hosts, and the requests;
//! - `reply`: reading greetings and replies;
//! - `router`: what a router poll asks for, and its sample;
//! - `task`: the task per host (connect, poll, reconnect);
//! - `nodemap`, `discovery`: `[[node]]` mappings and `--nodes auto`;
//! - `set`: every host of a run; `once`: `--once` bookkeeping;
//! - `drwatch`: which nodes read the direct-routing checks' files.

mod discovery;
mod drwatch;
mod nodemap;
mod once;
pub mod program;
pub mod reply;
pub mod router;
mod set;
mod task;

pub use discovery::AutoNodes;
pub use nodemap::{Cidr, NodeMap, parse_block};
pub use once::{OnceProgress, unanswered};
pub use program::{
    NODE_PROGRAM, PROGRAM_COMMAND, RouterPart, SudoMode, TOP_CLIENTS, router_program,
};
pub use set::{RemoteSet, Started};
pub use task::{RemoteSource, Role};
