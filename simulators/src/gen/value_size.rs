//! Value-size distributions for generated traces.
//!
//! A key's size is a pure function of (seed, key) rather than a draw from the
//! request stream: an object keeps one size for the whole trace (as oracleGeneral
//! requires, and as a real store's value would between writes), and adding a
//! request somewhere does not shift every later size.

use std::fmt;
use std::str::FromStr;

use crate::error::TraceError;
use crate::rng::mix64;

/// How big values are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueSize {
    /// Every value has this many bytes.
    Fixed(u32),
    /// Uniform in `[min, max]`.
    Uniform {
        /// Smallest size.
        min: u32,
        /// Largest size.
        max: u32,
    },
    /// Log-normal with the given median and σ of the underlying normal: the
    /// long-tailed shape of key-value store values.
    LogNormal {
        /// Median size in bytes.
        median: f64,
        /// Shape (σ of ln size).
        sigma: f64,
    },
}

impl Default for ValueSize {
    fn default() -> Self {
        ValueSize::Fixed(4096)
    }
}

impl fmt::Display for ValueSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueSize::Fixed(n) => write!(f, "fixed:{n}"),
            ValueSize::Uniform { min, max } => write!(f, "uniform:{min}-{max}"),
            ValueSize::LogNormal { median, sigma } => write!(f, "lognormal:{median}:{sigma}"),
        }
    }
}

impl FromStr for ValueSize {
    type Err = TraceError;
    /// `4096`, `fixed:4096`, `uniform:100-10000` (or `uniform:100:10000`),
    /// `lognormal:MEDIAN:SIGMA` (e.g. `lognormal:1000:1.0`).
    fn from_str(s: &str) -> Result<Self, TraceError> {
        let bad = || {
            TraceError::InvalidSpec(format!(
                "--value-size {s:?}: expected N, fixed:N, uniform:MIN-MAX or lognormal:MEDIAN:SIGMA"
            ))
        };
        let (kind, rest) = s.split_once(':').unwrap_or(("fixed", s));
        match kind.trim().to_ascii_lowercase().as_str() {
            "fixed" => {
                let n: u32 = rest.trim().parse().map_err(|_| bad())?;
                if n == 0 {
                    return Err(bad());
                }
                Ok(ValueSize::Fixed(n))
            }
            "uniform" => {
                let (a, b) = rest.split_once(['-', ':']).ok_or_else(bad)?;
                let (min, max): (u32, u32) =
                    (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
                if min == 0 || min > max {
                    return Err(bad());
                }
                Ok(ValueSize::Uniform { min, max })
            }
            "lognormal" => {
                let (a, b) = rest.split_once(':').ok_or_else(bad)?;
                let (median, sigma): (f64, f64) =
                    (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
                if !(median >= 1.0 && (0.0..=5.0).contains(&sigma)) {
                    return Err(bad());
                }
                Ok(ValueSize::LogNormal { median, sigma })
            }
            _ => Err(bad()),
        }
    }
}

fn unit(x: u64) -> f64 {
    // In (0, 1]: never 0, so ln() below is finite.
    ((x >> 11) as f64 + 1.0) * (1.0 / (1u64 << 53) as f64)
}

impl ValueSize {
    /// The size of `key` under `seed`.
    pub fn size_of(&self, key: u64, seed: u64) -> u32 {
        let h = mix64(key ^ mix64(seed ^ 0x5157_e5a1_2e00_0001));
        match *self {
            ValueSize::Fixed(n) => n,
            ValueSize::Uniform { min, max } => min + ((u128::from(h) * u128::from(max - min + 1)) >> 64) as u32,
            ValueSize::LogNormal { median, sigma } => {
                // Box–Muller from two independent hashes.
                let (u1, u2) = (unit(h), unit(mix64(h)));
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                (median * (sigma * z).exp()).round().clamp(1.0, f64::from(1u32 << 30)) as u32
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_distribution_shapes() {
        assert_eq!("4096".parse::<ValueSize>().expect("plain"), ValueSize::Fixed(4096));
        assert_eq!("uniform:10-20".parse::<ValueSize>().expect("uniform"), ValueSize::Uniform { min: 10, max: 20 });
        assert!("uniform:20-10".parse::<ValueSize>().is_err());
        assert!("gaussian:1".parse::<ValueSize>().is_err());
        let u = ValueSize::Uniform { min: 10, max: 20 };
        assert!((0..1000).all(|k| (10..=20).contains(&u.size_of(k, 1))));
        let ln: ValueSize = "lognormal:1000:1.0".parse().expect("lognormal");
        let mut sizes: Vec<u32> = (0..10_001).map(|k| ln.size_of(k, 3)).collect();
        sizes.sort_unstable();
        let median = sizes[5000];
        assert!((850..1150).contains(&median), "median {median}");
        assert!(sizes[9900] > 5 * median, "long tail");
        assert_eq!(ln.size_of(77, 3), ln.size_of(77, 3));
    }
}
