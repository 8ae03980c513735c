//! What tests and benchmarks build on, and nothing else does: a scripted cluster that produces
//! the same raw samples as real sources, and a recorder of it that runs the live loop's steps.
//! Compiled only for the crate's own tests and with the `testing` feature, which the
//! integration tests and benches turn on (the crate is its own dev-dependency); the binary never
//! carries it.

use std::io;
use std::time::Duration;

use crate::app::State;
use crate::record::Item;
use crate::record::format::{HeaderInfo, NodeDecl};
use crate::record::writer::{Sink, Writer, WriterOptions, header_info};

pub mod scripted;

/// Records `steps` polls of a scripted cluster, exactly as the live loop would: each event, the
/// alerts its ingestion raised, the alerts of the passing of time, then one frame per poll.
/// For tests and benchmarks.
pub fn record_scripted<W: Sink>(
    writer: &mut Writer<W>,
    cluster: &mut scripted::ScriptedCluster,
    state: &mut State,
    steps: usize,
) -> io::Result<()> {
    for _ in 0..steps {
        for e in cluster.step() {
            writer.push(Item::Event(e.clone()));
            for a in state.ingest(e) {
                writer.push(Item::Alert(a));
            }
        }
        for a in state.tick(cluster.time()) {
            writer.push(Item::Alert(a));
        }
        writer.flush_frame()?;
    }
    Ok(())
}

/// The header info of a scripted cluster's recording.
pub fn scripted_info(shape: scripted::ClusterShape, options: &WriterOptions) -> HeaderInfo {
    use scripted::ScriptedCluster;
    let mut info = header_info(
        Duration::from_secs(1),
        options,
        (shape.services > 0).then(|| "lvs-router".to_string()),
        (0..shape.nodes)
            .map(|i| NodeDecl {
                name: ScriptedCluster::node_name(i),
                host: ScriptedCluster::node_address(i).to_string(),
            })
            .collect(),
    );
    info.created = scripted::EPOCH;
    info
}
