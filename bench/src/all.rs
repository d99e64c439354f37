//! `augur-bench all`: every side-by-side benchmark of issue 8 in one invocation, one
//! Markdown report and every plot in one directory.
//!
//! It runs the other subcommands themselves, one after the other, with the flags it
//! chooses: each part's flags are parsed by the same command-line parser as a typed
//! `augur-bench …` would be, so each section's "Command" line is a standalone command
//! that reproduces that section alone.
//!
//! | part | subcommand | what it measures |
//! |---|---|---|
//! | `peers` | `peers` | GET (hit) and SET against redis-server: 50 clients, pipeline 1 and 16, 64 B and 1 KiB values, 100,000 keys; throughput, p50/p99/p99.9; scaling with clients (1-1,000), value size (64 B-64 KiB) and pipeline depth (1-256); memory per cached key; PNG plots |
//! | `stores` | `stores` | read-through against PostgreSQL and RocksDB point reads; write-back at each durability mode against PostgreSQL (synchronous commit) and RocksDB (sync on and off); one request in flight per client |
//! | `stores-pipelined` | `stores --pipeline 16` | the same, 16 requests in flight per client |
//! | `stores-sequential` | `stores --clients 1` | the same, one client with one request at a time: a sequential writer, where the stores cannot group commits |
//! | `replay` | `replay` | prefetching on against off, access log on against off, under `augur replay` |
//! | `access-log` | `access-log` | access-log overhead on one server switched with CONFIG SET |
//!
//! A part whose prerequisite is missing (the augur binary, redis-server,
//! redis-benchmark or redis-cli, a PostgreSQL server) is skipped with the reason
//! printed and listed at the top of the report; a part that fails is listed with its
//! error and the parts after it still run. The report is rewritten after every part,
//! so an interrupted run keeps what it measured.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::peers::{command_line, machine, now_utc};

/// One part of the run: a subcommand with the flags `all` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Augur against redis-server, the scaling sweeps, memory per key (`peers`).
    Peers,
    /// Read-through and write-back against the stores used directly (`stores`).
    Stores,
    /// The same with 16 requests in flight per client (`stores --pipeline 16`).
    StoresPipelined,
    /// The same with one client, one request at a time (`stores --clients 1`).
    StoresSequential,
    /// Prefetching and access log on against off under a live replay (`replay`).
    Replay,
    /// Access-log overhead with CONFIG SET on one server (`access-log`).
    AccessLog,
}

impl Part {
    const ALL: [Part; 6] =
        [Part::Peers, Part::Stores, Part::StoresPipelined, Part::StoresSequential, Part::Replay, Part::AccessLog];

