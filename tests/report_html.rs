//! `lbtop report`: one self-contained HTML page from a recording. The demo's report names its
//! hosts and service and shows the drain and the overload; it loads nothing from the network and
//! runs no script; headless Chromium (Debian's `chromium`) draws it as a real picture; a damaged
//! recording gives a report of what could be read, saying so; hostile names are escaped; a long
//! recording is downsampled and says so; a reversed range exits 2 as the exports do.

mod support;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lbtop::app::{State, StateOptions};
use lbtop::model::sample::SourceEvent;
use lbtop::record::format::FRAME_HEADER_LEN;
use lbtop::record::writer::WriterOptions;
use lbtop::record::{Item, Recording, Writer};
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};
use lbtop::testing::{record_scripted, scripted_info};
use support::bin::lbtop;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.lbrec");

/// `lbtop report FILE -o DIR/NAME args…`: the page, after checking lbtop succeeded.
fn report(file: &Path, dir: &Path, name: &str, args: &[&str]) -> (String, String) {
    let out_path = dir.join(name);
    let mut all = vec![
        "report",
        file.to_str().expect("utf8"),
        "-o",
        out_path.to_str().expect("utf8"),
    ];
    all.extend_from_slice(args);
    let out = lbtop(&all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "lbtop {all:?}: {stderr}");
    let html = std::fs::read_to_string(&out_path).expect("the report is written");
    (html, stderr)
}

/// What a self-contained page must not have: a script, or a URL to fetch anything from.
fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "a script in the page");
    assert!(!lower.contains("http://"), "an http:// URL in the page");
    assert!(!lower.contains("https://"), "an https:// URL in the page");
    // Every tag: none that loads or embeds anything, no attribute that fetches.
    for tag in lower.split('<').skip(1).filter_map(|t| t.split('>').next()) {
        let name = tag.split([' ', '/']).next().unwrap_or("");
        assert!(
            ![
                "script", "img", "iframe", "link", "object", "embed", "image", "use", "base"
            ]
            .contains(&name),
            "<{tag}>"
        );
        assert!(
            !tag.contains("src=") && !tag.contains("href=\"/"),
            "<{tag}>"
        );
        assert!(!tag.contains(" on"), "an event handler: <{tag}>");
    }
    assert!(!lower.contains("url("), "something loaded by CSS url()");
    assert!(!lower.contains("@import"), "a CSS @import");
    assert!(lower.starts_with("<!doctype html>"));
    assert!(lower.trim_end().ends_with("</html>"));
}

#[test]
fn the_demo_report_names_its_hosts_and_service_and_shows_the_drain_and_the_overload() {
    let d = tempfile::tempdir().expect("dir");
    let (html, stderr) = report(Path::new(DEMO), d.path(), "demo.html", &[]);
    assert!(stderr.is_empty(), "{stderr}");
    assert_self_contained(&html);
    for name in ["rs1", "rs2", "rs3", "TCP 10.77.1.100:80", "10.77.0.11:80"] {
        assert!(html.contains(name), "{name} is not in the report");
    }
    // The overload: rs1's row is marked over its cores, with time above them, and its critical
    // alert is in the log and on its load chart.
    let row = html
        .split("<tr")
        .find(|r| r.contains("<td>rs1</td>"))
        .expect("rs1's row in the nodes table");
    assert!(row.contains("class=\"over\""), "{row}");
    assert!(!row.contains(">0s<"), "rs1 was above its cores: {row}");
    assert!(
        html.contains("<td>rs1</td><td>load</td><td>▲ critical</td>"),
        "rs1's critical alert in the log"
    );
    assert!(
        html.contains("<g class=\"mc\"><title>▲ "),
        "a critical marker"
    );
    // The drain and the restore: in the actions table with their results, as weight changes of
    // the real server, and marked on the charts.
    assert!(
        html.contains(
            "<td>◆ drain</td><td>TCP 10.77.1.100:80</td><td>10.77.0.11:80 (rs1)</td><td>1 → 0</td>"
        ),
        "the drain in the actions table"
    );
    assert!(html.contains("<td>◆ restore</td>"), "the restore");
    assert!(html.contains("→ 0<br>"), "the weight change to 0");
    assert!(
        html.contains("<g class=\"ma\"><title>◆ "),
        "an action marker"
    );
    // Charts: each an accessible image with a title and a description; light and dark; print.
    let charts = html.matches("<svg ").count();
    assert_eq!(html.matches("role=\"img\"").count(), charts);
    assert_eq!(html.matches("<title id=").count(), charts);
    assert_eq!(html.matches("<desc id=").count(), charts);
    assert!(html.contains("prefers-color-scheme:dark"));
    assert!(html.contains("@media print"));
    // Services that carried nothing are in the table only: six of the demo's 24 carried
    // traffic, so 3 nodes × 2 charts and 6 services × 4.
    assert!(html.contains("18 of 24 services had no connection and no byte"));
    assert_eq!(charts, 3 * 2 + 6 * 4);
    // Four minutes at 2 s: every sample is a point, so no downsampling is announced.
    assert!(!html.contains("downsampled"));
}

