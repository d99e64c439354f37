//! The crate's one error type.
//!
//! The GPU being absent is an expected outcome, not a failure of the program: the
//! engine turns [`KernelError::NoGpu`] into one log line and serves from the CPU
//! tier. Everything else names what failed and, for compile errors, carries the
//! compiler's log with file and line.

/// Result alias for this crate.
pub type KernelResult<T> = Result<T, KernelError>;

/// What can go wrong building, loading or running the table.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// No usable GPU: driver library missing, no device, or the device cannot be
    /// opened. `reason` is one line fit for a log.
    #[error("no CUDA GPU: {reason}")]
    NoGpu {
        /// Why, in one line.
        reason: String,
    },
    /// NVRTC (the run-time CUDA compiler) could not be loaded.
    #[error("NVRTC not loadable: {reason}")]
    NvrtcUnavailable {
        /// What was tried.
        reason: String,
    },
    /// A kernel source failed to compile. `log` is NVRTC's log, whose lines start
    /// with `file(line): error: …`.
    #[error("compiling {file} for {arch} failed:\n{log}")]
    Compile {
        /// The source file name given to NVRTC.
        file: String,
        /// The target, e.g. `sm_90` or `compute_80`.
        arch: String,
        /// The compiler's log.
        log: String,
    },
    /// An NVRTC call other than compilation failed.
    #[error("NVRTC {call} failed: {code}")]
    Nvrtc {
        /// Which call.
        call: &'static str,
        /// The NVRTC status.
        code: String,
    },
    /// A CUDA driver call failed after the GPU was found.
    #[error("CUDA driver: {context}: {source}")]
    Driver {
        /// What was being done.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: cudarc::driver::DriverError,
    },
    /// The caller broke a documented precondition (e.g. a zero fingerprint).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A table configuration that cannot work (too few buckets, arena smaller than a
    /// page, …).
    #[error("invalid table configuration: {0}")]
    Config(String),
    /// Running `ptxas` for the resource report failed.
    #[error("ptxas: {0}")]
    Ptxas(String),
}

impl KernelError {
    pub(crate) fn driver(context: &'static str) -> impl FnOnce(cudarc::driver::DriverError) -> KernelError {
        move |source| KernelError::Driver { context, source }
    }
}
