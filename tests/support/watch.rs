//! Runs SSH sources the way the TUI does — a current-thread tokio runtime where the host tasks,
//! the state and a 50 ms render timer drawing into a `TestBackend` all share one thread — and
//! records what happened, so a test can wait for status changes and check that frames kept coming
//! while hosts failed.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lbtop::app::{State, StateOptions};
use lbtop::config::Config;
use lbtop::model::sample::{HostStatus, Report, SourceEvent};
use lbtop::source::remote::{RemoteSource, Role};
use lbtop::source::ssh::{HostSpec, SshArgs, SshContext, SshSettings, SshTuning};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::{mpsc, oneshot};

/// Short timeouts so that the fault tests run in seconds.
pub fn fast_tuning() -> SshTuning {
    SshTuning {
        connect_timeout: Duration::from_secs(2),
        poll_timeout: Duration::from_millis(1200),
        router_poll_timeout: Duration::from_secs(3),
        keepalive_interval: Duration::from_secs(1),
        keepalive_max: 2,
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_millis(800),
        max_reply_bytes: 1 << 20,
    }
}

pub const INTERVAL: Duration = Duration::from_millis(250);

/// SSH settings for an isolated HOME and an ssh config file.
pub fn context(home: &Path, config: &Path, options: &[&str], tuning: SshTuning) -> Arc<SshContext> {
    let settings = SshSettings::load_from(
        &SshArgs {
            config_file: Some(config.to_path_buf()),
            options: options.iter().map(|s| s.to_string()).collect(),
        },
        home,
        None,
        "root".into(),
    )
    .expect("ssh settings");
    SshContext::new(settings, tuning)
}

/// A node source for `spec` (`[user@]host[:port]` or an alias), named `name`.
pub fn node(ctx: &Arc<SshContext>, name: &str, spec: &str) -> RemoteSource {
    let spec = HostSpec::parse(spec).expect("host spec");
    let resolved = ctx.settings.resolve(&spec, None).expect("resolve");
    RemoteSource::new(
        name.to_string(),
        resolved.hostname.clone(),
        resolved,
        Role::Node,
        ctx.clone(),
    )
}

/// What one host did.
#[derive(Debug, Clone, Default)]
pub struct HostLog {
    pub samples: u64,
    /// Every status reported, in order, with its message; a sample after a failure adds `Ok`.
    pub statuses: Vec<(HostStatus, Option<String>)>,
    pub last_sample: Option<Instant>,
}

impl HostLog {
    pub fn status(&self) -> Option<HostStatus> {
        self.statuses.last().map(|(s, _)| *s)
    }

    pub fn message(&self) -> String {
        self.statuses
            .last()
            .and_then(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// The statuses without repeats.
    pub fn transitions(&self) -> Vec<HostStatus> {
        let mut out: Vec<HostStatus> = Vec::new();
        for (s, _) in &self.statuses {
            if out.last() != Some(s) {
                out.push(*s);
            }
        }
        out
    }
}

#[derive(Debug, Default)]
pub struct Log {
    pub hosts: HashMap<String, HostLog>,
    pub frames: u64,
    pub max_frame_gap: Duration,
    /// Each node's status as the state shows it, at the last frame.
    pub statuses_seen_in_state: HashMap<String, HostStatus>,
}

/// The running sources; stops them when dropped.
pub struct Watch {
    pub log: Arc<Mutex<Log>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    pub fn start(sources: Vec<RemoteSource>, interval: Duration) -> Watch {
        if let Ok(filter) = std::env::var("LBTOP_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        let log = Arc::new(Mutex::new(Log::default()));
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let shared = log.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let (tx, mut rx) = mpsc::channel::<SourceEvent>(1024);
                let mut state = State::new(StateOptions::default());
                let mut handles = Vec::new();
                for s in sources {
                    state.add_node(&s.name, &s.host);
                    handles.push(s.spawn(interval, tx.clone(), None));
                }
                drop(tx);
                let config = Config::default();
                let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("backend");
                let mut render = tokio::time::interval(Duration::from_millis(50));
                let mut last_frame = Instant::now();
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        ev = rx.recv() => {
                            let Some(ev) = ev else { break };
                            record(&shared, &ev);
                            state.ingest(ev);
                        }
                        _ = render.tick() => {
                            terminal
                                .draw(|f| lbtop::ui::draw(f, &state, &config.theme, &config.keymap))
                                .expect("draw");
                            let now = Instant::now();
                            let mut l = shared.lock().expect("log");
                            l.frames += 1;
                            let gap = now - last_frame;
                            if l.frames > 1 && gap > l.max_frame_gap {
                                l.max_frame_gap = gap;
                            }
                            for n in state.nodes() {
                                l.statuses_seen_in_state.insert(n.name.clone(), n.status);
                            }
                            last_frame = now;
                        }
                    }
                }
                drop(handles);
            });
        });
        Watch {
            log,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn host(&self, name: &str) -> HostLog {
        self.log
            .lock()
            .expect("log")
            .hosts
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    pub fn samples(&self, name: &str) -> u64 {
        self.host(name).samples
    }

    /// Waits until `name` reports `status` (a sample counts as `Ok`); panics with the host's log
    /// after `limit`.
    pub fn wait_status(&self, name: &str, status: HostStatus, limit: Duration) -> HostLog {
        let deadline = Instant::now() + limit;
        loop {
            let h = self.host(name);
            if h.status() == Some(status) {
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: no {status:?} within {limit:?}; log: {:?}",
                h.statuses
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `name` has `n` more samples than `from`.
    pub fn wait_samples(&self, name: &str, from: u64, n: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let h = self.host(name);
            if h.samples >= from + n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {} samples, wanted {} within {limit:?}; log: {:?}",
                h.samples,
                from + n,
                h.statuses
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Frames drawn so far and the longest gap between two of them.
    pub fn frames(&self) -> (u64, Duration) {
        let l = self.log.lock().expect("log");
        (l.frames, l.max_frame_gap)
    }
}

fn record(log: &Arc<Mutex<Log>>, ev: &SourceEvent) {
    let (name, status) = match ev {
        SourceEvent::Node { name, report, .. } => (name.clone(), report_status(report)),
        SourceEvent::Router { host, report } => (host.clone(), report_status(report)),
    };
    let mut l = log.lock().expect("log");
    let h = l.hosts.entry(name).or_default();
    match status {
        None => {
            h.samples += 1;
            h.last_sample = Some(Instant::now());
            if h.status() != Some(HostStatus::Ok) {
                h.statuses.push((HostStatus::Ok, None));
            }
        }
        Some(s) => h.statuses.push(s),
    }
}

fn report_status<S>(r: &Report<S>) -> Option<(HostStatus, Option<String>)> {
    match r {
        Report::Sample(_) => None,
        Report::Status {
            status, message, ..
        } => Some((*status, message.clone())),
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