    fn name(self) -> &'static str {
        match self {
            Part::Peers => "peers",
            Part::Stores => "stores",
            Part::StoresPipelined => "stores-pipelined",
            Part::StoresSequential => "stores-sequential",
            Part::Replay => "replay",
            Part::AccessLog => "access-log",
        }
    }

    /// The heading of its section in the report.
    fn title(self) -> &'static str {
        match self {
            Part::Peers => "Augur against Redis, scaling, memory per key",
            Part::Stores => "Augur against its stores, 1 request in flight per client",
            Part::StoresPipelined => "Augur against its stores, 16 requests in flight per client",
            Part::StoresSequential => "Augur against its stores, one client, one request at a time",
            Part::Replay => "Prefetching and access log on against off, live replay",
            Part::AccessLog => "Access-log overhead",
        }
    }

    fn measures(self) -> &'static str {
        match self {
            Part::Peers => {
                "GET (hit) and SET against redis-server: throughput, p50 / p99 / p99.9; scaling with clients, \
                 value size and pipeline depth; memory per cached key"
            }
            Part::Stores => {
                "read-through against PostgreSQL and RocksDB point reads; write-back at each durability mode \
                 against PostgreSQL (synchronous commit) and RocksDB (sync on, off); 1 request in flight per client"
            }
            Part::StoresPipelined => "the same as `stores` with 16 requests in flight per client",
            Part::StoresSequential => {
                "the same as `stores` with one client and one request at a time (a sequential writer: no \
                 concurrent commits for a store to group)"
            }
            Part::Replay => "prefetching on against off, access log on against off, under `augur replay`",
            Part::AccessLog => "access-log overhead, switched with CONFIG SET on one server",
        }
    }

    /// The subcommand and its flags, without the output and binary paths. Full runs
    /// aim at under 45 minutes in all on 2 cores; `--quick` at a few minutes.
    fn flags(self, quick: bool) -> Vec<&'static str> {
        match (self, quick) {
            (Part::Peers, _) => {
                let mut f = vec!["peers", "--clients", "50", "--pipelines", "1,16", "--sizes", "64,1KiB"];
                f.extend(["--tests", "get,set", "--sweep-clients", "1,10,50,100,500,1000"]);
                f.extend(["--sweep-sizes", "64,1K,4K,16K,64K", "--sweep-pipelines", "1,4,16,64,256"]);
                f.extend(if quick {
                    ["--rounds", "1", "--requests", "5000", "--keyspace", "10000"]
                } else {
                    ["--rounds", "3", "--requests", "100000", "--keyspace", "100000"]
                });
                f
            }
            (Part::Stores | Part::StoresPipelined | Part::StoresSequential, _) => {
                let mut f = vec!["stores", "--compare", "read-through,write-back"];
                f.extend(match self {
                    Part::StoresPipelined => ["--clients", "16", "--pipeline", "16"],
                    Part::StoresSequential => ["--clients", "1", "--pipeline", "1"],
                    _ => ["--clients", "16", "--pipeline", "1"],
                });
                f.extend(if quick {
                    ["--rounds", "1", "--seconds", "1", "--keyspace", "10000"]
                } else {
                    ["--rounds", "3", "--seconds", "3", "--keyspace", "100000"]
                });
                f
            }
            (Part::Replay, _) => {
                let mut f = vec!["replay", "--variants", "none,markov,ml,log-off"];
                f.extend(if quick {
                    ["--rounds", "1", "--requests", "20000", "--keys", "5000"]
                } else {
                    ["--rounds", "3", "--requests", "200000", "--keys", "50000"]
                });
                f
            }
            (Part::AccessLog, true) => vec!["access-log", "--rounds", "1", "--requests", "20000"],
            (Part::AccessLog, false) => vec!["access-log", "--rounds", "5", "--requests", "300000"],
        }
    }
}

/// Options of `augur-bench all`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for report.md, each part's own Markdown and the PNG plots
    /// [default: bench-results/<UTC timestamp>/].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Smoke run: one round, few requests and keys, a few minutes in all; it shows that
    /// every part runs, its figures are not for quoting.
    #[arg(long)]
    quick: bool,
    /// Parts to run, comma-separated; the report lists the others as not requested.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "peers,stores,stores-pipelined,stores-sequential,replay,access-log"
    )]
    parts: Vec<Part>,
    /// PostgreSQL URL for the stores parts [default: as `stores`: AUGUR_PG_URL,
    /// 127.0.0.1:5432, or a private cluster started with initdb].
    #[arg(long, alias = "url", value_name = "URL")]
    pg: Option<String>,
    /// The augur binary [default: next to this one].
    #[arg(long)]
    augur: Option<PathBuf>,
    /// The redis-server binary (the peers part).
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    /// Let the CPUs go idle during every part (by default each part holds idle off
    /// through /dev/cpu_dma_latency when permitted; see bench/src/idle.rs).
    #[arg(long)]
    allow_cpu_idle: bool,
}

/// Where a part stands.
#[derive(Debug, Clone)]
enum Status {
    NotRequested,
    Pending,
    Skipped(String),
    Failed(String),
    /// Its Markdown section, as the subcommand wrote it.
    Done(String),
}

#[derive(Debug)]
struct Outcome {
    part: Part,
    status: Status,
    /// The equivalent standalone command, once known.
    command: Option<Vec<String>>,
    elapsed: Option<Duration>,
}

