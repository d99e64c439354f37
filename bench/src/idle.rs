//! Keeping the CPUs out of deep idle while a benchmark runs.
//!
//! A request-at-a-time client sleeps between replies, and so does the server's
//! thread. On a virtual machine a vCPU that goes idle halts, and waking it costs
//! tens of microseconds: that wake-up, not the work, then sets the request rate,
//! and any variant that keeps a vCPU busy (a predictor thread scoring) looks
//! faster for it. Measured on the dev VM with `augur-bench replay`: `--prefetch
//! none` ran at 10,859 req/s with idle allowed and 38,064 req/s with it held off,
//! and with idle allowed the ml variant ran 2.3x faster than none at a similar hit
//! ratio.
//!
//! Linux's PM QoS interface holds idle off: while a process keeps
//! `/dev/cpu_dma_latency` open with 0 written to it, CPUs only poll when idle
//! (what tuned's latency-performance profile does). It needs root; without it the
//! benchmark runs anyway and its report says so.

use std::fs::File;
use std::io::Write;

/// Held for the duration of a benchmark; dropping it restores the idle policy.
#[derive(Debug)]
pub struct IdleHold {
    _file: Option<File>,
    note: String,
}

impl IdleHold {
    /// Asks for no idle latency unless `allow_idle`; never fails.
    pub fn acquire(allow_idle: bool) -> Self {
        if allow_idle {
            return Self { _file: None, note: "allowed (--allow-cpu-idle)".into() };
        }
        let held = File::options().write(true).open("/dev/cpu_dma_latency").and_then(|mut f| {
            f.write_all(&0i32.to_ne_bytes())?;
            Ok(f)
        });
        match held {
            Ok(f) => Self { _file: Some(f), note: "held off (/dev/cpu_dma_latency = 0)".into() },
            Err(e) => {
                eprintln!("note: cannot hold CPU idle off through /dev/cpu_dma_latency ({e}); request rates then include wake-up latency");
                Self { _file: None, note: format!("allowed (cannot open /dev/cpu_dma_latency: {e})") }
            }
        }
    }

    /// For the report's header.
    pub fn note(&self) -> &str {
        &self.note
    }
}
