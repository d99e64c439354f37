//! Compiling the CUDA sources at run time with NVRTC.
//!
//! Why at run time: the GPU machines have no CUDA toolkit and no Rust toolchain,
//! and a binary built here must run on whatever device it meets. NVRTC compiles
//! each source for the device's exact compute capability to a cubin (native code,
//! nothing left for the driver to JIT); PTX is the fallback when NVRTC does not
//! know that architecture. The same functions compile every kernel for sm_80 and
//! sm_90 in CI, where there is no GPU at all (`tests/nvrtc_compile.rs`).
//!
//! NVRTC is found through `AUGUR_NVRTC_LIB_DIR` (set by `./x`, which installs
//! NVRTC 12.9 from PyPI): the library there is loaded by full path first, so that
//! cudarc's later load by name finds it already loaded even when
//! `LD_LIBRARY_PATH` does not name that directory. 12.9 rather than newer on
//! purpose: the GPU machines run driver 580 (CUDA 13.0), which cannot load PTX
//! from a newer NVRTC.

use std::ffi::{c_char, c_int, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cudarc::nvrtc::{result, sys};

use crate::error::{KernelError, KernelResult};

/// One CUDA source file, embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// File name (as it appears in compiler messages).
    pub name: &'static str,
    /// Its text.
    pub code: &'static str,
    /// The `extern "C"` kernels it defines.
    pub kernels: &'static [&'static str],
}

/// Headers the sources include, served to NVRTC from memory.
pub const HEADERS: &[Source] = &[Source { name: "bucket.cuh", code: include_str!("../cuda/bucket.cuh"), kernels: &[] }];

/// The fingerprint index kernels.
pub const FP_TABLE: Source = Source {
    name: "fp_table.cu",
    code: include_str!("../cuda/fp_table.cu"),
    kernels: &["fp_insert", "fp_find", "fp_erase"],
};

/// The full-key kernels.
pub const KV: Source = Source {
    name: "kv.cu",
    code: include_str!("../cuda/kv.cu"),
    kernels: &["kv_find", "kv_erase", "kv_scatter", "kv_gather"],
};

/// Every kernel source.
pub const SOURCES: &[Source] = &[FP_TABLE, KV];

/// What to compile to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Native code for `sm_XY` (`XY` = major * 10 + minor).
    Cubin(u32),
    /// PTX for `compute_XY`, JIT-compiled by the driver at load.
    Ptx(u32),
}

impl Target {
    /// NVRTC's `--gpu-architecture` value.
    pub fn arch(self) -> String {
        match self {
            Self::Cubin(cc) => format!("sm_{cc}"),
            Self::Ptx(cc) => format!("compute_{cc}"),
        }
    }
}

/// A compiled source.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// What it was compiled to.
    pub target: Target,
    /// The cubin, or the PTX text (without a trailing NUL).
    pub image: Vec<u8>,
    /// NVRTC's log (warnings; with `-Xptxas=-v`, resource usage).
    pub log: String,
}

static NVRTC: OnceLock<Result<(), String>> = OnceLock::new();

/// Libraries in `dir` whose file name starts with `prefix` (the `.alt` variants,
/// NVRTC's alternative-ABI builds, are skipped).
fn libraries(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)))
        .collect();
    found.sort();
    found
}

fn load_nvrtc() -> Result<(), String> {
    let dir = std::env::var_os("AUGUR_NVRTC_LIB_DIR").map(PathBuf::from);
    if let Some(dir) = &dir {
        // The builtins first: libnvrtc loads them by name on its first compile.
        for path in libraries(dir, "libnvrtc-builtins.so").into_iter().chain(libraries(dir, "libnvrtc.so")) {
            // SAFETY: loading NVIDIA's NVRTC runs only its library initialisers,
            // which have no preconditions; the handle is leaked on purpose so the
            // library stays loaded for the life of the process, as cudarc expects.
            match unsafe { libloading::Library::new(&path) } {
                Ok(lib) => std::mem::forget(lib),
                Err(e) => return Err(format!("cannot load {}: {e}", path.display())),
            }
        }
    }
    // SAFETY: only tries to dlopen the candidate names; returns a bool.
    if unsafe { sys::is_culib_present() } {
        return Ok(());
    }
    Err(format!(
        "libnvrtc.so.13 / libnvrtc.so.12 not found (AUGUR_NVRTC_LIB_DIR={}, LD_LIBRARY_PATH={}); \
         run ./x setup, which installs NVRTC 12.9 under ~/.cache/augur and exports both",
        dir.map_or("unset".into(), |d| d.display().to_string()),
        std::env::var("LD_LIBRARY_PATH").unwrap_or_else(|_| "unset".into())
    ))
}

