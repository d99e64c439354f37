//! Statistics for prefetching A/B tests and drift detection: the two-sample
//! Kolmogorov–Smirnov test, Welch's and the paired t-test, Cohen's d, and
//! [`AbSummary`], which turns per-window hit ratios into the numbers a report shows.
//!
//! Each test matches the SciPy call named in its doc comment (to ~1e-9, the KS p-value
//! to ~1e-6), so a figure in `docs/RESULTS.md` can be re-checked in a notebook. Inputs
//! that carry no answer (empty, too short, constant, NaN) give `None`, never a panic:
//! windows and traces come from files the user controls.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::function::beta::checked_beta_reg;
use statrs::function::gamma::checked_gamma_ur;
use std::f64::consts::PI;

/// Two-sample Kolmogorov–Smirnov test result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KsTest {
    /// D: the largest gap between the two empirical CDFs.
    pub statistic: f64,
    /// Two-sided p-value (SciPy's `method='asymp'`).
    pub p_value: f64,
}

/// A closed interval, serialized as `{"low": …, "high": …}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// Result of a t-test on the difference `b − a`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TTest {
    pub t: f64,
    /// Degrees of freedom (Welch–Satterthwaite for [`welch_t_test`], n − 1 when paired).
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Mean of `b` minus mean of `a` (the mean of `b[i] − a[i]` when paired).
    pub mean_difference: f64,
    /// 95% confidence interval of `mean_difference`.
    pub ci95: Interval,
}

/// Two-sample KS test of whether `a` and `b` come from the same distribution: the
/// drift detector, since it needs no assumption about the shape of either sample.
///
/// Matches `scipy.stats.ks_2samp(a, b, method='asymp')` (two-sided), whose p-value is
/// not the limiting Kolmogorov distribution but `kstwo.sf(D, round(n1·n2/(n1+n2)))`:
/// the exact one-sample distribution at the effective size, which is closer for small
/// samples. `None` if a sample is empty or holds NaN, or when both have one element
/// (SciPy's effective size rounds to 0 there and it answers NaN).
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> Option<KsTest> {
    if a.is_empty() || b.is_empty() || a.iter().chain(b).any(|v| v.is_nan()) {
        return None;
    }
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    // Walk both sorted samples, stepping past every copy of the smallest value left so
    // that ties move both CDFs at once (SciPy's `searchsorted(side='right')`). Once one
    // sample is used up the gap can only shrink, so the loop may stop there.
    let (mut i, mut j, mut d) = (0, 0, 0.0_f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n1 - j as f64 / n2).abs());
    }
    let en = (n1 * n2 / (n1 + n2)).round_ties_even();
    if en < 1.0 {
        return None;
    }
    Some(KsTest { statistic: d, p_value: kolmogorov_sf(en as u64, d).clamp(0.0, 1.0) })
}

/// Welch's unequal-variance t-test of `b` against `a`: hit ratios of a prefetching and a
/// plain cache need not spread alike, so the pooled-variance test is not assumed.
///
/// Matches `scipy.stats.ttest_ind(b, a, equal_var=False)` and its
/// `.confidence_interval(0.95)`. `None` if a sample has fewer than two values, holds
/// a non-finite value, or both are constant (the standard error is 0; SciPy says NaN).
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Option<TTest> {
    let ((ma, va), (mb, vb)) = (mean_var(a)?, mean_var(b)?);
    let (vna, vnb) = (va / a.len() as f64, vb / b.len() as f64);
    let df = (vnb + vna).powi(2) / (vnb * vnb / (b.len() - 1) as f64 + vna * vna / (a.len() - 1) as f64);
    t_result(mb - ma, (vnb + vna).sqrt(), df)
}

/// Paired t-test on `b[i] − a[i]`: when control and treatment replay the same windows,
/// pairing removes the window-to-window swing that both share and so sees smaller effects.
///
/// Matches `scipy.stats.ttest_rel(b, a)` and its `.confidence_interval(0.95)`. `None`
/// if the lengths differ, there are fewer than two pairs, a value is not finite, or every
/// difference is the same (zero variance).
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Option<TTest> {
    if a.len() != b.len() {
        return None;
    }
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    let (m, v) = mean_var(&diffs)?;
    let n = diffs.len() as f64;
    t_result(m, (v / n).sqrt(), n - 1.0)
}

