//! `lbtop agent`: lbtop on the router, at the far end of an SSH session that lbtop started. It
//! reads requests on stdin and answers on stdout ([`crate::source::agent`] is the wire), reads
//! IPVS over netlink and the connection table as the local router source does, and makes weight
//! changes with netlink SET_DEST through the same plan re-check and guards as on this machine.
//! It exits when its stdin closes or its stdout goes, and never listens on a port.
//!
//! An action's body on the wire is an [`AgentAction`]; its outcome an [`AgentOutcome`], so that a
//! refusal reaches the operator with the same words as on any other router.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use super::plan::{PlanError, WeightChange};
use super::{ControlError, NetlinkControl, RouterControl};
use crate::model::delta::Packed;
use crate::source::agent::{
    Hello, MAGIC, MAX_REQUEST, Reply, Request, SampleEncoder, decode, frame, frame_len,
};
use crate::source::local::LocalRouter;

/// An operator action sent to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentAction {
    pub change: WeightChange,
    pub force: bool,
}

/// What came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AgentOutcome {
    Applied,
    Refused(PlanError),
    Failed(String),
}

impl AgentOutcome {
    fn of(result: Result<(), ControlError>) -> AgentOutcome {
        match result {
            Ok(()) => AgentOutcome::Applied,
            Err(ControlError::Plan(p)) => AgentOutcome::Refused(p),
            Err(e) => AgentOutcome::Failed(e.to_string()),
        }
    }

    /// Back to what any router's control gives.
    pub fn result(self, router: &str) -> Result<(), ControlError> {
        match self {
            AgentOutcome::Applied => Ok(()),
            AgentOutcome::Refused(p) => Err(ControlError::Plan(printable_refusal(p))),
            AgentOutcome::Failed(why) => Err(ControlError::Backend(format!(
                "{router}: {}",
                crate::model::text::printable(&why, 300)
            ))),
        }
    }
}

/// A refusal from the router with its strings made printable: they reach the screen and the
/// audit log.
fn printable_refusal(p: PlanError) -> PlanError {
    let t = |s: String| crate::model::text::printable(&s, 120);
    match p {
        PlanError::NoSuchService(s) => PlanError::NoSuchService(t(s)),
        PlanError::NoSuchReal { service, real } => PlanError::NoSuchReal {
            service: t(service),
            real: t(real),
        },
        PlanError::WeightChanged { real, seen, now } => PlanError::WeightChanged {
            real: t(real),
            seen,
            now,
        },
        PlanError::LastLiveServer { service, real } => PlanError::LastLiveServer {
            service: t(service),
            real: t(real),
        },
        PlanError::NothingToRestore { service, real } => PlanError::NothingToRestore {
            service: t(service),
            real: t(real),
        },
        PlanError::Unchanged { real, weight } => PlanError::Unchanged {
            real: t(real),
            weight,
        },
        PlanError::UnknownForward(real) => PlanError::UnknownForward(t(real)),
        p @ (PlanError::OutOfRange(_)
        | PlanError::AmbiguousMark(_)
        | PlanError::ReadOnly
        | PlanError::Snapshot
        | PlanError::Prometheus) => p,
    }
}

/// Serves requests from `input` on `output` until `input` ends. An error is a stream that cannot
/// go on (a frame too long or not lbtop's); the end of input is not.
pub fn serve(input: &mut impl Read, output: &mut impl Write) -> Result<(), String> {
    let io_err = |e: io::Error| format!("lbtop agent: {e}");
    output.write_all(MAGIC).map_err(io_err)?;
    output.write_all(&frame(&Hello::ours())).map_err(io_err)?;
    output.flush().map_err(io_err)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err)?;
    let mut router = LocalRouter::new(None);
    let mut encoder = SampleEncoder::default();
    loop {
        let mut head = [0u8; 4];
        match read_all(input, &mut head).map_err(io_err)? {
            0 => return Ok(()),
            4 => {}
            _ => return Err("lbtop agent: input ended inside a request".into()),
        }
        let len = frame_len(head, MAX_REQUEST).map_err(|e| format!("lbtop agent: {e}"))?;
        let mut body = vec![0u8; len];
        if read_all(input, &mut body).map_err(io_err)? != len {
            return Err("lbtop agent: input ended inside a request".into());
        }
        let request: Request =
            decode(&body, "a request").map_err(|e| format!("lbtop agent: {e}"))?;
        let reply = answer(request, &mut router, &mut encoder, &runtime);
        // The session is gone when stdout is: that ends the agent too.
        if output
            .write_all(&frame(&reply))
            .and_then(|()| output.flush())
            .is_err()
        {
            return Ok(());
        }
    }
}