/// What the report's header says about the whole run.
struct Run {
    out: PathBuf,
    quick: bool,
    started: String,
    finished: Option<(String, Duration)>,
    commit: String,
    outcomes: Vec<Outcome>,
}

/// Runs every requested part in turn and writes `report.md` into the output directory.
/// Fails (after writing the report) when a part failed; skipped parts do not fail it.
pub fn run(args: Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => default_out()?,
    };
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let report = out.join("report.md");
    let mut run = Run {
        out: out.clone(),
        quick: args.quick,
        started: now_utc(),
        finished: None,
        commit: git_commit(),
        outcomes: Part::ALL
            .iter()
            .map(|&part| Outcome {
                part,
                status: if args.parts.contains(&part) { Status::Pending } else { Status::NotRequested },
                command: None,
                elapsed: None,
            })
            .collect(),
    };
    eprintln!("all: {} run, writing into {}", if args.quick { "quick (smoke)" } else { "full" }, out.display());
    write_report(&report, &run)?;

    let augur = crate::peers::augur_binary(args.augur.as_deref())?;
    let augur_missing = (!is_executable(&augur)).then(|| {
        format!(
            "no augur binary at {} (build it: cargo build --release -p augur-engine --bin augur, or pass --augur)",
            augur.display()
        )
    });
    // Resolved once, when the first stores part needs it.
    let mut pg: Option<Result<String, String>> = None;
    let program = std::env::args().next().unwrap_or_else(|| "augur-bench".into());

    for i in 0..run.outcomes.len() {
        let part = run.outcomes[i].part;
        if !matches!(run.outcomes[i].status, Status::Pending) {
            continue;
        }
        let mut flags: Vec<String> = part.flags(args.quick).iter().map(|s| s.to_string()).collect();
        let missing = match part {
            Part::Peers => augur_missing
                .clone()
                .or_else(|| missing_program(&args.redis_server, "redis-server", "apt-get install redis-server"))
                .or_else(|| missing_tools(&["redis-benchmark", "redis-cli"])),
            Part::Stores | Part::StoresPipelined | Part::StoresSequential => augur_missing
                .clone()
                .or_else(|| missing_tools(&["redis-cli"]))
                .or_else(|| match pg.get_or_insert_with(|| postgres(runtime, args.pg.as_deref())) {
                    Ok(url) => {
                        flags.extend(["--url".to_string(), url.clone()]);
                        None
                    }
                    Err(why) => Some(why.clone()),
                }),
            Part::Replay => augur_missing.clone().or_else(|| missing_tools(&["redis-cli"])),
            Part::AccessLog => augur_missing.clone().or_else(|| missing_tools(&["redis-benchmark", "redis-cli"])),
        };
        if let Some(why) = missing {
            eprintln!("all: SKIP {}: {why}", part.name());
            run.outcomes[i].status = Status::Skipped(why);
            write_report(&report, &run)?;
            continue;
        }
        let markdown = out.join(format!("{}.md", part.name()));
        flags.extend(["--markdown".to_string(), markdown.display().to_string()]);
        if part == Part::Peers {
            flags.extend(["--plot".to_string(), out.join("peers.png").display().to_string()]);
            flags.extend(["--redis-server".to_string(), args.redis_server.display().to_string()]);
        }
        flags.extend(["--augur".to_string(), augur.display().to_string()]);
        if args.allow_cpu_idle {
            flags.push("--allow-cpu-idle".to_string());
        }
        let mut argv = vec![program.clone()];
        argv.extend(flags);
        eprintln!("all: [{}] {}: `{}`", part.name(), part.measures(), command_line(&argv));
        // A stale section from an earlier run into the same directory must not pass for this one.
        let _ = std::fs::remove_file(&markdown);
        let started = Instant::now();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| run_part(&argv, runtime)))
            .unwrap_or_else(|panic| bail!("panicked: {}", panic_message(panic.as_ref())))
            .and_then(|()| {
                std::fs::read_to_string(&markdown).with_context(|| format!("cannot read {}", markdown.display()))
            });
        let outcome = &mut run.outcomes[i];
        outcome.command = Some(argv);
        outcome.elapsed = Some(started.elapsed());
        outcome.status = match result {
            Ok(section) => Status::Done(section),
            Err(e) => {
                eprintln!("all: FAILED {}: {e:#}", part.name());
                Status::Failed(format!("{e:#}"))
            }
        };
        eprintln!("all: [{}] finished in {:.1} min", part.name(), started.elapsed().as_secs_f64() / 60.0);
        write_report(&report, &run)?;
    }
    run.finished = Some((now_utc(), t0.elapsed()));
    write_report(&report, &run)?;

    println!(
        "augur-bench all: {} run in {:.1} min",
        if args.quick { "quick" } else { "full" },
        t0.elapsed().as_secs_f64() / 60.0
    );
    for o in &run.outcomes {
        let time = o.elapsed.map_or(String::new(), |d| format!(" ({:.1} min)", d.as_secs_f64() / 60.0));
        println!("  {:<17} {}{time}", o.part.name(), status_line(&o.status));
    }
    for plot in plots(&out) {
        println!("  plot: {}", out.join(plot).display());
    }
    println!("  report: {}", report.display());
    let failed: Vec<&str> =
        run.outcomes.iter().filter(|o| matches!(o.status, Status::Failed(_))).map(|o| o.part.name()).collect();
    if !failed.is_empty() {
        bail!("{} failed (see {})", failed.join(", "), report.display());
    }
    Ok(())
}