/// Cohen's d of `b` against `a` with the pooled standard deviation: the effect in units
/// of spread, which unlike a p-value does not shrink as more windows are replayed.
///
/// `(mean(b) − mean(a)) / sqrt(((na−1)·var(a) + (nb−1)·var(b)) / (na+nb−2))`, sample
/// variances (ddof 1). `None` if a sample has fewer than two values, a value is not
/// finite, or the pooled deviation is 0.
pub fn cohens_d(a: &[f64], b: &[f64]) -> Option<f64> {
    let ((ma, va), (mb, vb)) = (mean_var(a)?, mean_var(b)?);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let sd = (((na - 1.0) * va + (nb - 1.0) * vb) / (na + nb - 2.0)).sqrt();
    let d = (mb - ma) / sd;
    (sd > 0.0 && d.is_finite()).then_some(d)
}

/// What a prefetching A/B run reports: per-window hit ratios of the control (no
/// prefetching) and treatment (prefetching) caches reduced to an effect and its
/// uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AbSummary {
    /// Mean of the control's per-window hit ratios (every window weighs the same,
    /// however many requests it held).
    pub control_hit_ratio: f64,
    /// Mean of the treatment's per-window hit ratios.
    pub treatment_hit_ratio: f64,
    /// Relative improvement: `treatment_hit_ratio / control_hit_ratio − 1`.
    pub improvement: f64,
    /// Approximate 95% CI of `improvement`: the paired mean-difference CI divided by the
    /// control mean. This treats the control mean as exact; its own sampling error (a
    /// delta-method or Fieller interval would carry it) is ignored, which is slight when
    /// the control's windows vary little next to its mean. `None` when the paired test is.
    pub ci95: Option<Interval>,
    /// Welch's two-sided p-value ([`welch_t_test`]); it ignores the pairing.
    pub p_value: Option<f64>,
    /// Paired two-sided p-value ([`paired_t_test`]): the one to read when both arms
    /// replayed the same windows.
    pub paired_p_value: Option<f64>,
    /// Cohen's d ([`cohens_d`]).
    pub effect_size: Option<f64>,
    /// Number of windows (pairs).
    pub windows: usize,
}

impl AbSummary {
    /// Summarise paired windows: `control[i]` and `treatment[i]` are the hit ratios of the
    /// same time window. `None` if the slices are empty or of different lengths, a value
    /// is not finite, or the control mean is not positive (no relative improvement).
    /// The tests that need two windows or some variance are `None` inside the summary
    /// instead, so a degenerate run still reports its hit ratios.
    pub fn from_windows(control: &[f64], treatment: &[f64]) -> Option<AbSummary> {
        if control.len() != treatment.len() || control.is_empty() || !all_finite(control) || !all_finite(treatment) {
            return None;
        }
        let (c, t) = (mean(control), mean(treatment));
        if !(c > 0.0 && c.is_finite() && t.is_finite()) {
            return None;
        }
        let paired = paired_t_test(control, treatment);
        Some(AbSummary {
            control_hit_ratio: c,
            treatment_hit_ratio: t,
            improvement: t / c - 1.0,
            ci95: paired.map(|p| Interval { low: p.ci95.low / c, high: p.ci95.high / c }),
            p_value: welch_t_test(control, treatment).map(|w| w.p_value),
            paired_p_value: paired.map(|p| p.p_value),
            effect_size: cohens_d(control, treatment),
            windows: control.len(),
        })
    }
}

fn all_finite(x: &[f64]) -> bool {
    x.iter().all(|v| v.is_finite())
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Mean and sample variance (ddof 1, two-pass); `None` below two values or when
/// non-finite values (or an overflow) are involved.
fn mean_var(x: &[f64]) -> Option<(f64, f64)> {
    if x.len() < 2 || !all_finite(x) {
        return None;
    }
    let m = mean(x);
    let v = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() - 1) as f64;
    (m.is_finite() && v.is_finite()).then_some((m, v))
}

