//! `augur-bench gpu-serve`: `augur serve --tier gpu` against `augur serve --tier cpu`
//! on the same machine, in the same run, with the same redis-benchmark commands:
//! what the GPU tier costs or gains end to end, through the RESP server.
//!
//! Both servers run for the whole benchmark, each on RocksDB in its own temporary
//! directory, with the same `--cache-size` and `--durability`. Each cell (command,
//! pipeline depth, value size) runs `redis-benchmark -c C -n N -r K -t get|set -P P -d D`
//! against one and then the other, alternating which goes first, for `--rounds` rounds;
//! the table reports medians and the ratio GPU / CPU. As in `augur-bench peers`, GETs
//! read cached keys (the key space is loaded into both servers and flushed, so it is
//! in the tier, before a value size's GET cells) and every run starts once neither
//! server has anything dirty.
//!
//! Without a usable GPU (no driver, no device) it prints `SKIP: no GPU (…)` and exits
//! 0 before starting anything. A driver and device that fail otherwise (NVRTC missing,
//! `--tier gpu` refusing to start) are errors.
//!
//! `--markdown PATH` writes the section for docs/RESULTS.md.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use augur_kernels::{GpuDevice, KernelError};

use crate::peers::{
    alternate, flags_suffix, free_port, load_line, ratio_table, section_header, Cell, Load, Measurement, ReportArgs,
    Server,
};

/// Options of `augur-bench gpu-serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    load: Load,
    /// One more flag for both `augur serve`s (repeatable), e.g. --augur-arg=--access-log=false.
    #[arg(long = "augur-arg", allow_hyphen_values = true)]
    augur_args: Vec<String>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

/// Every run of one cell, per tier.
#[derive(Debug, Default)]
struct Runs {
    gpu: Vec<Measurement>,
    cpu: Vec<Measurement>,
}

/// The GPU as `GpuDevice::open` sees it, for the report; `None` (after printing
/// the SKIP line) when there is none.
fn probe() -> anyhow::Result<Option<String>> {
    match GpuDevice::open(0) {
        Ok(dev) => Ok(Some(dev.info().to_string())),
        Err(KernelError::NoGpu { reason }) => {
            println!("SKIP: no GPU ({reason}): gpu-serve started no server and ran nothing");
            Ok(None)
        }
        Err(e) => bail!("a CUDA driver and device are present but the GPU table cannot start: {e}"),
    }
}

