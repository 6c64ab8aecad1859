//! The clock of the client benchmarks, and timed rounds with untimed setup.

use std::time::{Duration, Instant};

use criterion::Criterion;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};

/// The clock of every measurement: wall time, or with `ATMLS_BENCH_CLOCK=cpu` the CPU
/// time of the whole process (all threads, openmls' rayon workers included), which other
/// work on a shared machine does not inflate.
#[derive(Debug, Clone, Copy)]
pub struct Clock;

fn cpu_clock() -> bool {
    static CPU: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CPU.get_or_init(|| std::env::var("ATMLS_BENCH_CLOCK").is_ok_and(|v| v == "cpu"))
}

/// The current reading of the configured clock.
pub fn now() -> Duration {
    if cpu_clock() {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        )
    } else {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }
}

impl Measurement for Clock {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        now()
    }
    fn end(&self, start: Duration) -> Duration {
        now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

/// Criterion with the configured [`Clock`].
pub fn criterion() -> Criterion<Clock> {
    Criterion::default().with_measurement(Clock)
}

/// `iters` rounds on `ctx` of `setup` (untimed), `op` (timed) and `cleanup` (untimed);
/// the total time of the `op`s.
pub fn rounds<C, S, T>(
    iters: u64,
    ctx: &mut C,
    mut setup: impl FnMut(&mut C) -> S,
    mut op: impl FnMut(&mut C, S) -> T,
    mut cleanup: impl FnMut(&mut C, T),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let s = setup(ctx);
        let t = now();
        let out = op(ctx, s);
        total += now().saturating_sub(t);
        cleanup(ctx, out);
    }
    total
}