/// Finish a t-test from its estimate, standard error and degrees of freedom.
fn t_result(diff: f64, se: f64, df: f64) -> Option<TTest> {
    if !(se > 0.0 && se.is_finite() && df > 0.0 && df.is_finite() && diff.is_finite()) {
        return None;
    }
    let t = diff / se;
    let p_value = t_two_sided_p(t, df)?;
    let q = t_quantile_975(df)?;
    Some(TTest { t, df, p_value, mean_difference: diff, ci95: Interval { low: diff - q * se, high: diff + q * se } })
}

/// Above this many degrees of freedom the Student t goes through the Cornish–Fisher
/// expansion instead of statrs, whose quantile drifts as df grows (3e-6 relative at
/// df = 1e5, 7% at 1e7) and whose incomplete beta loses digits to cancelling ln Γ terms
/// (1e-8 at 1e7). The expansion's truncation, O(df⁻⁵), is below 1e-15 for the quantile;
/// p-values are then as good as statrs's incomplete gamma (~5e-11 for |t| ≤ 12).
const DF_ASYMPTOTIC: f64 = 1e4;

/// `P(|T| > |t|)` for Student's t with `df` degrees of freedom (`2·scipy.stats.t.sf(|t|, df)`).
fn t_two_sided_p(t: f64, df: f64) -> Option<f64> {
    let t2 = t * t;
    if t2 == 0.0 {
        return Some(1.0);
    }
    if df > DF_ASYMPTOTIC {
        if t2 > 1e4 {
            return Some(0.0); // below 2^-5000 for every df > 1e4; the series would overflow
        }
        // Solve cornish_fisher(z) = |t| by Newton from z = |t|; the map is increasing
        // and convex on z ≥ 0 and lies above the identity, so the steps fall onto the root.
        let mut z = t.abs();
        for _ in 0..100 {
            let (value, slope) = cornish_fisher(z, df);
            let step = (value - t.abs()) / slope;
            z -= step;
            if step.abs() <= 1e-16 * z {
                break;
            }
        }
        // 2·Φ(−z) = Q(1/2, z²/2); statrs's erfc is only good to ~1e-10, its gamma to ~1e-13.
        return checked_gamma_ur(0.5, z * z / 2.0).ok();
    }
    // For small |t| (p > 0.6) df/(df+t²) rounds towards 1 and takes the digits with
    // it, so there p is 1 minus the complementary incomplete beta in t²/(df+t²).
    if t2 < 0.25 {
        checked_beta_reg(0.5, df / 2.0, t2 / (df + t2)).ok().map(|c| 1.0 - c)
    } else {
        checked_beta_reg(df / 2.0, 0.5, df / (df + t2)).ok()
    }
}

/// The 0.975 quantile of Student's t (`scipy.stats.t.ppf(0.975, df)`), for 95% intervals.
fn t_quantile_975(df: f64) -> Option<f64> {
    const Z_975: f64 = 1.959_963_984_540_054; // scipy.stats.norm.ppf(0.975)
    if df > DF_ASYMPTOTIC {
        return Some(cornish_fisher(Z_975, df).0);
    }
    Some(StudentsT::new(0.0, 1.0, df).ok()?.inverse_cdf(0.975))
}

/// The Student t quantile as a series in 1/df around the normal quantile `z`, and its
/// derivative in `z` (Abramowitz & Stegun 26.7.5, terms to df⁻⁴).
fn cornish_fisher(z: f64, df: f64) -> (f64, f64) {
    // Coefficients of z, z³, …, z⁹ in g1/df + … + g4/df⁴, by power of 1/df.
    const G: [[f64; 5]; 4] = [
        [1.0 / 4.0, 1.0 / 4.0, 0.0, 0.0, 0.0],
        [3.0 / 96.0, 16.0 / 96.0, 5.0 / 96.0, 0.0, 0.0],
        [-15.0 / 384.0, 17.0 / 384.0, 19.0 / 384.0, 3.0 / 384.0, 0.0],
        [-945.0 / 92160.0, -1920.0 / 92160.0, 1482.0 / 92160.0, 776.0 / 92160.0, 79.0 / 92160.0],
    ];
    let mut coeff = [1.0, 0.0, 0.0, 0.0, 0.0];
    for (i, g) in G.iter().enumerate() {
        let scale = df.powi(-(i as i32) - 1);
        for (c, gk) in coeff.iter_mut().zip(g) {
            *c += gk * scale;
        }
    }
    let (mut value, mut slope, mut zpow) = (0.0, 0.0, 1.0); // zpow = z^(2k)
    for (k, c) in coeff.iter().enumerate() {
        slope += (2 * k + 1) as f64 * c * zpow;
        value += c * zpow * z;
        zpow *= z * z;
    }
    (value, slope)
}