/// Parses `argv` as a command line of this program and runs that subcommand, telling it
/// the command line to report.
fn run_part(argv: &[String], runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    use clap::Parser as _;
    let cli = crate::Cli::try_parse_from(argv)?;
    let command = argv.to_vec();
    match cli.command {
        crate::Command::Peers(mut a) => {
            a.report.command = command;
            crate::peers::run(*a)
        }
        crate::Command::Stores(mut a) => {
            a.report.command = command;
            runtime.block_on(crate::stores::run(*a))
        }
        crate::Command::Replay(mut a) => {
            a.report.command = command;
            crate::replay::run(a)
        }
        crate::Command::AccessLog(mut a) => {
            a.report.command = command;
            crate::access_log::run(a)
        }
        other => bail!("augur-bench all does not run {other:?}"),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// `bench-results/<UTC timestamp>`, with a `.gitignore` in `bench-results/` so that a
/// run inside a checkout leaves no untracked files behind.
fn default_out() -> anyhow::Result<PathBuf> {
    let base = PathBuf::from("bench-results");
    std::fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
    let ignore = base.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "# augur-bench all's output\n*\n")?;
    }
    let stamp = Command::new("date")
        .args(["-u", "+%Y%m%dT%H%M%SZ"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            format!("unix-{secs}")
        });
    Ok(base.join(stamp))
}

/// The checkout's short commit, and whether tracked files differ from it.
fn git_commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) if !hash.is_empty() => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(changes) if !changes.is_empty() => format!("`{hash}` plus uncommitted changes to tracked files"),
            Some(_) => format!("`{hash}`"),
            None => format!("`{hash}` (working tree state unknown)"),
        },
        _ => "unknown (`git rev-parse --short HEAD` failed in the working directory)".into(),
    }
}

fn is_executable(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `program` as given when it names a path, else the first match on PATH.
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return is_executable(program).then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| is_executable(p))
}

fn missing_program(program: &Path, what: &str, install: &str) -> Option<String> {
    find_program(program).is_none().then(|| format!("no {what} binary ({} not found; {install})", program.display()))
}

fn missing_tools(tools: &[&str]) -> Option<String> {
    tools.iter().find_map(|t| missing_program(Path::new(t), t, "apt-get install redis-tools"))
}

