//! The lbtop binary: parse the command line, set up file logging, run. `anyhow` lives only here.

use std::io::{BufWriter, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use lbtop::app::State;
use lbtop::app::playback::Range;
use lbtop::cli::{Cli, Commands, ExportFormat, RecordArgs, ReplayArgs, ReportArgs};
use lbtop::config::{Config, Overrides};
use lbtop::control::plan::ActionKind;
use lbtop::control::run;
use lbtop::record::Player;
use lbtop::runtime::{self, RunError};

/// Exit status for bad input: an invalid config, an unusable option.
const EXIT_USAGE: u8 = 2;

fn log_path(cli: &Cli) -> Option<PathBuf> {
    if let Some(p) = &cli.log_file {
        return Some(p.clone());
    }
    let dirs = directories::ProjectDirs::from("", "", "lbtop")?;
    let dir = dirs
        .state_dir()
        .map_or_else(|| dirs.data_local_dir().to_path_buf(), PathBuf::from);
    Some(dir.join("lbtop.log"))
}

/// How many log lines may wait to be written.
const LOG_QUEUE_LINES: usize = 4096;

/// Logs go to a file, never to the terminal. A log that cannot be opened is not fatal.
fn init_logging(cli: &Cli) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let path = log_path(cli)?;
    if let Some(dir) = path.parent() {
        lbtop::owner_only::create_dir_all(dir).ok()?;
    }
    let mut options = lbtop::owner_only::options();
    options.create(true).append(true);
    let file = lbtop::fsutil::open_to_write(&path, options).ok()?;
    // Lines wait in a queue for the writing thread. The default queue of 128,000 lines costs every
    // start 4 MB of memory written (2 ms, most of a `--once` on a small router); lbtop logs a few
    // lines a poll, and more than this many waiting are dropped, not waited for.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("LBTOP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .ok()?;
    Some(guard)
}

/// The command line, and whether it (or LBTOP_ROUTER) named the router: otherwise the config
/// file's `router` applies.
fn parse_cli() -> (Cli, bool) {
    use clap::{CommandFactory, FromArgMatches, parser::ValueSource};
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let sources = match matches.subcommand() {
        Some(("record", sub)) => sub,
        _ => &matches,
    };
    let given = sources.try_get_raw("router").is_ok_and(|v| v.is_some())
        && sources.value_source("router") != Some(ValueSource::DefaultValue);
    (cli, given)
}