/// `P(D_n > x)` for the two-sided one-sample KS statistic: `scipy.stats.kstwo.sf(x, n)`.
///
/// Follows SciPy's `_kolmogn` (Simard & L'Ecuyer 2011, "Computing the two-sided
/// Kolmogorov-Smirnov distribution"), which picks per region an exact formula, the
/// Durbin matrix, twice the one-sided Smirnov tail, or the Pelz–Good expansion. Where
/// SciPy uses the Pomeranz recursion (n ≤ 140, 0.75 < n·x² ≤ 4) this uses the Durbin
/// matrix: both are exact, and the matrix is at most 47×47 there.
fn kolmogorov_sf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    if x >= 1.0 {
        return 0.0;
    }
    let t = nf * x;
    if t <= 0.5 {
        return 1.0;
    }
    if t <= 1.0 {
        // Ruben–Gambino: P(D_n ≤ x) = n!/nⁿ·(2t−1)ⁿ, below 1e-60 once n > 140.
        let cdf = if n <= 140 { (1..=n).map(|i| i as f64 / nf * (2.0 * t - 1.0)).product() } else { 0.0 };
        return 1.0 - cdf;
    }
    if t >= nf - 1.0 {
        return 2.0 * (1.0 - x).powf(nf);
    }
    if x >= 0.5 {
        return 2.0 * smirnov_sf(n, x);
    }
    let nxx = t * x;
    if n <= 140 {
        return if nxx <= 4.0 { 1.0 - durbin_cdf(n, x) } else { 2.0 * smirnov_sf(n, x) };
    }
    if nxx >= 370.0 {
        return 0.0;
    }
    if nxx >= 2.2 {
        return 2.0 * smirnov_sf(n, x);
    }
    let cdf = if n <= 100_000 && nf * x.powf(1.5) <= 1.4 { durbin_cdf(n, x) } else { pelz_good_cdf(nf, x) };
    1.0 - cdf
}

/// `P(D_n ≤ d)` by the Durbin matrix as Marsaglia, Tsang & Wang (2003) compute it: the
/// (k, k) entry of Hⁿ times n!/nⁿ, with powers of 2 split off so nothing overflows.
fn durbin_cdf(n: u64, d: f64) -> f64 {
    const SCALE: f64 = 340_282_366_920_938_463_463_374_607_431_768_211_456.0; // 2^128
    let nd = n as f64 * d;
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut inv_fact = vec![1.0; m + 1]; // 1/j!
    for j in 1..=m {
        inv_fact[j] = inv_fact[j - 1] / j as f64;
    }
    // v[j] = (1 − h^(j+1)) / (j+1)!, with the corner corrected for h > 1/2.
    let mut v: Vec<f64> = (0..m).map(|j| (1.0 - h.powi(j as i32 + 1)) * inv_fact[j + 1]).collect();
    v[m - 1] = (1.0 + (2.0 * h - 1.0).max(0.0).powi(m as i32) - 2.0 * h.powi(m as i32)) * inv_fact[m];
    let mut hm = vec![0.0; m * m];
    for r in 0..m {
        for c in 1..m {
            if r + 1 >= c {
                hm[r * m + c] = inv_fact[r + 1 - c];
            }
        }
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }
    let matmul = |x: &[f64], y: &[f64]| -> Vec<f64> {
        let mut z = vec![0.0; m * m];
        for r in 0..m {
            for l in 0..m {
                let xv = x[r * m + l];
                if xv != 0.0 {
                    for c in 0..m {
                        z[r * m + c] += xv * y[l * m + c];
                    }
                }
            }
        }
        z
    };
    let mut pow: Vec<f64> = (0..m * m).map(|i| if i % (m + 1) == 0 { 1.0 } else { 0.0 }).collect();
    let (mut nn, mut expnt, mut h_expnt) = (n, 0_i64, 0_i64);
    while nn > 0 {
        if nn % 2 == 1 {
            pow = matmul(&pow, &hm);
            expnt += h_expnt;
        }
        hm = matmul(&hm, &hm);
        h_expnt *= 2;
        if hm[(k - 1) * m + k - 1].abs() > SCALE {
            hm.iter_mut().for_each(|e| *e /= SCALE);
            h_expnt += 128;
        }
        nn /= 2;
    }
    let mut p = pow[(k - 1) * m + k - 1];
    for i in 1..=n {
        p = i as f64 * p / n as f64;
        if p.abs() < 1.0 / SCALE {
            p *= SCALE;
            expnt -= 128;
        }
    }
    // p·2^expnt in two halves so neither factor overflows on its own.
    let half = (expnt / 2).clamp(-2000, 2000) as i32;
    let rest = (expnt - expnt / 2).clamp(-2000, 2000) as i32;
    (p * 2f64.powi(half) * 2f64.powi(rest)).clamp(0.0, 1.0)
}