/// The PostgreSQL URL the stores parts use, checked with a query: `--pg`, else what
/// `augur-bench stores` would pick. Err: why none answers.
fn postgres(runtime: &tokio::runtime::Runtime, url: Option<&str>) -> Result<String, String> {
    let url = match url {
        Some(u) => u.to_string(),
        // Panics with instructions when none can be found or started.
        None => std::thread::spawn(augur_adapters::testing::postgres_url)
            .join()
            .map_err(|panic| format!("no PostgreSQL server: {}", panic_message(panic.as_ref())))?,
    };
    let probe = async {
        let mut config: tokio_postgres::Config = url.parse()?;
        config.connect_timeout(Duration::from_secs(5));
        let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
        let conn = tokio::spawn(conn);
        client.simple_query("SELECT 1").await?;
        drop(client);
        let _ = conn.await;
        anyhow::Ok(())
    };
    match runtime.block_on(async { tokio::time::timeout(Duration::from_secs(10), probe).await }) {
        Ok(Ok(())) => Ok(url),
        Ok(Err(e)) => Err(format!("no PostgreSQL reachable at {url}: {e:#} (pass --pg URL)")),
        Err(_) => Err(format!("no PostgreSQL reachable at {url}: no answer within 10 s (pass --pg URL)")),
    }
}

fn status_line(status: &Status) -> String {
    match status {
        Status::NotRequested => "not requested (--parts)".into(),
        Status::Pending => "not run yet".into(),
        Status::Skipped(why) => format!("SKIPPED: {why}"),
        Status::Failed(why) => format!("FAILED: {}", why.lines().next().unwrap_or_default()),
        Status::Done(_) => "done".into(),
    }
}

/// PNG files in `dir`, by name.
fn plots(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.ends_with(".png")).collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn write_report(path: &Path, run: &Run) -> anyhow::Result<()> {
    std::fs::write(path, render(run)).with_context(|| format!("cannot write {}", path.display()))
}