#[test]
fn a_report_range_takes_from_and_to_and_a_reversed_one_exits_2() {
    let d = tempfile::tempdir().expect("dir");
    let (whole, _) = report(Path::new(DEMO), d.path(), "whole.html", &[]);
    let (part, _) = report(
        Path::new(DEMO),
        d.path(),
        "part.html",
        &["--from", "3m", "--to", "4m"],
    );
    let frames = |html: &str| -> u64 {
        let at = html.find("<dt>Frames</dt><dd>").expect("frames") + 19;
        html[at..]
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a count")
    };
    assert!(frames(&part) < frames(&whole) / 2, "a minute of four");
    assert!(frames(&part) >= 25, "a minute at 2 s: {}", frames(&part));
    assert!(
        part.contains("<dt>Covered</dt><dd>1m"),
        "one minute covered"
    );
    for (args, said) in [
        (&["--from", "10m", "--to", "1m"][..], "is after --to"),
        (&["--from", "5h"][..], "no frame between"),
    ] {
        let out_path = d.path().join("never.html");
        let mut all = vec!["report", DEMO, "-o", out_path.to_str().expect("utf8")];
        all.extend_from_slice(args);
        let out = lbtop(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
        assert!(!out_path.exists(), "{args:?}: no report written");
    }
}

/// Runs Debian's chromium headless on `html` and returns the PNG it took, killing it after a
/// minute so a hang fails the test instead of hanging it.
fn screenshot(html: &Path, png: &Path) {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,2000")
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("run chromium (Debian package `chromium`; scripts/test installs it)");
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = nix_kill(child.id());
            let _ = child.wait();
            panic!("chromium did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success() && png.exists(), "chromium failed: {err}");
}

/// Stops chromium's whole process group (it starts helpers of its own).
fn nix_kill(pid: u32) -> std::io::Result<()> {
    Command::new("kill")
        .arg("-KILL")
        .arg(format!("-{pid}"))
        .status()
        .map(|_| ())
}

/// The distinct colours of a PNG and the share of its pixels the commonest colour covers.
fn colours(png: &Path) -> (usize, f64, (u32, u32)) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png).expect("open png"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("decode");
    let channels = info.color_type.samples();
    let mut counts = std::collections::HashMap::<&[u8], u64>::new();
    for px in buf[..info.buffer_size()].chunks_exact(channels) {
        *counts.entry(&px[..channels.min(3)]).or_default() += 1;
    }
    let total: u64 = counts.values().sum();
    let top = counts.values().copied().max().unwrap_or(0);
    (
        counts.len(),
        top as f64 / total.max(1) as f64,
        (info.width, info.height),
    )
}

#[test]
fn chromium_draws_the_demo_report_as_a_picture_that_is_not_blank() {
    let d = tempfile::tempdir().expect("dir");
    let (html, _) = report(Path::new(DEMO), d.path(), "demo.html", &[]);
    assert!(html.contains("<svg"));
    let png = d.path().join("demo.png");
    screenshot(&d.path().join("demo.html"), &png);
    let (distinct, top, size) = colours(&png);
    assert_eq!(size, (1280, 2000));
    // A blank page is one colour; text alone is a few dozen greys. Charts in several colours,
    // stacked areas and anti-aliased lines make hundreds.
    assert!(
        distinct > 200,
        "only {distinct} colours: blank or charts not drawn"
    );
    assert!(
        top < 0.9,
        "{:.0}% of the picture is one colour",
        top * 100.0
    );
    // `LBTOP_UPDATE_SCREENSHOT=1` refreshes the README's picture from this run.
    if std::env::var_os("LBTOP_UPDATE_SCREENSHOT").is_some() {
        let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/report.png");
        std::fs::copy(&png, kept).expect("keep the screenshot");
    }
}

const SHAPE: ClusterShape = ClusterShape {
    nodes: 3,
    cores: 2,
    services: 1,
    reals_per_service: 3,
};

fn options() -> WriterOptions {
    WriterOptions {
        keyframe_every: Duration::from_secs(10),
        ..WriterOptions::default()
    }
}

/// A scripted recording of `steps` one-second polls, its nodes renamed by `rename`.
fn scripted(dir: &Path, name: &str, steps: usize, rename: fn(&str) -> String) -> PathBuf {
    let mut info = scripted_info(SHAPE, &options());
    for n in &mut info.nodes {
        n.name = rename(&n.name);
    }
    let mut w = Writer::new(Vec::new(), info, options()).expect("writer");
    let mut c = ScriptedCluster::new(SHAPE, 7);
    let mut s = State::new(StateOptions::default());
    if rename("web01") == "web01" {
        record_scripted(&mut w, &mut c, &mut s, steps).expect("record");
    } else {
        for _ in 0..steps {
            for mut e in c.step() {
                if let SourceEvent::Node { name, .. } = &mut e {
                    *name = rename(name);
                }
                w.push(Item::Event(e.clone()));
                for a in s.ingest(e) {
                    w.push(Item::Alert(a));
                }
            }
            w.flush_frame().expect("frame");
        }
    }
    let p = dir.join(name);
    std::fs::write(&p, w.finish().expect("finish")).expect("write");
    p
}

/// Nodes whose source gave only their idle time (Prometheus, a large fleet): their busy time is
/// charted as such, not as user time.
#[test]
fn busy_only_nodes_are_charted_as_busy_time_not_as_user_time() {
    use lbtop::model::sample::{CpuTimes, Report};
    let d = tempfile::tempdir().expect("dir");
    let mut w = Writer::new(Vec::new(), scripted_info(SHAPE, &options()), options()).expect("w");
    let mut c = ScriptedCluster::new(SHAPE, 7);
    for _ in 0..30 {
        for mut e in c.step() {
            if let SourceEvent::Node {
                report: Report::Sample(s),
                ..
            } = &mut e
            {
                let t = s.stat.total;
                s.stat.online_cores = u32::try_from(s.stat.cpus.len()).ok();
                s.stat.cpus.clear();
                s.stat.cpu_ids.clear();
                s.stat.total = CpuTimes {
                    user: t.total() - t.idle,
                    idle: t.idle,
                    ..CpuTimes::default()
                };
                s.stat.busy_unsplit = true;
            }
            w.push(Item::Event(e));
        }
        w.flush_frame().expect("frame");
    }
    let rec = d.path().join("busy.lbrec");
    std::fs::write(&rec, w.finish().expect("finish")).expect("write");
    let (html, _) = report(&rec, d.path(), "busy.html", &[]);
    assert!(
        html.contains("busy, kinds not given by the source (busy-only)"),
        "the busy line is named"
    );
    // Described as busy time, with no kind given a mean it does not have.
    let desc = html
        .split("<desc")
        .filter_map(|d| d.split_once("</desc>").map(|(d, _)| d))
        .find(|d| d.contains("by kind (user with nice"))
        .expect("a CPU chart's description");
    assert!(
        desc.contains(
            "means over the range: busy with its kinds not given by the source (busy-only) "
        ),
        "{desc}"
    );
    let means = &desc[desc.find("means over the range:").expect("means")..];
    for kind in ["user", "system", "softirq", "iowait", "steal"] {
        assert!(!means.contains(&format!(" {kind} ")), "{kind} in {desc}");
    }
}

#[test]
fn a_damaged_recording_gives_a_report_of_what_could_be_read_saying_so() {
    let d = tempfile::tempdir().expect("dir");
    let clean = scripted(d.path(), "clean.lbrec", 60, str::to_string);
    let offs: Vec<u64> = Recording::open(&clean)
        .expect("open")
        .frames
        .iter()
        .map(|f| f.offset)
        .collect();
    let mut bytes = std::fs::read(&clean).expect("read");
    // A flipped byte in frame 25's payload (the rest of its keyframe group cannot be rebuilt),
    // and the file cut off inside frame 55, as a crash leaves it.
    bytes[offs[25] as usize + FRAME_HEADER_LEN + 4] ^= 0x40;
    bytes.truncate(offs[55] as usize + 7);
    let bad = d.path().join("damaged.lbrec");
    std::fs::write(&bad, &bytes).expect("write");
    let (html, stderr) = report(&bad, d.path(), "damaged.html", &[]);
    assert!(
        stderr.contains("warning") && stderr.contains("damaged frame"),
        "{stderr}"
    );
    assert!(
        html.contains("<strong>Damaged recording:</strong>"),
        "damage stated"
    );
    assert!(html.contains("1 damaged frame skipped"), "what was skipped");
    assert!(html.contains("cut-off frame"), "the cut-off end");
    assert_self_contained(&html);
    // What could be read is there: the nodes, the service and its charts.
    for n in ["web01", "web02", "web03", "TCP 192.0.2.10:80"] {
        assert!(html.contains(n), "{n}");
    }
    assert!(html.matches("<svg ").count() >= 10);
    // The lost samples are a gap in the lines: a load line starts again after it.
    let load_moves = |html: &str| -> usize {
        let line = html
            .split("<path class=\"l load\" d=\"")
            .nth(1)
            .expect("a load line");
        line.split('"').next().unwrap_or("").matches('M').count()
    };
    assert_eq!(load_moves(&html), 2, "one gap");
    let (clean_html, _) = report(&clean, d.path(), "clean.html", &[]);
    assert!(!clean_html.contains("Damaged recording"));
    assert_eq!(load_moves(&clean_html), 1, "no gap");
}

#[test]
fn hostile_names_from_a_recording_are_escaped_in_the_report() {
    let d = tempfile::tempdir().expect("dir");
    let rec = scripted(d.path(), "hostile.lbrec", 20, |n| {
        format!("{n}<script>alert(1)</script><img src=x onerror=alert(2)>\u{1b}[2J\"'&")
    });
    let (html, _) = report(&rec, d.path(), "hostile.html", &[]);
    assert_self_contained(&html);
    assert!(!html.contains("<img"), "markup from a host name");
    assert!(
        html.contains(
            "web01&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;\\u{1b}[2J&quot;&#39;&amp;"
        ),
        "the name shown escaped"
    );
}

#[test]
fn a_long_recording_is_downsampled_for_the_charts_and_says_so() {
    let d = tempfile::tempdir().expect("dir");
    // 2 hours at 1 s: 7,200 samples a host, more than a chart's 600 points.
    let rec = scripted(d.path(), "long.lbrec", 7200, str::to_string);
    let (html, _) = report(&rec, d.path(), "long.html", &[]);
    assert!(html.contains("Charts are downsampled"), "said on the page");
    assert!(html.contains("600 time slices"), "how much");
    assert!(html.contains("up to 12 samples"), "samples per point");
    // The tables use every sample.
    assert!(
        html.contains("<td class=\"n\">7200</td>"),
        "samples counted"
    );
    // No line has more points than the axis has slices.
    for path in html.split("<path class=\"l ").skip(1) {
        let d = path.split('"').nth(2).unwrap_or("");
        let points = d.matches(['M', 'L']).count();
        assert!(points <= 600, "{points} points in a line");
    }
}

#[test]
fn the_report_agrees_with_the_csv_export_of_the_same_recording() {
    let d = tempfile::tempdir().expect("dir");
    let (html, _) = report(Path::new(DEMO), d.path(), "demo.html", &[]);
    let out = lbtop(&["replay", DEMO, "--export", "csv"]);
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).expect("utf8");
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    for node in ["rs1", "rs2", "rs3"] {
        // Peak 1-minute load, when it was, and the samples: the same as the export's rows.
        let loads: Vec<(&str, f64)> = rows
            .iter()
            .filter(|r| r[1] == "node" && r[2] == node && !r[6].is_empty())
            .map(|r| (r[0], r[6].parse::<f64>().expect("load1")))
            .collect();
        let (at, peak) = loads.iter().fold(
            ("", f64::MIN),
            |m, &(t, l)| if l > m.1 { (t, l) } else { m },
        );
        let row = format!(
            "<td>{node}</td><td>10.77.0.1{}</td><td class=\"n\">4</td><td class=\"n\">{peak:.2}</td><td>{}</td>",
            &node[2..],
            &at[11..19]
        );
        assert!(html.contains(&row), "{node}: {row}");
        let samples = format!("<td class=\"n\">{}</td></tr>", loads.len());
        let node_row = html
            .split("<tr")
            .find(|r| r.contains(&format!("<td>{node}</td>")))
            .expect("row");
        assert!(
            node_row.contains(&samples),
            "{node}: {samples} in {node_row}"
        );
    }
    // The weight changes of rs1 behind the DR service, as the export's real-server rows show.
    let mut changes = Vec::new();
    let mut last = None;
    for r in rows
        .iter()
        .filter(|r| r[1] == "real" && r[13] == "tcp:10.77.1.100:80" && r[14] == "10.77.0.11:80")
    {
        if let Some(l) = last
            && l != r[16]
        {
            changes.push(format!("{} {l} → {}<br>", &r[0][11..19], r[16]));
        }
        last = Some(r[16]);
    }
    assert_eq!(changes.len(), 2, "a drain and a restore: {changes:?}");
    for c in changes {
        assert!(html.contains(&c), "{c}");
    }
}