/// `P(D⁺_n ≥ x)`, the one-sided Smirnov tail (`scipy.special.smirnov`): the
/// Birnbaum–Tingey sum, whose terms are all positive, added in log space; past a
/// million, SciPy's approximation `exp(−(6nx+1)²/18n)`.
fn smirnov_sf(n: u64, x: f64) -> f64 {
    let (nf, nx) = (n as f64, n as f64 * x);
    if x >= 1.0 {
        return 0.0;
    }
    if -2.0 * nf * x * x < -708.396_418_532_264_1 {
        return 0.0;
    }
    if n > 1_000_000 {
        return (-(6.0 * nx + 1.0).powi(2) / 18.0 / nf).exp();
    }
    // x·Σ_{j ≤ n(1−x)} C(n,j)·(1−x−j/n)^(n−j)·(x+j/n)^(j−1); the terms rise then fall,
    // so stop once they are past their peak and below rounding.
    // ln C(n, j) is a running sum of a million small steps onto a large total: Kahan
    // summation keeps it to ~1e-12 where plain addition drifted to 2e-8.
    let (mut sum, mut ln_binom, mut carry, mut prev) = (0.0, 0.0, 0.0, 0.0);
    let mut j = 0_u64;
    while j < n && (j as f64) < nf - nx {
        let jf = j as f64;
        let term = (ln_binom + (nf - jf) * ((nf - jf - nx) / nf).ln() + (jf - 1.0) * ((nx + jf) / nf).ln()).exp();
        sum += term;
        if term < prev && term < sum * 1e-17 {
            break;
        }
        prev = term;
        let step = ((nf - jf) / (jf + 1.0)).ln() - carry;
        let next = ln_binom + step;
        carry = (next - ln_binom) - step;
        ln_binom = next;
        j += 1;
    }
    (x * sum).clamp(0.0, 1.0)
}

/// `P(D_n ≤ x)` by the Pelz–Good (1976) expansion in 1/√n, as SciPy's
/// `_kolmogn_PelzGood`: for large n where the Durbin matrix would be too big.
fn pelz_good_cdf(n: f64, x: f64) -> f64 {
    let (pi2, pi4, pi6) = (PI * PI, PI.powi(4), PI.powi(6));
    let sqrt_2pi = (2.0 * PI).sqrt();
    let z = n.sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z.powi(3), z.powi(4), z.powi(6));
    let qlog = -pi2 / 8.0 / z2;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();
    let (k1a, k1b) = (-z2, pi2 / 4.0);
    let (k2a, k2b, k2c) = (6.0 * z6 + 2.0 * z4, (2.0 * z4 - 5.0 * z2) * pi2 / 4.0, pi4 * (1.0 - 2.0 * z2) / 16.0);
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);
    let maxk = (16.0 * z / PI).ceil() as u32;
    let mut k = [0.0_f64; 4];
    for kk in (1..=maxk).rev() {
        let m2 = f64::from(2 * kk - 1).powi(2);
        let coeffs =
            [1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m2 * m2, k3a + k3b * m2 + k3c * m2 * m2 + k3d * m2 * m2 * m2];
        let qpower = q.powf(8.0 * f64::from(kk));
        for (acc, c) in k.iter_mut().zip(coeffs) {
            *acc = *acc * qpower + c;
        }
    }
    for (acc, div) in k.iter_mut().zip([z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)]) {
        *acc *= q * sqrt_2pi / div;
    }
    let q = (-pi2 / 2.0 / z2).exp();
    let (mut k2extra, mut k3extra) = (0.0, 0.0);
    for kk in (1..=maxk).rev() {
        let ks2 = f64::from(kk * kk);
        let qp = q.powf(ks2);
        k2extra += ks2 * qp;
        k3extra += (3.0 * z2 - pi2 * ks2) * ks2 * qp;
    }
    k[2] += k2extra * pi2 * sqrt_2pi / (-36.0 * z3);
    k[3] += k3extra * pi2 * sqrt_2pi / (216.0 * z6);
    k[0] + k[1] / n.sqrt() + k[2] / n + k[3] / n.powf(1.5)
}