fn render(run: &Run) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Augur side by side (`augur-bench all`)\n");
    let _ = writeln!(out, "- Machine: {}", machine());
    let _ = match &run.finished {
        Some((at, took)) => writeln!(out, "- Date: {} to {} ({:.1} min)", run.started, at, took.as_secs_f64() / 60.0),
        None => writeln!(out, "- Date: started {}, still running", run.started),
    };
    let _ = writeln!(out, "- Command: `{}`", command_line(&[]));
    let _ = writeln!(out, "- Commit: {}", run.commit);
    let _ = writeln!(
        out,
        "- Mode: {}",
        if run.quick {
            "`--quick`, a smoke run (one round, few requests and keys): it shows that every part runs; \
             do not quote its figures"
        } else {
            "full (the rounds and requests of each command below)"
        }
    );
    let listed = |pick: fn(&Status) -> Option<&String>| -> Vec<String> {
        run.outcomes
            .iter()
            .filter_map(|o| pick(&o.status).map(|why| format!("  - `{}`: {}", o.part.name(), why.replace('\n', " "))))
            .collect()
    };
    for (label, items) in [
        (
            "Skipped",
            listed(|s| match s {
                Status::Skipped(why) => Some(why),
                _ => None,
            }),
        ),
        (
            "Failed",
            listed(|s| match s {
                Status::Failed(why) => Some(why),
                _ => None,
            }),
        ),
    ] {
        if items.is_empty() {
            let _ = writeln!(out, "- {label}: none");
        } else {
            let _ = writeln!(out, "- {label}:\n{}", items.join("\n"));
        }
    }
    let not_requested: Vec<&str> =
        run.outcomes.iter().filter(|o| matches!(o.status, Status::NotRequested)).map(|o| o.part.name()).collect();
    if !not_requested.is_empty() {
        let _ = writeln!(out, "- Not requested (`--parts`): {}", not_requested.join(", "));
    }
    let _ = writeln!(out, "\n| part | measures | status | minutes |\n|---|---|---|---:|");
    for o in &run.outcomes {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            o.part.name(),
            o.part.measures(),
            status_line(&o.status).replace('|', "\\|"),
            o.elapsed.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() / 60.0))
        );
    }
    let plots = plots(&run.out);
    if !plots.is_empty() {
        let _ = writeln!(out, "\nPlots (next to this file): {}", plots.join(", "));
    }
    for o in &run.outcomes {
        let _ = writeln!(out, "\n## {} (`{}`)\n", o.part.title(), o.part.name());
        // A finished section names its own command.
        let _ = match (&o.status, &o.command) {
            (Status::Done(section), _) => writeln!(out, "{}", section.trim_end()),
            (Status::Failed(why), Some(argv)) => writeln!(
                out,
                "**Failed**, no figures. Command: `{}`\n\n```\n{}\n```",
                command_line(argv),
                why.trim_end()
            ),
            (other, _) => writeln!(out, "No figures: {}.", status_line(other)),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    /// Every part's flags parse as the subcommand they name, full and quick, with the
    /// paths `all` appends (and `--allow-cpu-idle`, which it passes on).
    #[test]
    fn every_part_parses_as_its_subcommand() {
        for part in Part::ALL {
            for quick in [false, true] {
                let mut argv: Vec<String> = vec!["augur-bench".into()];
                argv.extend(part.flags(quick).iter().map(|s| s.to_string()));
                argv.extend(["--markdown".into(), "/tmp/x.md".into(), "--augur".into(), "/bin/true".into()]);
                if quick {
                    argv.push("--allow-cpu-idle".into());
                }
                let cli = crate::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
                let ok = matches!(
                    (part, &cli.command),
                    (Part::Peers, crate::Command::Peers(_))
                        | (Part::Stores | Part::StoresPipelined | Part::StoresSequential, crate::Command::Stores(_))
                        | (Part::Replay, crate::Command::Replay(_))
                        | (Part::AccessLog, crate::Command::AccessLog(_))
                );
                assert!(ok, "{argv:?} parsed as {:?}", cli.command);
            }
        }
    }

    #[test]
    fn the_report_lists_skipped_and_failed_parts_and_keeps_every_section() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outcome = |part, status| Outcome { part, status, command: None, elapsed: None };
        let run = Run {
            out: dir.path().to_path_buf(),
            quick: true,
            started: "then".into(),
            finished: Some(("now".into(), Duration::from_secs(90))),
            commit: "`abc1234`".into(),
            outcomes: vec![
                outcome(Part::Peers, Status::Done("### Augur against Redis\n\n| a |\n".into())),
                outcome(Part::Stores, Status::Skipped("no PostgreSQL reachable at postgres://x".into())),
                outcome(Part::StoresPipelined, Status::NotRequested),
                outcome(Part::StoresSequential, Status::NotRequested),
                outcome(Part::Replay, Status::Failed("augur replay failed\nmore".into())),
                outcome(Part::AccessLog, Status::Pending),
            ],
        };
        let text = render(&run);
        assert!(text.contains("- Skipped:\n  - `stores`: no PostgreSQL reachable at postgres://x"), "{text}");
        assert!(text.contains("- Failed:\n  - `replay`: augur replay failed more"), "{text}");
        assert!(text.contains("- Not requested (`--parts`): stores-pipelined"), "{text}");
        assert!(text.contains("### Augur against Redis"), "{text}");
        for part in Part::ALL {
            let heading = format!("\n## {} (`{}`)\n", part.title(), part.name());
            assert!(text.contains(&heading), "no section for {}: {text}", part.name());
        }
    }

    #[test]
    fn programs_are_found_on_path_or_by_path() {
        assert!(find_program(Path::new("sh")).is_some());
        assert!(find_program(Path::new("/bin/sh")).is_some());
        assert!(find_program(Path::new("no-such-program-augur")).is_none());
        assert!(missing_tools(&["sh"]).is_none());
        assert!(missing_tools(&["no-such-program-augur"]).is_some_and(|why| why.contains("redis-tools")));
    }
}
