//! CI's kernel compile check: every CUDA source compiles with NVRTC to PTX and to
//! cubin for sm_80 (A100) and sm_90 (H100/H200) without a GPU, and the registers
//! and spills of every kernel are printed (`cargo test -- --nocapture` shows the
//! table; it is also written to `$CARGO_TARGET_TMPDIR/kernel-resources.md`).
//!
//! NVRTC missing is a failure here, not a skip: CI installs it through `./x setup`,
//! and a check that passes because it could not run would hide broken kernels.

use augur_kernels::nvrtc::{self, Resources, Source, Target, SOURCES};
use augur_kernels::KernelError;

const ARCHS: [u32; 2] = [80, 90];

fn require_nvrtc() {
    if let Err(e) = nvrtc::ensure_nvrtc() {
        panic!("{e}\nThe kernel compile check needs NVRTC: run ./x setup (or ./x test), which installs it.");
    }
}

fn compile_or_fail(source: &Source, target: Target) -> nvrtc::Compiled {
    match nvrtc::compile(source, target, &[]) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn every_kernel_compiles_to_ptx_and_cubin_for_sm80_and_sm90() {
    require_nvrtc();
    let (major, minor) = nvrtc::version().unwrap();
    println!("NVRTC {major}.{minor}");
    let mut rows: Vec<Resources> = Vec::new();
    let mut source_of = std::collections::HashMap::new();
    for source in SOURCES {
        for cc in ARCHS {
            let ptx = compile_or_fail(source, Target::Ptx(cc));
            let text = String::from_utf8(ptx.image.clone()).expect("PTX is text");
            for kernel in source.kernels {
                assert!(
                    text.contains(&format!(".entry {kernel}(")),
                    "{}: kernel {kernel} missing from the PTX for compute_{cc}",
                    source.name
                );
            }
            // The GPU machines' driver (580, CUDA 13.0) loads PTX up to ISA 9.0; a
            // newer NVRTC would emit PTX it refuses, so the pin is checked here.
            let isa = text.lines().find(|l| l.starts_with(".version")).unwrap_or_default();
            let version: Vec<u32> =
                isa.trim_start_matches(".version").trim().split('.').filter_map(|p| p.parse().ok()).collect();
            assert!(version.len() == 2, "{}: no .version line in the PTX", source.name);
            assert!(
                (version[0], version[1]) <= (9, 0),
                "{}: PTX {isa} is newer than driver 580 (CUDA 13.0) loads; pin NVRTC at 12.9 or 13.0",
                source.name
            );
            println!("{} compute_{cc}: {} bytes of PTX, {isa}", source.name, ptx.image.len());

            let cubin = compile_or_fail(source, Target::Cubin(cc));
            assert_eq!(&cubin.image[..4], b"\x7fELF", "{}: sm_{cc} cubin is not an ELF image", source.name);
            println!("{} sm_{cc}: {} bytes of cubin", source.name, cubin.image.len());

            // Registers and spills: ptxas on the PTX when it is installed, else the
            // same report from NVRTC's own ptxas pass over the cubin.
            let report = match nvrtc::ptxas_path() {
                Some(ptxas) => nvrtc::ptxas_resources(&ptxas, &ptx.image, cc).unwrap(),
                None => {
                    let verbose = nvrtc::compile(source, Target::Cubin(cc), &["--ptxas-options=-v"]).unwrap();
                    nvrtc::parse_ptxas_report(&verbose.log)
                }
            };
            for kernel in source.kernels {
                let row = report
                    .iter()
                    .find(|r| r.kernel == *kernel)
                    .unwrap_or_else(|| panic!("no register report for {kernel} on sm_{cc}: {report:?}"));
                assert!(row.registers > 0, "{kernel}: ptxas reported no registers");
                source_of.insert(kernel.to_string(), source.name);
                rows.push(Resources { arch: format!("sm_{cc}"), ..row.clone() });
            }
        }
    }
    let mut table = String::from("| kernel | file | arch | registers | stack B | spill stores B | spill loads B |\n");
    table.push_str("|---|---|---|---|---|---|---|\n");
    for r in &rows {
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.kernel, source_of[&r.kernel], r.arch, r.registers, r.stack, r.spill_stores, r.spill_loads
        ));
    }
    println!("\n{table}");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernel-resources.md");
    std::fs::write(&out, &table).unwrap();
    println!("written to {}", out.display());
    // Spills and stack frames mean local-memory traffic on every probe.
    let spilling: Vec<&Resources> =
        rows.iter().filter(|r| r.spill_stores > 0 || r.spill_loads > 0 || r.stack > 0).collect();
    assert!(spilling.is_empty(), "kernels use local memory (spills or a stack frame): {spilling:?}");
}

#[test]
fn a_broken_kernel_reports_its_file_and_line() {
    require_nvrtc();
    let broken = Source {
        name: "broken_probe.cu",
        code: "#include \"bucket.cuh\"\n\nextern \"C\" __global__ void probe(u64* out) {\n    out[0] = undefined_name;\n}\n",
        kernels: &["probe"],
    };
    for target in [Target::Ptx(80), Target::Cubin(90)] {
        match nvrtc::compile(&broken, target, &[]) {
            Err(KernelError::Compile { file, arch, log }) => {
                assert_eq!(file, "broken_probe.cu");
                assert_eq!(arch, target.arch());
                assert!(log.contains("broken_probe.cu(4)"), "log lacks file and line:\n{log}");
                assert!(log.contains("undefined_name"), "log lacks the culprit:\n{log}");
                let shown = KernelError::Compile { file, arch, log }.to_string();
                assert!(shown.contains("broken_probe.cu(4)"), "the error's message must carry the log: {shown}");
            }
            other => panic!("expected a compile error, got {other:?}"),
        }
    }
}

#[test]
fn an_error_in_a_header_names_the_header() {
    require_nvrtc();
    // Without the -D layout constants bucket.cuh stops at its own #error line.
    let source = Source { name: "uses_header.cu", code: "#include \"bucket.cuh\"\n", kernels: &[] };
    let err = nvrtc::compile(&source, Target::Ptx(80), &["-UAUGUR_SLOTS"]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("bucket.cuh("), "{text}");
    assert!(text.contains("compile through augur-kernels"), "{text}");
}