fn main() -> ExitCode {
    let (mut cli, router_given) = parse_cli();
    match &cli.command {
        Some(Commands::Completions { shell }) => {
            lbtop::cli::write_completions(*shell, &mut std::io::stdout().lock());
            return ExitCode::SUCCESS;
        }
        Some(Commands::Agent) => {
            // No log file and nothing but frames on stdout: this runs on the router.
            let mut input = std::io::stdin().lock();
            // Each frame leaves in one write: `stdout()` is line-buffered and would cut a frame
            // at its newline bytes into several writes, each an SSH packet of its own.
            let stdout = match std::io::stdout().as_fd().try_clone_to_owned() {
                Ok(fd) => std::fs::File::from(fd),
                Err(e) => {
                    eprintln!("lbtop agent: stdout: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let mut output = std::io::BufWriter::with_capacity(1 << 16, stdout);
            return match lbtop::control::agent::serve(&mut input, &mut output) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(EXIT_USAGE)
                }
            };
        }
        Some(Commands::Man) => {
            return match lbtop::cli::write_man(&mut std::io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("lbtop: writing the manual page: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let _guard = init_logging(&cli);
    if let Some(
        command @ (Commands::Drain { .. } | Commands::Weight { .. } | Commands::Restore { .. }),
    ) = &cli.command
    {
        return run_action(&cli, command);
    }
    // `--once --interval 0s` takes a single sample; the config layer only knows live intervals.
    let single_sample = cli.once && cli.sources.interval.is_some_and(|d| d.is_zero());
    let overrides = Overrides {
        interval: cli.source_args().interval.filter(|_| !single_sample),
        theme: cli.theme.clone(),
        no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
    };
    let mut config = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lbtop: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if single_sample {
        config.interval = std::time::Duration::ZERO;
    }
    // The config file's `router` where the command line (or LBTOP_ROUTER) names none.
    if !router_given && let Some(router) = &config.router {
        match &mut cli.command {
            Some(lbtop::cli::Commands::Record(r)) => r.sources.router = router.clone(),
            _ => cli.sources.router = router.clone(),
        }
    }
    match run(&cli, &config) {
        Ok(()) => ExitCode::SUCCESS,
        // The terminal is restored and a recording closed; the status says which signal, as a
        // shell reports a program killed by it.
        Err(e) => {
            if let Some(RunError::Signal(number)) = e.downcast_ref::<RunError>() {
                tracing::info!("{e:#}");
                return ExitCode::from(lbtop::runtime::signals::exit_status(*number));
            }
            tracing::error!("{e:#}");
            eprintln!("lbtop: {e:#}");
            match e.downcast_ref::<RunError>() {
                Some(RunError::Unsupported(_) | RunError::NoTerminal) => ExitCode::from(EXIT_USAGE),
                Some(RunError::Record(r)) if r.is_bad_file() => ExitCode::from(EXIT_USAGE),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// `lbtop drain|weight|restore`: prints the change on success; exit 1 when refused or failed,
/// 2 on bad input.
fn run_action(cli: &Cli, command: &Commands) -> ExitCode {
    let (target, kind, weight, force) = match command {
        Commands::Drain { target, force } => (target, ActionKind::Drain, None, *force),
        Commands::Weight { target, weight } => (target, ActionKind::Reweight, Some(*weight), false),
        Commands::Restore { target } => (target, ActionKind::Restore, None, false),
        Commands::Record(_)
        | Commands::Replay(_)
        | Commands::Report(_)
        | Commands::Completions { .. }
        | Commands::Man
        | Commands::Agent => return ExitCode::from(EXIT_USAGE),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lbtop: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run::run_action(
        &target.target(),
        kind,
        weight,
        force,
        cli.read_only,
    )) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("lbtop: {e}");
            match e {
                run::ActionError::Usage(_) => ExitCode::from(EXIT_USAGE),
                run::ActionError::Control(_) => ExitCode::FAILURE,
            }
        }
    }
}

fn run(cli: &Cli, config: &Config) -> anyhow::Result<()> {
    match &cli.command {
        Some(Commands::Record(args)) => return record(cli, args, config),
        Some(Commands::Replay(args)) => return replay(args, config),
        Some(Commands::Report(args)) => return report(args, config),
        Some(
            Commands::Drain { .. }
            | Commands::Weight { .. }
            | Commands::Restore { .. }
            | Commands::Completions { .. }
            | Commands::Man
            | Commands::Agent,
        )
        | None => {}
    }
    if !cli.once {
        runtime::require_terminal()?;
    }
    let sources = runtime::sources_for(&cli.sources, config)?;
    // A captured snapshot (`--proc-root`) is read-only: no control is made for it, whatever
    // machine lbtop runs on.
    let snapshot = cli.sources.proc_root.is_some();
    let mut options = runtime::state_options(config, cli.read_only);
    options.snapshot = snapshot;
    let state = State::new(options);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if cli.once {
        let state = rt.block_on(runtime::once(sources, state, config.interval));
        rt.shutdown_background();
        // The same bytes as a line of `replay --export json`.
        let mut line = Vec::with_capacity(1 << 16);
        lbtop::report::write_snapshot(&state, &mut line);
        line.push(b'\n');
        let mut out = std::io::stdout().lock();
        out.write_all(&line)
            .and_then(|()| out.flush())
            .context("writing JSON")?;
        return Ok(());
    }
    let audit =
        lbtop::control::audit::AuditLog::default_path().map(lbtop::control::audit::AuditLog::at);
    let controls = if cli.read_only || snapshot {
        None
    } else {
        runtime::Controls::for_router(&cli.sources, audit, config)
    };
    let result = rt.block_on(runtime::run_tui_recording(
        sources,
        state,
        config,
        cli.record.as_deref(),
        controls,
    ));
    rt.shutdown_background();
    result?;
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs `future` to its end, then leaves the runtime without waiting for its blocking tasks: a
/// poll stuck in a read (a hung network file system, a device) must not keep lbtop alive after
/// `q` or the end of `--once`. Whatever must be finished (the terminal, a recording) is finished
/// inside `future`.
fn run_to_end<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let rt = runtime()?;
    let output = rt.block_on(future);
    rt.shutdown_background();
    Ok(output)
}

/// `lbtop record FILE`: headless, until `--duration` or SIGINT/SIGTERM.
fn record(cli: &Cli, args: &RecordArgs, config: &Config) -> anyhow::Result<()> {
    let sources = runtime::sources_for(&args.sources, config)?;
    let state = State::new(runtime::state_options(config, cli.read_only));
    let status = run_to_end(runtime::recording::record_headless(
        sources,
        state,
        config.interval,
        &args.file,
        args.duration,
    ))??;
    // A `--duration 3s` recording covers 3 s, not the 2 s between its first and last frame; a
    // frame that raced the deadline does not make it longer.
    let covered = status
        .covered(config.interval)
        .min(args.duration.unwrap_or(std::time::Duration::MAX));
    eprintln!(
        "lbtop: recorded {} frames, {} in {}, to {}",
        status.frames,
        bytesize::ByteSize::b(status.bytes).display().si(),
        humantime::format_duration(lbtop::model::time::round_to_seconds(covered)),
        args.file.display()
    );
    Ok(())
}

/// `lbtop replay FILE`: the TUI, or `--export json|csv`.
fn replay(args: &ReplayArgs, config: &Config) -> anyhow::Result<()> {
    let mut player = Player::open(&args.file).map_err(RunError::from)?;
    let info = player.recording.info().clone();
    let mut options = runtime::state_options(config, true);
    options.interval = std::time::Duration::from_millis(info.interval_ms.max(1));
    let mut state = State::new(options);
    let file = args.file.display().to_string();
    if let Some(format) = args.export {
        let range = range_of(&args.from, &args.to, &player.recording)?;
        lbtop::app::playback::declare(&mut state, &info);
        let result = match &args.output {
            Some(path) => {
                let f = output_file(path, &args.file)?;
                export(
                    format,
                    &mut player,
                    &mut state,
                    range,
                    &mut BufWriter::new(f),
                )
            }
            None => export(
                format,
                &mut player,
                &mut state,
                range,
                &mut BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
            ),
        };
        match result {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => return Err(e).context("writing the export"),
        }
    } else {
        runtime::require_terminal()?;
        run_to_end(runtime::replay::run(player, state, config, &file))??;
        return Ok(());
    }
    if let Some(w) = player.damage_report() {
        if player.decoded_frames == 0 {
            anyhow::bail!("{file}: no frame could be read: {w}");
        }
        eprintln!("lbtop: warning: {file}: {w}");
    }
    Ok(())
}

/// `--from`/`--to` as a range of the recording, checked by `check_range`.
fn range_of(
    from: &Option<String>,
    to: &Option<String>,
    recording: &lbtop::record::Recording,
) -> Result<Range, RunError> {
    let start = recording.start();
    let at = |text: &Option<String>| -> Result<_, RunError> {
        text.as_deref()
            .map(|t| {
                lbtop::model::time::parse(t, start, start)
                    .map_err(|e| RunError::Unsupported(format!("--from/--to: {e}")))
            })
            .transpose()
    };
    let range = Range {
        from: at(from)?,
        to: at(to)?,
    };
    check_range(&range, recording)?;
    Ok(range)
}

/// `lbtop report FILE`: the HTML report of `--from`..`--to`, played as the exports play.
fn report(args: &ReportArgs, config: &Config) -> anyhow::Result<()> {
    let mut player = Player::open(&args.file).map_err(RunError::from)?;
    let info = player.recording.info().clone();
    let range = range_of(&args.from, &args.to, &player.recording)?;
    let mut options = runtime::state_options(config, true);
    options.interval = std::time::Duration::from_millis(info.interval_ms.max(1));
    let mut state = State::new(options);
    lbtop::app::playback::declare(&mut state, &info);
    let file = args.file.display().to_string();
    let about = lbtop::report::html::ReportInfo {
        file: args
            .file
            .file_name()
            .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned()),
    };
    let result = match &args.output {
        Some(path) => {
            let f = output_file(path, &args.file)?;
            let mut out = BufWriter::new(f);
            lbtop::report::html::write(&mut player, &mut state, range, &about, &mut out)
        }
        None => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            lbtop::report::html::write(&mut player, &mut state, range, &about, &mut out)
        }
    };
    match result {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("writing the report"),
    }
    if let Some(w) = player.damage_report() {
        if player.decoded_frames == 0 {
            anyhow::bail!("{file}: no frame could be read: {w}");
        }
        eprintln!("lbtop: warning: {file}: {w} (stated in the report)");
    }
    Ok(())
}

/// The file an export or a report is written to (`-o`), emptied only once it is known not to be
/// the recording being read: the same file under another name, a link to it or the recording
/// itself would otherwise be wiped before a frame of it was read.
fn output_file(path: &std::path::Path, input: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    let mut options = lbtop::owner_only::options();
    options.create(true);
    let f = lbtop::fsutil::open_to_write(path, options)
        .with_context(|| format!("creating {}", path.display()))?;
    let out = f
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    let same =
        std::fs::metadata(input).is_ok_and(|inp| inp.dev() == out.dev() && inp.ino() == out.ino());
    if same {
        anyhow::bail!(
            "{} is the recording being read ({}); give -o another file",
            path.display(),
            input.display()
        );
    }
    // A pipe or a device (`-o /dev/null`, `-o >(gzip)`) has nothing to empty.
    if out.file_type().is_file() {
        f.set_len(0)
            .with_context(|| format!("emptying {}", path.display()))?;
    }
    Ok(f)
}

/// An export range must hold a frame: a reversed one, or one outside the recording, is a usage
/// error (exit 2) rather than an empty output that looks like success.
fn check_range(range: &Range, recording: &lbtop::record::Recording) -> Result<(), RunError> {
    let clock = |t: lbtop::model::sample::Timestamp| t.to_string();
    if let (Some(from), Some(to)) = (range.from, range.to)
        && from > to
    {
        return Err(RunError::Unsupported(format!(
            "--from {} is after --to {}: nothing to export",
            clock(from),
            clock(to)
        )));
    }
    let inside = recording.frames.iter().any(|f| {
        range.from.is_none_or(|from| f.time >= from) && range.to.is_none_or(|to| f.time <= to)
    });
    if !inside {
        return Err(RunError::Unsupported(format!(
            "no frame between {} and {} (the recording runs from {} to {}): nothing to export",
            range.from.map_or_else(|| "the start".into(), clock),
            range.to.map_or_else(|| "the end".into(), clock),
            clock(recording.start()),
            clock(recording.end())
        )));
    }
    Ok(())
}

fn export(
    format: ExportFormat,
    player: &mut Player,
    state: &mut State,
    range: Range,
    out: &mut impl Write,
) -> std::io::Result<lbtop::app::playback::Summary> {
    match format {
        ExportFormat::Json => lbtop::report::export::json(player, state, range, out),
        ExportFormat::Csv => lbtop::report::export::csv(player, state, range, out),
    }
}
