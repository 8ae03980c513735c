//! `lbtop replay --export csv` of a recording whose hosts are named like spreadsheet formulas:
//! those cells are text to a spreadsheet (a `'` in front, quoted), control characters are
//! escaped, numbers lbtop writes stay numbers (negative ones too), and a value that is not a
//! finite number is an empty cell, as it is `null` in the JSON export.

mod support;

use std::path::Path;

use lbtop::app::{State, StateOptions};
use lbtop::model::sample::{Report, SourceEvent};
use lbtop::record::writer::WriterOptions;
use lbtop::record::{Item, Writer};
use lbtop::report::export::CSV_COLUMNS;
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};
use lbtop::testing::scripted_info;
use support::bin::lbtop;

const SHAPE: ClusterShape = ClusterShape {
    nodes: 2,
    cores: 2,
    services: 1,
    reals_per_service: 2,
};

const NODE: &str = "=HYPERLINK(\"http://203.0.113.9/\",\"x\")";
const HOST: &str = "@SUM(1+1)";
const ROUTER: &str = "+cmd|' /C calc'!A0";
const WEB02_HOST: &str = "-2+3\u{1b}[2J\ttab";

/// The scripted cluster with node 1 and the router renamed as above; node 1's 1-minute load is
/// not a number and its 5-minute load negative, as a broken host might report them.
fn record(path: &Path, steps: usize) {
    let options = WriterOptions::default();
    let mut info = scripted_info(SHAPE, &options);
    info.nodes[0].name = NODE.into();
    info.nodes[0].host = HOST.into();
    info.nodes[1].host = WEB02_HOST.into();
    info.router = Some(ROUTER.into());
    let file = std::fs::File::create(path).expect("create");
    let mut w = Writer::new(file, info, options).expect("writer");
    let mut c = ScriptedCluster::new(SHAPE, 3);
    let mut s = State::new(StateOptions::default());
    for _ in 0..steps {
        for mut e in c.step() {
            match &mut e {
                SourceEvent::Node { name, host, report } if name == "web01" => {
                    *name = NODE.into();
                    *host = HOST.into();
                    if let Report::Sample(sample) = report {
                        sample.load.one = f64::NAN;
                        sample.load.five = -1.5;
                    }
                }
                SourceEvent::Node { host, .. } => *host = WEB02_HOST.into(),
                SourceEvent::Router { host, .. } => *host = ROUTER.into(),
            }
            w.push(Item::Event(e.clone()));
            for a in s.ingest(e) {
                w.push(Item::Alert(a));
            }
        }
        for a in s.tick(c.time()) {
            w.push(Item::Alert(a));
        }
        w.flush_frame().expect("frame");
    }
    w.finish().expect("finish");
}

fn column(name: &str) -> usize {
    CSV_COLUMNS
        .iter()
        .position(|c| *c == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

#[test]
fn formula_names_are_text_numbers_stay_numbers_and_nan_is_empty() {
    let d = tempfile::tempdir().expect("dir");
    let file = d.path().join("formula.lbrec");
    record(&file, 4);
    let out = lbtop(&["replay", file.to_str().expect("utf8"), "--export", "csv"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = String::from_utf8(out.stdout).expect("UTF-8");

    // On the wire: prefixed and quoted, with the quotes inside doubled.
    assert!(
        raw.contains(r#","'=HYPERLINK(""http://203.0.113.9/"",""x"")","'@SUM(1+1)","#),
        "{raw}"
    );
    assert!(raw.contains(r#""'+cmd|' /C calc'!A0""#), "{raw}");
    assert!(raw.contains(r#""'-2+3\u{1b}[2J\ttab""#), "{raw}");
    assert!(
        !raw.contains('\u{1b}') && !raw.contains('\t'),
        "escaped: {raw}"
    );
    for line in raw.lines() {
        for bad in [",=", ",+", ",@", ",\"=", ",\"+", ",\"@", ",\"-"] {
            assert!(!line.contains(bad), "a cell starts a formula: {line}");
        }
    }

    // As a reader sees it.
    let mut reader = csv::ReaderBuilder::new().from_reader(raw.as_bytes());
    let header = reader.headers().expect("header").clone();
    assert_eq!(header.iter().collect::<Vec<_>>(), CSV_COLUMNS);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
    let nodes: Vec<&csv::StringRecord> = rows
        .iter()
        .filter(|r| &r[column("kind")] == "node" && r[column("node")].starts_with("'="))
        .collect();
    assert_eq!(nodes.len(), 4, "{raw}");
    for r in &nodes {
        assert_eq!(&r[column("node")], format!("'{NODE}"));
        assert_eq!(&r[column("host")], format!("'{HOST}"));
        assert_eq!(&r[column("load1")], "", "NaN is no value");
        assert_eq!(
            &r[column("load5")],
            "-1.50",
            "a negative number stays a number"
        );
        assert_eq!(&r[column("cores")], "2");
    }
    let reals: Vec<&csv::StringRecord> = rows
        .iter()
        .filter(|r| &r[column("kind")] == "real")
        .collect();
    assert_eq!(reals.len(), 4 * SHAPE.reals_per_service, "{raw}");
    for r in &reals {
        assert_eq!(&r[column("host")], format!("'{ROUTER}"));
        assert!(r[column("weight")].parse::<i64>().is_ok(), "{r:?}");
    }
    // Numbers are never quoted on the wire.
    let weights = raw
        .lines()
        .filter(|l| l.contains(",real,"))
        .filter(|l| l.contains(",\"0\",") || l.contains(",\"1\","))
        .count();
    assert_eq!(weights, 0, "{raw}");
}