#[test]
fn a_large_cluster_charts_its_fifty_hottest_nodes_and_busiest_services_and_tables_all() {
    let d = tempfile::tempdir().expect("dir");
    let shape = ClusterShape {
        nodes: 64,
        cores: 2,
        services: 70,
        reals_per_service: 1,
    };
    let mut w = Writer::new(Vec::new(), scripted_info(shape, &options()), options()).expect("w");
    let mut c = ScriptedCluster::new(shape, 7);
    let mut s = State::new(StateOptions::default());
    record_scripted(&mut w, &mut c, &mut s, 20).expect("record");
    let rec = d.path().join("wide.lbrec");
    std::fs::write(&rec, w.finish().expect("finish")).expect("write");
    let (html, _) = report(&rec, d.path(), "wide.html", &[]);
    assert_self_contained(&html);
    let (nodes, services) = html
        .split_once("<section id=\"services\">")
        .expect("both sections");
    let charts = |part: &str| part.matches("<article class=\"host\">").count();
    assert_eq!(charts(nodes), 50, "nodes charted");
    assert_eq!(charts(services), 50, "services charted");
    assert!(
        nodes.contains("Charts for the 50 of 64 nodes with the highest peak load per core"),
        "said"
    );
    assert!(
        services.contains("Charts for the 50 busiest of the 70 services"),
        "said"
    );
    // Every node and service is a row of its table.
    for i in 0..shape.nodes {
        let name = ScriptedCluster::node_name(i);
        assert!(
            nodes.contains(&format!("<td>{name}</td>")),
            "{name} in the table"
        );
    }
    // The hottest node by peak load per core is among those charted.
    let peak = |row: &str| -> f64 {
        row.split("<td class=\"n\">")
            .nth(2)
            .and_then(|c| c.split('<').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let rows: Vec<&str> = nodes.split("<tr").skip(2).collect();
    let hottest = rows
        .iter()
        .max_by(|a, b| peak(a).total_cmp(&peak(b)))
        .and_then(|r| r.split("<td>").nth(1))
        .and_then(|c| c.split('<').next())
        .expect("a hottest node");
    assert!(
        nodes.contains(&format!("<h3>{hottest}")),
        "{hottest} charted"
    );
}