/// Makes sure NVRTC can be called; every other function here calls this first.
pub fn ensure_nvrtc() -> KernelResult<()> {
    NVRTC.get_or_init(load_nvrtc).clone().map_err(|reason| KernelError::NvrtcUnavailable { reason })
}

fn nvrtc_err(call: &'static str) -> impl FnOnce(result::NvrtcError) -> KernelError {
    move |e| KernelError::Nvrtc { call, code: format!("{:?}", e.0) }
}

/// NVRTC's version, e.g. `(12, 9)`.
pub fn version() -> KernelResult<(i32, i32)> {
    ensure_nvrtc()?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: both pointers are valid for one write each.
    unsafe { sys::nvrtcVersion(&mut major, &mut minor) }.result().map_err(nvrtc_err("nvrtcVersion"))?;
    Ok((major, minor))
}

/// The `sm_XY` architectures this NVRTC compiles for, as `XY` numbers.
pub fn supported_archs() -> KernelResult<Vec<u32>> {
    ensure_nvrtc()?;
    let mut n: c_int = 0;
    // SAFETY: one write to a valid pointer.
    unsafe { sys::nvrtcGetNumSupportedArchs(&mut n) }.result().map_err(nvrtc_err("nvrtcGetNumSupportedArchs"))?;
    let mut archs = vec![0 as c_int; n.max(0) as usize];
    // SAFETY: `archs` has room for the `n` values NVRTC just announced.
    unsafe { sys::nvrtcGetSupportedArchs(archs.as_mut_ptr()) }.result().map_err(nvrtc_err("nvrtcGetSupportedArchs"))?;
    Ok(archs.into_iter().map(|a| a as u32).collect())
}

/// Destroys the program however compilation ends.
struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: the program was created by nvrtcCreateProgram and is destroyed
        // exactly once, here. A failure to free leaks a little host memory.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

fn cstring(s: &str, what: &str) -> KernelResult<CString> {
    CString::new(s).map_err(|_| KernelError::Invalid(format!("{what} contains a NUL byte")))
}

/// The options every build uses: the layout constants and the target.
pub fn options(target: Target) -> Vec<String> {
    let mut opts = vec![format!("--gpu-architecture={}", target.arch()), "--std=c++17".to_string()];
    opts.extend(crate::layout::cuda_defines());
    opts
}

/// Compiles `source` (with [`HEADERS`] available to `#include`) for `target`.
/// `extra` options follow the standard ones. A compile error comes back as
/// [`KernelError::Compile`] with NVRTC's log, which names file and line.
pub fn compile(source: &Source, target: Target, extra: &[&str]) -> KernelResult<Compiled> {
    ensure_nvrtc()?;
    let code = cstring(source.code, source.name)?;
    let name = cstring(source.name, "file name")?;
    let header_code: Vec<CString> = HEADERS.iter().map(|h| cstring(h.code, h.name)).collect::<KernelResult<_>>()?;
    let header_names: Vec<CString> =
        HEADERS.iter().map(|h| cstring(h.name, "header name")).collect::<KernelResult<_>>()?;
    let code_ptrs: Vec<*const c_char> = header_code.iter().map(|c| c.as_ptr()).collect();
    let name_ptrs: Vec<*const c_char> = header_names.iter().map(|c| c.as_ptr()).collect();
    let mut raw: sys::nvrtcProgram = std::ptr::null_mut();
    // SAFETY: every pointer refers to a NUL-terminated string that outlives the
    // program (they live until this function returns; the program is destroyed
    // by `Program`'s drop before that), and the two header arrays have
    // `HEADERS.len()` entries each.
    unsafe {
        sys::nvrtcCreateProgram(
            &mut raw,
            code.as_ptr(),
            name.as_ptr(),
            HEADERS.len() as c_int,
            code_ptrs.as_ptr(),
            name_ptrs.as_ptr(),
        )
    }
    .result()
    .map_err(nvrtc_err("nvrtcCreateProgram"))?;
    let program = Program(raw);
    let mut opts = options(target);
    opts.extend(extra.iter().map(|s| s.to_string()));
    // SAFETY: `program.0` is a live program from nvrtcCreateProgram.
    let compiled = unsafe { result::compile_program(program.0, &opts) };
    // SAFETY: as above; the log is valid after a compile attempt, failed or not.
    let log_raw = unsafe { result::get_program_log(program.0) }.map_err(nvrtc_err("nvrtcGetProgramLog"))?;
    let log_bytes: Vec<u8> = log_raw.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
    let log = String::from_utf8_lossy(&log_bytes).trim().to_string();
    if compiled.is_err() {
        return Err(KernelError::Compile { file: source.name.to_string(), arch: target.arch(), log });
    }
    let image = match target {
        Target::Cubin(_) => {
            let mut size = 0usize;
            // SAFETY: a successfully compiled program; one write to `size`.
            unsafe { sys::nvrtcGetCUBINSize(program.0, &mut size) }.result().map_err(nvrtc_err("nvrtcGetCUBINSize"))?;
            let mut cubin = vec![0u8; size];
            // SAFETY: `cubin` has the `size` bytes NVRTC reported.
            unsafe { sys::nvrtcGetCUBIN(program.0, cubin.as_mut_ptr().cast()) }
                .result()
                .map_err(nvrtc_err("nvrtcGetCUBIN"))?;
            cubin
        }
        Target::Ptx(_) => {
            // SAFETY: a successfully compiled program.
            let ptx = unsafe { result::get_ptx(program.0) }.map_err(nvrtc_err("nvrtcGetPTX"))?;
            ptx.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect()
        }
    };
    Ok(Compiled { target, image, log })
}