fn answer(
    request: Request,
    router: &mut LocalRouter,
    encoder: &mut SampleEncoder,
    runtime: &tokio::runtime::Runtime,
) -> Reply {
    let failed = |seq, message: String| Reply::Failed { seq, message };
    match request {
        Request::Poll { seq, full } => match router.sample_unless_known(full, encoder.generation())
        {
            Ok(sample) => encoder.reply(seq, sample, router.services_generation()),
            Err(e) => failed(seq, e.to_string()),
        },
        Request::Table { seq } => match runtime.block_on(NetlinkControl.table()) {
            Ok(services) => Reply::Table { seq, services },
            Err(e) => failed(seq, e.to_string()),
        },
        Request::Act { seq, body } => {
            let action: AgentAction = match decode(&body.0, "an action") {
                Ok(a) => a,
                Err(e) => return failed(seq, e),
            };
            let result =
                runtime.block_on(NetlinkControl.change_weight(&action.change, action.force));
            let mut out = Vec::new();
            match ciborium::into_writer(&AgentOutcome::of(result), &mut out) {
                Ok(()) => Reply::Acted {
                    seq,
                    body: Packed(out),
                },
                Err(e) => failed(seq, format!("the outcome did not encode: {e}")),
            }
        }
    }
}

/// Reads until `buf` is full or the input ends; how much was read.
fn read_all(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::agent::Reply;

    /// The agent on this machine (no IPVS here: a poll is answered with a failure that says so),
    /// fed requests and a garbage frame.
    #[test]
    fn the_agent_greets_answers_each_request_and_ends_with_its_input() {
        let mut input = Vec::new();
        input.extend(frame(&Request::Poll {
            seq: 1,
            full: false,
        }));
        input.extend(frame(&Request::Poll { seq: 2, full: true }));
        let mut out = Vec::new();
        serve(&mut input.as_slice(), &mut out).expect("ends cleanly at the end of input");
        assert!(out.starts_with(MAGIC));
        let mut rest = &out[MAGIC.len()..];
        let mut frames = Vec::new();
        while rest.len() >= 4 {
            let len = frame_len(rest[..4].try_into().expect("4"), 1 << 24).expect("len");
            frames.push(rest[4..4 + len].to_vec());
            rest = &rest[4 + len..];
        }
        assert_eq!(frames.len(), 3);
        let hello: Hello = decode(&frames[0], "hello").expect("hello");
        assert_eq!(hello.mismatch(), None);
        for (i, f) in frames[1..].iter().enumerate() {
            let reply: Reply = decode(f, "reply").expect("reply");
            assert_eq!(reply.seq(), i as u64 + 1);
        }
    }

    #[test]
    fn a_garbage_or_oversized_request_ends_the_agent_with_a_clear_error() {
        let mut out = Vec::new();
        let mut garbage: &[u8] = b"\x05\x00\x00\x00\xff\xfe\xfd\xfc\xfb";
        let e = serve(&mut garbage, &mut out).expect_err("an error");
        assert!(e.contains("not lbtop's agent"), "{e}");
        let mut huge: &[u8] = b"\xff\xff\xff\x7f";
        let e = serve(&mut huge, &mut Vec::new()).expect_err("an error");
        assert!(e.contains("more than"), "{e}");
        let mut cut: &[u8] = b"\x05\x00";
        let e = serve(&mut cut, &mut Vec::new()).expect_err("an error");
        assert!(e.contains("inside a request"), "{e}");
    }

    #[test]
    fn outcomes_keep_the_refusal_words() {
        let refusal = PlanError::Unchanged {
            real: "10.0.0.2:80".into(),
            weight: 3,
        };
        let mut bytes = Vec::new();
        ciborium::into_writer(&AgentOutcome::of(Err(refusal.clone().into())), &mut bytes)
            .expect("encodes");
        let back: AgentOutcome = decode(&bytes, "an outcome").expect("decodes");
        let e = back.result("lab").expect_err("an error");
        assert_eq!(e.to_string(), ControlError::Plan(refusal).to_string());
        let hostile = AgentOutcome::Refused(PlanError::NoSuchService("tcp:\x1b[2J".into()));
        let e = hostile.result("lab").expect_err("an error").to_string();
        assert!(!e.contains('\x1b'), "{e}");
    }
}