/// Starts `augur serve --tier TIER` on RocksDB in `dir`; its log goes to
/// `dir/serve.log`, quoted when it does not come up.
fn start(augur: &Path, dir: &Path, tier: &str, name: &'static str, args: &Args) -> anyhow::Result<Server> {
    let port = free_port()?;
    let log_path = dir.join("serve.log");
    let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut server = Server {
        child: Command::new(augur)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--tier", tier])
            .args(["--cache-size", &args.load.cache_size, "--durability", &args.load.durability])
            .arg("--wal-dir")
            .arg(dir.join("wal"))
            .arg("--store")
            .arg(format!("rocksdb:{}", dir.join("rocksdb").display()))
            .args(&args.augur_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", augur.display()))?,
        port,
        name,
    };
    server.wait_ready().with_context(|| {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        format!(
            "{name} did not come up; the end of its log:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    })?;
    Ok(server)
}

fn cells(args: &Args) -> Vec<Cell> {
    let mut cells = Vec::new();
    for &size in &args.load.sizes {
        for &pipeline in &args.load.pipelines {
            for &test in &args.load.tests {
                cells.push(Cell { size, test, clients: args.load.clients, pipeline });
            }
        }
    }
    // By value size (one load each), GETs before SETs within a size: a SET run
    // rewrites values of the same size, so the loaded key space stays as it was.
    cells.sort();
    cells.dedup();
    cells
}

/// Runs the benchmark and prints (and optionally writes) the Markdown section.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.load.rounds == 0 || args.load.requests == 0 {
        bail!("--rounds and --requests must be at least 1");
    }
    let Some(gpu_info) = probe()? else { return Ok(()) };
    let augur_bin = crate::peers::augur_binary(args.report.augur.as_deref())?;
    let idle = args.report.hold_cpu_idle();
    let (gpu_dir, cpu_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let gpu = start(&augur_bin, gpu_dir.path(), "gpu", "augur --tier gpu", &args)?;
    let cpu = start(&augur_bin, cpu_dir.path(), "cpu", "augur --tier cpu", &args)?;

    let cells = cells(&args);
    let measured = alternate("gpu-serve", &cells, &args.load, [&gpu, &cpu], |keyspace, size| {
        for server in [&gpu, &cpu] {
            server.load(keyspace, size)?;
            server.wait_flushed()?;
        }
        Ok(())
    })?;
    let results: HashMap<Cell, Runs> =
        measured.into_iter().map(|(cell, [gpu, cpu])| (cell, Runs { gpu, cpu })).collect();
    drop(gpu);
    drop(cpu);

    let text = markdown(&args, &gpu_info, &cells, &results, idle.note());
    println!("{text}");
    if let Some(path) = &args.report.markdown {
        std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("gpu-serve: wrote {}", path.display());
    }
    Ok(())
}

fn markdown(args: &Args, gpu_info: &str, cells: &[Cell], results: &HashMap<Cell, Runs>, idle: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### GPU tier against CPU tier, end to end (redis-benchmark, same machine, same run)\n");
    section_header(&mut out, &args.report, idle);
    let _ = writeln!(out, "- GPU: {gpu_info}");
    let _ = writeln!(
        out,
        "- Servers: `augur serve --tier gpu` and `augur serve --tier cpu`, each on RocksDB in its own \
         temporary directory, `--cache-size {} --durability {}`{}. GETs read cached keys: the key space \
         was loaded and flushed into the tier before the GET runs.",
        args.load.cache_size,
        args.load.durability,
        flags_suffix(&args.augur_args)
    );
    load_line(&mut out, &args.load, cells.iter());
    let _ = writeln!(out);
    ratio_table(&mut out, ["CPU", "GPU"], cells, |cell| results.get(cell).map(|runs| [&runs.cpu[..], &runs.gpu[..]]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::Test;
    use clap::Parser as _;

    /// Without a driver the run is a SKIP that starts nothing: the augur binary it is
    /// given does not exist, and it still succeeds.
    #[test]
    fn without_a_gpu_it_skips_and_starts_nothing() {
        if augur_kernels::gpu::driver_present() {
            eprintln!("a CUDA driver is present: the skip path is not what runs here");
            return;
        }
        let cli =
            crate::Cli::try_parse_from(["augur-bench", "gpu-serve", "--augur", "/nonexistent/augur"]).expect("parses");
        let crate::Command::GpuServe(args) = cli.command else { panic!("parsed as {:?}", cli.command) };
        run(args).expect("a run without a GPU is a SKIP, not an error");
    }

    #[test]
    fn cells_put_gets_before_sets_within_a_size() {
        let cli = crate::Cli::try_parse_from(["augur-bench", "gpu-serve", "--sizes", "1KiB,64", "--pipelines", "16,1"])
            .expect("parses");
        let crate::Command::GpuServe(args) = cli.command else { panic!("parsed as {:?}", cli.command) };
        let order: Vec<(u64, Test, u32)> = cells(&args).iter().map(|c| (c.size, c.test, c.pipeline)).collect();
        assert_eq!(
            order,
            [
                (64, Test::Get, 1),
                (64, Test::Get, 16),
                (64, Test::Set, 1),
                (64, Test::Set, 16),
                (1024, Test::Get, 1),
                (1024, Test::Get, 16),
                (1024, Test::Set, 1),
                (1024, Test::Set, 16),
            ]
        );
    }

    #[test]
    fn the_table_reports_medians_and_the_gpu_cpu_ratio() {
        let cli = crate::Cli::try_parse_from(["augur-bench", "gpu-serve", "--rounds", "3"]).expect("parses");
        let crate::Command::GpuServe(args) = cli.command else { panic!("parsed as {:?}", cli.command) };
        let cell = Cell { size: 64, test: Test::Get, clients: 50, pipeline: 1 };
        let m = |rps, p99| Measurement { rps, p50_ms: 0.5, p99_ms: p99, p999_ms: None };
        let runs = Runs { gpu: vec![m(50.0, 4.0), m(30.0, 2.0), m(40.0, 3.0)], cpu: vec![m(100.0, 1.0); 3] };
        let text = markdown(&args, "test GPU", &[cell], &HashMap::from([(cell, runs)]), "held off");
        assert!(text.contains("| GET | 50 | 1 | 64 B | 100 | 40 | **0.40** |"), "{text}");
        assert!(text.contains("| 3.00 |"), "p99 ratio: {text}");
        assert!(text.contains("- GPU: test GPU"), "{text}");
    }
}
