//! A CPU-share bound for the background training thread.
//!
//! `nice 10` alone lets training take a whole core whenever the scheduler has
//! one to spare, and on a small machine that core is the one the server's next
//! burst needs. So the training thread also paces itself: at natural checkpoints
//! (every mini-batch, every tree-ensemble member, every model) it compares the
//! CPU time it has used with the wall time since it started, and sleeps until
//! its share is back under the bound. The check is one `clock_gettime` of the
//! thread's CPU clock (vDSO, no system call), so checkpoints can be frequent.
//!
//! The pacer is per thread and off unless [`limit_this_thread`] was called, so
//! the simulator's inline training and `augur predict` run at full speed.

use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    /// (share, wall start, CPU time at start) of this thread's bound.
    static PACER: Cell<Option<(f64, Instant, Duration)>> = const { Cell::new(None) };
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec we pass, which lives here.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Bounds the calling thread to `share` of one core (0 < share < 1) from now
/// on; 1 or more removes the bound.
pub fn limit_this_thread(share: f64) {
    let pacer = (share > 0.0 && share < 1.0).then(|| (share, Instant::now(), thread_cpu_time()));
    PACER.with(|p| p.set(pacer));
}

/// A checkpoint: sleeps as long as needed for this thread's CPU time since
/// [`limit_this_thread`] to be at most its share of the wall time.
pub fn pace() {
    let Some((share, wall_start, cpu_start)) = PACER.with(Cell::get) else { return };
    let cpu = thread_cpu_time().saturating_sub(cpu_start);
    let allowed_wall = cpu.div_f64(share);
    let wall = wall_start.elapsed();
    if allowed_wall > wall {
        std::thread::sleep(allowed_wall - wall);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(d: Duration) {
        let start = thread_cpu_time();
        while thread_cpu_time().saturating_sub(start) < d {
            std::hint::black_box(0u64);
        }
    }

    #[test]
    fn a_paced_thread_uses_at_most_its_share_of_the_wall_clock() {
        let (cpu, wall) = std::thread::spawn(|| {
            limit_this_thread(0.25);
            let (cpu0, wall0) = (thread_cpu_time(), Instant::now());
            for _ in 0..20 {
                spin(Duration::from_millis(5));
                pace();
            }
            (thread_cpu_time() - cpu0, wall0.elapsed())
        })
        .join()
        .expect("thread");
        // A busier machine only stretches the wall time, so this cannot flake
        // the wrong way: 100 ms of CPU must take at least 400 ms of wall time.
        assert!(cpu >= Duration::from_millis(100));
        assert!(cpu.as_secs_f64() / wall.as_secs_f64() <= 0.25 * 1.05, "cpu {cpu:?} over wall {wall:?}");
    }
}
