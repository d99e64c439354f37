//! Cache sizes as users write them: `489` (objects, or bytes in byte mode), `64MiB`,
//! `1%` or `0.01` (a fraction of the trace's working set).
//!
//! A fraction resolves against the working set the way libCacheSim's `cachesim`
//! does, truncating: 0.1% of 48,974 objects is 48, not 49. That rounding is what
//! makes our numbers comparable with its published tables.

use std::fmt;

use crate::error::TraceError;

/// A cache size before the working set is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SizeSpec {
    /// Fraction of the working set (objects in object mode, bytes in byte mode).
    Fraction(f64),
    /// A plain number: objects in object mode, bytes in byte mode.
    Count(u64),
    /// A number with a byte unit; only meaningful in byte mode.
    Bytes(u64),
}

impl fmt::Display for SizeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeSpec::Fraction(x) => write!(f, "{}%", x * 100.0),
            SizeSpec::Count(n) => write!(f, "{n}"),
            SizeSpec::Bytes(b) => write!(f, "{b}B"),
        }
    }
}

/// Parses one size. Units: `B`; decimal `KB`, `MB`, `GB`, `TB`; binary `KiB`, `MiB`,
/// `GiB`, `TiB` and the shorthands `K`, `M`, `G`, `T` (binary, as cache
/// configurations usually mean them). Case-insensitive.
pub fn parse_size(s: &str) -> Result<SizeSpec, TraceError> {
    let t = s.trim();
    let bad = || TraceError::InvalidSpec(format!("cache size {s:?}: expected e.g. 489, 64MiB, 1% or 0.05"));
    if let Some(p) = t.strip_suffix('%') {
        let pct: f64 = p.trim().parse().map_err(|_| bad())?;
        if !(pct > 0.0 && pct <= 100.0) {
            return Err(bad());
        }
        return Ok(SizeSpec::Fraction(pct / 100.0));
    }
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim());
    if unit.is_empty() {
        if num.contains('.') {
            let f: f64 = num.parse().map_err(|_| bad())?;
            if !(f > 0.0 && f <= 1.0) {
                return Err(bad());
            }
            return Ok(SizeSpec::Fraction(f));
        }
        return num.parse().map(SizeSpec::Count).map_err(|_| bad());
    }
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let bytes = n * mult as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(bad());
    }
    Ok(SizeSpec::Bytes(bytes as u64))
}

/// Parses a comma-separated list of sizes.
pub fn parse_sizes(list: &str) -> Result<Vec<SizeSpec>, TraceError> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(parse_size).collect()
}

impl SizeSpec {
    /// Whether resolving needs the working set (a pre-pass over the trace).
    pub fn needs_working_set(&self) -> bool {
        matches!(self, SizeSpec::Fraction(_))
    }

    /// The capacity in objects (object mode) or bytes. `working_set` is distinct
    /// objects in object mode, the sum of first-seen sizes in byte mode.
    pub fn resolve(&self, working_set: u64, object_mode: bool) -> Result<u64, TraceError> {
        match *self {
            SizeSpec::Fraction(f) => Ok(((working_set as f64 * f) as u64).max(1)),
            SizeSpec::Count(n) if n > 0 => Ok(n),
            SizeSpec::Count(_) => Err(TraceError::InvalidSpec("cache size 0".into())),
            SizeSpec::Bytes(_) if object_mode => Err(TraceError::InvalidSpec(format!(
                "cache size {self} is in bytes but --ignore-obj-size counts objects; give a count or a fraction"
            ))),
            SizeSpec::Bytes(b) => Ok(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_resolve_like_cachesim() {
        let specs = parse_sizes("0.1%,1%,5%,10%,20%,40%").expect("fractions");
        let got: Vec<u64> = specs.iter().map(|s| s.resolve(48_974, true).expect("resolve")).collect();
        assert_eq!(got, vec![48, 489, 2448, 4897, 9794, 19589]);
        assert_eq!(parse_size("489").expect("count"), SizeSpec::Count(489));
        assert_eq!(parse_size("64MiB").expect("mib"), SizeSpec::Bytes(64 << 20));
        assert_eq!(parse_size("1.5GB").expect("gb"), SizeSpec::Bytes(1_500_000_000));
        assert_eq!(parse_size("0.05").expect("fraction"), SizeSpec::Fraction(0.05));
        assert!(parse_size("64 parsecs").is_err());
        assert!(parse_size("150%").is_err());
        assert!(SizeSpec::Bytes(10).resolve(100, true).is_err());
        assert_eq!(SizeSpec::Bytes(10).resolve(100, false).expect("bytes"), 10);
    }
}
