//! Popularity-skewed key streams: Zipf(α) and uniform.
//!
//! Zipf ranks are drawn by rejection-inversion (Hörmann & Derflinger, "Rejection-
//! inversion to generate variates from monotone discrete distributions", 1996): O(1)
//! time and memory per draw for any number of keys and any α > 0, where a CDF table
//! would cost 8 bytes per key and a binary search per draw. Ranks are scattered over
//! the id space ([`super::scatter`]) so popular keys are not numeric neighbours,
//! which would flatter sequential prefetchers.

use super::{scatter, KeyStream};
use crate::rng::Rng;

/// Draws ranks in `1..=n` with P(k) ∝ k^-α.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    alpha: f64,
    h_x1: f64,
    h_n: f64,
    s: f64,
}

impl Zipf {
    /// A sampler over `n ≥ 1` ranks with exponent `alpha > 0`.
    pub fn new(n: u64, alpha: f64) -> Self {
        let n = n.max(1) as f64;
        let mut z = Self { n, alpha, h_x1: 0.0, h_n: 0.0, s: 0.0 };
        z.h_x1 = z.h_integral(1.5) - 1.0;
        z.h_n = z.h_integral(n + 0.5);
        z.s = 2.0 - z.h_integral_inv(z.h_integral(2.5) - z.h(2.0));
        z
    }

    fn h(&self, x: f64) -> f64 {
        (-self.alpha * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let lx = x.ln();
        helper2((1.0 - self.alpha) * lx) * lx
    }

    fn h_integral_inv(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.alpha)).max(-1.0);
        (helper1(t) * x).exp()
    }

    /// One rank.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_n + rng.next_f64() * (self.h_x1 - self.h_n);
            let x = self.h_integral_inv(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.s || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }
}

/// ln(1+x)/x, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// (e^x − 1)/x, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// Keys with Zipf popularity.
#[derive(Debug, Clone)]
pub struct ZipfKeys {
    zipf: Zipf,
    ns: u64,
}

impl ZipfKeys {
    /// `keys` keys in namespace `ns`.
    pub fn new(keys: u64, alpha: f64, ns: u64) -> Self {
        Self { zipf: Zipf::new(keys, alpha), ns }
    }
}

impl KeyStream for ZipfKeys {
    fn next_key(&mut self, rng: &mut Rng) -> u64 {
        scatter(self.ns, self.zipf.sample(rng) - 1)
    }
}

/// Keys drawn uniformly.
#[derive(Debug, Clone)]
pub struct UniformKeys {
    keys: u64,
    ns: u64,
}

impl UniformKeys {
    /// `keys` keys in namespace `ns`.
    pub fn new(keys: u64, ns: u64) -> Self {
        Self { keys: keys.max(1), ns }
    }
}

impl KeyStream for UniformKeys {
    fn next_key(&mut self, rng: &mut Rng) -> u64 {
        scatter(self.ns, rng.below(self.keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_frequencies_follow_the_power_law() {
        let z = Zipf::new(1000, 1.0);
        let mut rng = Rng::new(1);
        let mut counts = vec![0u32; 1001];
        let n = 400_000;
        for _ in 0..n {
            let k = z.sample(&mut rng);
            assert!((1..=1000).contains(&k));
            counts[k as usize] += 1;
        }
        let harmonic: f64 = (1..=1000).map(|k| 1.0 / k as f64).sum();
        for k in [1usize, 2, 10] {
            let expected = n as f64 / (k as f64 * harmonic);
            let got = f64::from(counts[k]);
            assert!((got - expected).abs() / expected < 0.05, "rank {k}: {got} vs {expected}");
        }
    }
}