/// Registers and spills of one kernel, as ptxas reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Kernel name.
    pub kernel: String,
    /// Architecture it was assembled for.
    pub arch: String,
    /// Registers per thread.
    pub registers: u32,
    /// Stack frame bytes.
    pub stack: u32,
    /// Bytes spilled to local memory (stores).
    pub spill_stores: u32,
    /// Bytes reloaded from spills.
    pub spill_loads: u32,
}

fn number_before(line: &str, marker: &str) -> Option<u32> {
    let head = &line[..line.find(marker)?];
    head.split(|c: char| !c.is_ascii_digit()).rfind(|s| !s.is_empty())?.parse().ok()
}

/// Parses `ptxas -v` output (from ptxas itself or NVRTC's `-Xptxas=-v` log).
pub fn parse_ptxas_report(text: &str) -> Vec<Resources> {
    let mut out: Vec<Resources> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let kernel = rest.split('\'').next().unwrap_or_default().to_string();
            let arch = rest.split("for '").nth(1).and_then(|a| a.split('\'').next()).unwrap_or_default().to_string();
            out.push(Resources { kernel, arch, ..Resources::default() });
        } else if let Some(cur) = out.last_mut() {
            if line.contains("bytes stack frame") {
                cur.stack = number_before(line, "bytes stack frame").unwrap_or(0);
                cur.spill_stores = number_before(line, "bytes spill stores").unwrap_or(0);
                cur.spill_loads = number_before(line, "bytes spill loads").unwrap_or(0);
            } else if line.contains("Used ") && line.contains(" registers") {
                cur.registers = number_before(line, " registers").unwrap_or(0);
            }
        }
    }
    out
}

/// The ptxas binary: `AUGUR_PTXAS`, else `ptxas` on the `PATH`.
pub fn ptxas_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AUGUR_PTXAS").map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(p);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|d| d.join("ptxas"))
        .find(|p| p.is_file())
}

/// Runs `ptxas -v` on PTX text for `sm_XY` and returns its per-kernel report.
pub fn ptxas_resources(ptxas: &Path, ptx: &[u8], cc: u32) -> KernelResult<Vec<Resources>> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let file = std::env::temp_dir().join(format!(
        "augur-ptxas-{}-{}.ptx",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&file, ptx).map_err(|e| KernelError::Ptxas(format!("writing {}: {e}", file.display())))?;
    let output = std::process::Command::new(ptxas)
        .arg("-v")
        .arg(format!("-arch=sm_{cc}"))
        .arg(&file)
        .arg("-o")
        .arg("/dev/null")
        .output();
    let _ = std::fs::remove_file(&file);
    let output = output.map_err(|e| KernelError::Ptxas(format!("running {}: {e}", ptxas.display())))?;
    let text = String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(KernelError::Ptxas(format!("{} failed ({}):\n{text}", ptxas.display(), output.status)));
    }
    Ok(parse_ptxas_report(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_ptxas_report() {
        let text = "ptxas info    : 0 bytes gmem\n\
            ptxas info    : Compiling entry function 'fp_insert' for 'sm_80'\n\
            ptxas info    : Function properties for fp_insert\n\
            \x20   8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads\n\
            ptxas info    : Used 38 registers, used 0 barriers, 420 bytes cmem[0]\n\
            ptxas info    : Compiling entry function 'fp_find' for 'sm_80'\n\
            ptxas info    : Function properties for fp_find\n\
            \x20   0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n\
            ptxas info    : Used 20 registers, used 0 barriers, 392 bytes cmem[0]\n";
        let r = parse_ptxas_report(text);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            Resources {
                kernel: "fp_insert".into(),
                arch: "sm_80".into(),
                registers: 38,
                stack: 8,
                spill_stores: 4,
                spill_loads: 12
            }
        );
        assert_eq!((r[1].kernel.as_str(), r[1].registers, r[1].spill_loads), ("fp_find", 20, 0));
    }
}