#[cfg(test)]
mod tests {
    //! Reference values from SciPy 1.17.1 (NumPy 2), printed with `repr` by:
    //!
    //! ```python
    //! import numpy as np
    //! from scipy import stats
    //! def cohen(a, b):
    //!     a, b = np.asarray(a), np.asarray(b); na, nb = len(a), len(b)
    //!     return (b.mean() - a.mean()) / np.sqrt(((na-1)*a.var(ddof=1) + (nb-1)*b.var(ddof=1)) / (na+nb-2))
    //! for a, b in [(A_A, A_B), (B_A, B_B), (CONTROL, TREATMENT), (L_A, L_B)]:   # the slices below
    //!     r = stats.ttest_ind(b, a, equal_var=False); ci = r.confidence_interval(0.95)
    //!     print(r.statistic, r.df, r.pvalue, np.mean(b) - np.mean(a), ci.low, ci.high, cohen(a, b))
    //! r = stats.ttest_rel(TREATMENT, CONTROL); ci = r.confidence_interval(0.95)   # and ci / np.mean(CONTROL)
    //! q = lambda n, shift=0.0: stats.norm.ppf((np.arange(n) + 0.5) / n) + shift
    //! r = stats.ks_2samp(q(50), q(70, 0.5), method='asymp')   # likewise each KS case below
    //! stats.kstwo.sf(x, n)                                     # for each (n, x) in `kolmogorov_matches_scipy_kstwo`
    //! ```
    use super::*;
    use statrs::distribution::Normal;

    const A_A: [f64; 8] = [0.61, 0.58, 0.66, 0.70, 0.55, 0.63, 0.59, 0.64];
    const A_B: [f64; 11] = [0.68, 0.71, 0.65, 0.74, 0.69, 0.77, 0.70, 0.72, 0.66, 0.75, 0.73];
    const B_A: [f64; 5] = [10.0, 10.2, 9.9, 10.1, 10.05];
    const B_B: [f64; 7] = [8.0, 12.5, 11.0, 7.5, 13.0, 10.4, 9.1];
    const CONTROL: [f64; 10] = [0.412, 0.398, 0.455, 0.430, 0.389, 0.441, 0.420, 0.405, 0.437, 0.426];
    const TREATMENT: [f64; 10] = [0.451, 0.430, 0.482, 0.468, 0.421, 0.470, 0.455, 0.440, 0.463, 0.459];

    #[track_caller]
    fn close(got: f64, want: f64, rel: f64) {
        assert!((got - want).abs() <= rel * want.abs(), "got {got:e}, want {want:e} (relative {rel:e})");
    }

    #[track_caller]
    fn check_t(r: TTest, [t, df, p, diff, lo, hi]: [f64; 6]) {
        for (got, want) in [(r.t, t), (r.df, df), (r.p_value, p), (r.mean_difference, diff)] {
            close(got, want, 1e-9);
        }
        close(r.ci95.low, lo, 1e-9);
        close(r.ci95.high, hi, 1e-9);
    }

    /// Large samples (built the same way in the Python): Welch's df is ~33,861, past
    /// `DF_ASYMPTOTIC`, so this covers the Cornish–Fisher path.
    fn large() -> (Vec<f64>, Vec<f64>) {
        let a = (0..20_000).map(|i| (f64::from(i) * 0.618034) % 1.0).collect();
        let b = (0..15_000).map(|i| (f64::from(i) * 0.414214) % 1.0 * 0.9 + 0.06).collect();
        (a, b)
    }

