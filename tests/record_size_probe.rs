use lbtop::app::{State, StateOptions};
use lbtop::record::writer::{WriterOptions, record_scripted, scripted_info};
use lbtop::record::Writer;
use lbtop::source::scripted::{ClusterShape, ScriptedCluster};

#[test]
#[ignore]
fn probe() {
    let shape = ClusterShape { nodes: 50, cores: 32, services: 20, reals_per_service: 10 };
    for level in [3, 6, 9] {
        for ke in [30u64] {
            let opts = WriterOptions { keyframe_every: std::time::Duration::from_secs(ke), level, sync: false };
            let mut w = Writer::new(Vec::new(), scripted_info(shape, &opts), opts).unwrap();
            let mut c = ScriptedCluster::new(shape, 42);
            let mut s = State::new(StateOptions::default());
            let t = std::time::Instant::now();
            record_scripted(&mut w, &mut c, &mut s, 600).unwrap();
            let el = t.elapsed();
            let n = w.finish().unwrap().len();
            println!("level {level} key {ke}s: {} bytes / 600 s → {:.1} MB/h  ({el:?})", n, n as f64 * 6.0 / 1e6);
        }
    }
}