    #[test]
    fn welch_matches_scipy() {
        let r = welch_t_test(&A_A, &A_B).unwrap();
        check_t(
            r,
            [
                4.379566090845063,
                12.872647569421707,
                0.0007622894397065563,
                0.08909090909090911,
                0.04509957633101606,
                0.13308224185080217,
            ],
        );
        let r = welch_t_test(&B_A, &B_B).unwrap();
        check_t(
            r,
            [
                0.20394484596715332,
                6.046365366361541,
                0.8450879381028489,
                0.1642857142857128,
                -1.8031413600434838,
                2.1317127886149096,
            ],
        );
        let (a, b) = large();
        let r = welch_t_test(&a, &b).unwrap();
        check_t(
            r,
            [
                3.4070327334093795,
                33861.41130255881,
                0.000657495868869886,
                0.01003070000045675,
                0.004260132167100042,
                0.015801267833813457,
            ],
        );
    }

    #[test]
    fn paired_and_cohen_match_scipy() {
        let r = paired_t_test(&CONTROL, &TREATMENT).unwrap();
        check_t(
            r,
            [
                23.69212741415272,
                9.0,
                2.0284795888869185e-09,
                0.032600000000000004,
                0.029487306816391324,
                0.03571269318360868,
            ],
        );
        close(cohens_d(&A_A, &A_B).unwrap(), 2.117581806046875, 1e-9);
        close(cohens_d(&B_A, &B_B).unwrap(), 0.09961546198367142, 1e-9);
        let (a, b) = large();
        close(cohens_d(&a, &b).unwrap(), 0.03625238298313686, 1e-9);
    }

    #[test]
    fn ab_summary_matches_scipy() {
        let s = AbSummary::from_windows(&CONTROL, &TREATMENT).unwrap();
        close(s.control_hit_ratio, 0.4213, 1e-12);
        close(s.treatment_hit_ratio, 0.45389999999999997, 1e-12);
        close(s.improvement, 0.07737953952053167, 1e-9);
        let ci = s.ci95.unwrap();
        close(ci.low, 0.06999123383904896, 1e-9);
        close(ci.high, 0.08476784520201443, 1e-9);
        close(s.p_value.unwrap(), 0.0016888633093340587, 1e-9);
        close(s.paired_p_value.unwrap(), 2.0284795888869185e-09, 1e-9);
        close(s.effect_size.unwrap(), 1.6506476050397167, 1e-9);
        assert_eq!(s.windows, 10);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"ci95\":{\"low\":") && json.contains("\"windows\":10"), "{json}");
    }

    /// `norm.ppf((i + 0.5) / n) + shift`: an evenly spread normal sample. Only the order
    /// of the values matters to KS, and the closest pair across samples is 1.9e-9 apart.
    fn normal_sample(n: u32, shift: f64) -> Vec<f64> {
        let norm = Normal::new(0.0, 1.0).unwrap();
        (0..n).map(|i| norm.inverse_cdf((f64::from(i) + 0.5) / f64::from(n)) + shift).collect()
    }

    #[test]
    fn ks_matches_scipy_asymp() {
        let cases: [(Vec<f64>, Vec<f64>, f64, f64); 6] = [
            (normal_sample(50, 0.0), normal_sample(70, 0.5), 0.21428571428571425, 0.11984521737803),
            (
                vec![1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                vec![2.0, 3.0, 3.0, 5.0, 7.0, 8.0, 9.0, 10.0, 11.0],
                0.5555555555555556,
                0.11071101966163692,
            ),
            (normal_sample(3000, 0.0), normal_sample(2000, 0.05), 0.02033333333333337, 0.6960196316844731),
            (normal_sample(3000, 0.0), normal_sample(2000, 0.09), 0.036166666666666736, 0.08453038101463428),
            (normal_sample(3000, 0.0), normal_sample(2000, 0.2), 0.08000000000000007, 3.969898309276665e-07),
            (vec![0.3, 0.9], vec![0.5, 0.6, 0.7], 0.5, 1.0),
        ];
        for (a, b, d, p) in cases {
            let r = ks_two_sample(&a, &b).unwrap();
            close(r.statistic, d, 1e-12);
            close(r.p_value, p, 1e-6);
        }
        let same = normal_sample(40, 0.0);
        assert_eq!(ks_two_sample(&same, &same), Some(KsTest { statistic: 0.0, p_value: 1.0 }));
    }

    /// One (n, x) per branch of `kolmogorov_sf`: Ruben–Gambino at both ends, the Durbin
    /// matrix (small and large n), twice Smirnov (exact and, past 10⁶, approximate), Pelz–Good.
    #[test]
    fn kolmogorov_matches_scipy_kstwo() {
        let cases = [
            (5, 0.15, 0.9988),
            (5, 0.3, 0.664),
            (10, 0.55, 0.0022805103214843725),
            (10, 0.95, 1.9531250000000172e-13),
            (29, 0.1, 0.9061876917426809),
            (29, 0.3, 0.008234924762398177),
            (29, 0.45, 7.042673716187162e-06),
            (140, 0.2, 2.1981563302200222e-05),
            (1200, 0.02, 0.7152901444028845),
            (1200, 0.04, 0.041827805318862876),
            (1200, 0.06, 0.00033808376430304564),
            (150_000, 0.003, 0.1341018124495077),
            (2_000_000, 0.0012, 0.006297183259583361),
        ];
        for (n, x, want) in cases {
            close(kolmogorov_sf(n, x), want, 1e-9);
        }
    }

    #[test]
    fn degenerate_inputs_give_none_not_panics() {
        let empty: [f64; 0] = [];
        assert_eq!(ks_two_sample(&empty, &[1.0]), None);
        assert_eq!(ks_two_sample(&[1.0], &[2.0]), None); // effective size rounds to 0, as SciPy's NaN
        assert_eq!(ks_two_sample(&[1.0, f64::NAN], &[2.0]), None);
        assert_eq!(ks_two_sample(&[1.0, 1.0], &[1.0, 1.0, 1.0]), Some(KsTest { statistic: 0.0, p_value: 1.0 }));
        for f in [welch_t_test, paired_t_test] {
            assert_eq!(f(&empty, &empty), None);
            assert_eq!(f(&[1.0], &[2.0]), None);
            assert_eq!(f(&[0.5, 0.5, 0.5], &[0.5, 0.5, 0.5]), None); // zero variance: SciPy says NaN
            assert_eq!(f(&[1.0, f64::INFINITY], &[1.0, 2.0]), None);
            assert_eq!(f(&[1e308, -1e308], &[1.0, 2.0]), None); // variance overflows
        }
        assert_eq!(paired_t_test(&[1.0, 2.0], &[1.0, 2.0, 3.0]), None);
        // t ≈ 3e8 with df ≈ 20,000: the large-df path, far outside the series' range.
        let tiny: Vec<f64> = (0..20_000).map(|i| f64::from(i % 2) * 1e-6).collect();
        assert_eq!(welch_t_test(&tiny, &[1.0; 20_000]).map(|r| r.p_value), Some(0.0));
        assert!(welch_t_test(&[0.5, 0.5, 0.5], &[0.4, 0.6, 0.5]).is_some()); // one constant side is fine
        assert_eq!(cohens_d(&[0.5, 0.5], &[0.7, 0.7]), None);
        assert_eq!(cohens_d(&[0.5], &[0.7, 0.8]), None);

        assert_eq!(AbSummary::from_windows(&empty, &empty), None);
        assert_eq!(AbSummary::from_windows(&[0.5, 0.6], &[0.5]), None);
        assert_eq!(AbSummary::from_windows(&[0.0, 0.0], &[0.1, 0.2]), None); // no relative improvement
                                                                             // One window, or identical constant arms: hit ratios are reported, the tests are not.
        let one = AbSummary::from_windows(&[0.4], &[0.5]).unwrap();
        assert!((one.improvement - 0.25).abs() < 1e-12 && one.windows == 1);
        assert_eq!((one.ci95, one.p_value, one.paired_p_value, one.effect_size), (None, None, None, None));
        let flat = AbSummary::from_windows(&[0.4; 5], &[0.4; 5]).unwrap();
        assert_eq!((flat.improvement, flat.p_value, flat.ci95), (0.0, None, None));
    }
}
