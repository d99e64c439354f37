//! The neural models, through libtorch (`tch`): logistic regression, an MLP and a
//! GRU sequence model. CPU by default, CUDA when libtorch reports it.
//!
//! libtorch's intra-op pool is capped at one thread ([`limit_threads`]) on every
//! thread that calls it: on the small batches scored here a second thread buys
//! nothing, and under load two threads were measured to collapse tail latency
//! (shared notes), while serving needs the cores.

use std::cell::Cell;
use std::path::Path;
use std::sync::Once;

use tch::nn::{self, Module, OptimizerConfig, RNN};
use tch::{Device, Kind, Reduction, Tensor};

use super::dataset::{Dataset, CONTEXT};
use super::features::N_FEATURES;
use super::model::{bucket, Batch, BatchBuf, ModelKind, Scorer, Standardizer};
use super::PredictError;

/// Embedding rows for hashed keys (the sequence model).
const BUCKETS: i64 = 1 << 14;
/// Width of key embeddings and of the GRU state: equal, because the head also
/// sees their elementwise product.
const WIDTH: i64 = 24;

/// Caps libtorch at one intra-op thread for the calling thread.
///
/// Per thread, because libtorch's CPU build parallelises with OpenMP, whose
/// thread count is a per-thread setting, and libtorch applies its own setting to
/// a thread only when the thread first enters one of its parallel loops; a
/// matrix product can come first. Capping it once, on the training thread, left
/// the predictor thread (which scores through libtorch the GRU's batches and the
/// dense nets' batches of over 64 rows) at OpenMP's default of one thread per
/// core, and the extra thread spun in libgomp between batches: 27% of a serving
/// process's CPU samples on two cores (perf, session 7 in docs/RESULTS.md). The
/// inter-op pool is process-wide and may be sized only once.
pub fn limit_threads() {
    thread_local! {
        static LIMITED: Cell<bool> = const { Cell::new(false) };
    }
    static INTEROP: Once = Once::new();
    if LIMITED.get() {
        return;
    }
    INTEROP.call_once(|| tch::set_num_interop_threads(1));
    tch::set_num_threads(1);
    LIMITED.set(true);
}

/// CUDA when libtorch has it, else CPU.
pub fn device() -> Device {
    Device::cuda_if_available()
}

/// Training settings shared by the neural models.
#[derive(Debug, Clone, Copy)]
pub struct TorchTrainConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per step.
    pub batch: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Seed for weights and shuffling.
    pub seed: u64,
}

impl Default for TorchTrainConfig {
    fn default() -> Self {
        Self { epochs: 4, batch: 512, learning_rate: 0.01, seed: 7 }
    }
}

enum Net {
    Dense(nn::Sequential),
    Sequence(Box<SequenceNet>),
}

struct SequenceNet {
    embed: nn::Embedding,
    gru: nn::GRU,
    head: nn::Sequential,
}

/// A trained tch model: its variables, network and input standardization.
pub struct TorchModel {
    kind: ModelKind,
    vs: nn::VarStore,
    net: Net,
    standardizer: Standardizer,
    device: Device,
    /// The dense nets' weights copied out for scoring without libtorch (see
    /// [`DenseCpu`]); refreshed after training and loading.
    native: Option<DenseCpu>,
}

/// Largest batch scored by [`DenseCpu`]: libtorch's per-call cost is fixed and its
/// per-row cost lower, so it wins on large batches (`augur predict`, 256 rows: MLP
/// 29 µs through libtorch, 74 µs in plain loops), the loops on the few dozen
/// candidates of one request.
const NATIVE_MAX_ROWS: usize = 64;

/// The layers of a dense net (logistic or MLP) on the CPU, in plain Rust.
///
/// Why: the predictor scores the candidates of one request at a time when requests
/// come one by one, a batch of a few dozen, where a libtorch call's fixed cost (a
/// dispatch per op) is most of the time between a read and its prefetch landing.
/// The MLP is 16-32-16-1, about a thousand multiply-adds per candidate, which
/// plain loops do in microseconds. Training stays in libtorch.
#[derive(Debug, Clone)]
struct DenseCpu {
    /// (weights `out × in`, row-major; biases `out`), input layer first.
    layers: Vec<(Vec<f32>, Vec<f32>)>,
}

impl DenseCpu {
    /// Copies the named linear layers out of `vs`; None if one is missing or
    /// shaped unexpectedly, and then libtorch scores.
    fn from_vs(vs: &nn::VarStore, names: &[&str], inputs: usize) -> Option<Self> {
        let vars = vs.variables();
        let mut layers = Vec::with_capacity(names.len());
        let mut width = inputs;
        for name in names {
            let w = vars.get(&format!("{name}.weight"))?.to_device(Device::Cpu).contiguous();
            let b = vars.get(&format!("{name}.bias"))?.to_device(Device::Cpu).contiguous();
            let size = w.size();
            if size.len() != 2 || usize::try_from(size[1]).ok()? != width {
                return None;
            }
            let out = usize::try_from(size[0]).ok()?;
            let w = Vec::<f32>::try_from(&w.view([-1])).ok()?;
            let b = Vec::<f32>::try_from(&b.view([-1])).ok()?;
            if b.len() != out {
                return None;
            }
            layers.push((w, b));
            width = out;
        }
        (width == 1).then_some(Self { layers })
    }

    /// P(label) per row of standardized, row-major `features`.
    fn score(&self, features: &[f32], inputs: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(features.len() / inputs.max(1));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for row in features.chunks_exact(inputs) {
            a.clear();
            a.extend_from_slice(row);
            for (i, (w, bias)) in self.layers.iter().enumerate() {
                b.clear();
                b.extend(bias.iter().zip(w.chunks_exact(a.len())).map(|(bias, w)| {
                    let z = bias + w.iter().zip(&a).map(|(w, x)| w * x).sum::<f32>();
                    if i + 1 < self.layers.len() {
                        z.max(0.0)
                    } else {
                        z
                    }
                }));
                std::mem::swap(&mut a, &mut b);
            }
            out.push(1.0 / (1.0 + (-a[0]).exp()));
        }
        out
    }
}

/// The linear layers of the dense kinds, input first (as `train` names them).
fn dense_layers(kind: ModelKind) -> Option<&'static [&'static str]> {
    match kind {
        ModelKind::Logistic => Some(&["out"]),
        ModelKind::Mlp => Some(&["l1", "l2", "out"]),
        ModelKind::Gru | ModelKind::Gbdt => None,
    }
}

impl TorchModel {
    /// Probabilities of standardized `features` through libtorch.
    fn score_with_libtorch(&self, batch: Batch<'_>, features: &[f32]) -> Vec<f32> {
        limit_threads();
        let probs = tch::no_grad(|| self.logits(batch, features).sigmoid().view([-1]).to(Device::Cpu));
        Vec::<f32>::try_from(&probs).unwrap_or_else(|_| vec![0.0; batch.len()])
    }

    fn refresh_native(&mut self) {
        self.native = dense_layers(self.kind).and_then(|names| DenseCpu::from_vs(&self.vs, names, N_FEATURES));
    }
}

impl std::fmt::Debug for TorchModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TorchModel")
    }
}

fn tensor_2d(data: &[f32], cols: i64, device: Device) -> Tensor {
    let rows = data.len() as i64 / cols.max(1);
    Tensor::from_slice(data).view([rows, cols]).to_device(device)
}

impl TorchModel {
    fn logits(&self, batch: Batch<'_>, features: &[f32]) -> Tensor {
        let x = tensor_2d(features, N_FEATURES as i64, self.device);
        match &self.net {
            Net::Dense(seq) => seq.forward(&x),
            Net::Sequence(net) => {
                let SequenceNet { embed, gru, head } = net.as_ref();
                let n = batch.len() as i64;
                let ctx: Vec<i64> = batch.context.iter().map(|&h| bucket(h, BUCKETS)).collect();
                let ctx = Tensor::from_slice(&ctx).view([n, CONTEXT as i64]).to_device(self.device);
                let (_, state) = gru.seq(&embed.forward(&ctx));
                let h = state.0.select(0, 0);
                let cand: Vec<i64> = batch.candidates.iter().map(|&h| bucket(h, BUCKETS)).collect();
                let c = embed.forward(&Tensor::from_slice(&cand).to_device(self.device));
                let joined = Tensor::cat(&[&h, &c, &(&h * &c), &x], 1);
                head.forward(&joined)
            }
        }
    }
}

impl Scorer for TorchModel {
    fn score(&self, batch: Batch<'_>) -> Vec<f32> {
        if batch.is_empty() {
            return Vec::new();
        }
        let features = self.standardizer.apply(batch.features);
        match &self.native {
            Some(native) if batch.len() <= NATIVE_MAX_ROWS => native.score(&features, N_FEATURES),
            _ => self.score_with_libtorch(batch, &features),
        }
    }

    fn save(&self, stem: &Path) -> Result<(), PredictError> {
        let weights = stem.with_extension("ot");
        self.vs.save(&weights).map_err(|e| PredictError::Checkpoint(format!("{}: {e}", weights.display())))?;
        let std_path = stem.with_extension("std.json");
        let text = serde_json::to_vec(&self.standardizer).map_err(|e| PredictError::Checkpoint(e.to_string()))?;
        std::fs::write(&std_path, text).map_err(|e| PredictError::Checkpoint(format!("{}: {e}", std_path.display())))
    }
}

/// Rebuilds a model of `kind` and loads its checkpoint from `stem.*`.
pub fn load(kind: ModelKind, stem: &Path) -> Result<TorchModel, PredictError> {
    let mut model = train(kind, &Dataset::default(), TorchTrainConfig { epochs: 0, ..TorchTrainConfig::default() })?;
    debug_assert_eq!(model.kind, kind);
    let weights = stem.with_extension("ot");
    model.vs.load(&weights).map_err(|e| PredictError::Checkpoint(format!("{}: {e}", weights.display())))?;
    let std_path = stem.with_extension("std.json");
    let text =
        std::fs::read(&std_path).map_err(|e| PredictError::Checkpoint(format!("{}: {e}", std_path.display())))?;
    model.standardizer = serde_json::from_slice(&text)
        .map_err(|e| PredictError::Checkpoint(format!("{} is corrupt: {e}", std_path.display())))?;
    model.refresh_native();
    Ok(model)
}

/// Trains one of the neural kinds on `data`.
pub fn train(kind: ModelKind, data: &Dataset, config: TorchTrainConfig) -> Result<TorchModel, PredictError> {
    limit_threads();
    tch::manual_seed(config.seed as i64);
    let device = device();
    let vs = nn::VarStore::new(device);
    let root = vs.root();
    let f = N_FEATURES as i64;
    let net = match kind {
        ModelKind::Logistic => Net::Dense(nn::seq().add(nn::linear(&root / "out", f, 1, Default::default()))),
        ModelKind::Mlp => Net::Dense(
            nn::seq()
                .add(nn::linear(&root / "l1", f, 32, Default::default()))
                .add_fn(|x| x.relu())
                .add(nn::linear(&root / "l2", 32, 16, Default::default()))
                .add_fn(|x| x.relu())
                .add(nn::linear(&root / "out", 16, 1, Default::default())),
        ),
        ModelKind::Gru => {
            let embed = nn::embedding(&root / "embed", BUCKETS, WIDTH, Default::default());
            let gru = nn::gru(&root / "gru", WIDTH, WIDTH, Default::default());
            let head = nn::seq()
                .add(nn::linear(&root / "h1", 3 * WIDTH + f, 32, Default::default()))
                .add_fn(|x| x.relu())
                .add(nn::linear(&root / "out", 32, 1, Default::default()));
            Net::Sequence(Box::new(SequenceNet { embed, gru, head }))
        }
        ModelKind::Gbdt => return Err(PredictError::BadConfig("gbdt is not a torch model".into())),
    };
    let standardizer = Standardizer::fit(&data.feature_rows());
    let mut model = TorchModel { kind, vs, net, standardizer, device, native: None };
    if data.is_empty() {
        model.refresh_native();
        return Ok(model);
    }
    let mut opt = nn::Adam::default()
        .build(&model.vs, config.learning_rate)
        .map_err(|e| PredictError::Torch(format!("optimizer: {e}")))?;
    let all = BatchBuf::from_dataset(data);
    let labels = data.labels();
    let n = data.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = config.seed | 1;
    let mut buf = BatchBuf::default();
    let mut y = Vec::with_capacity(config.batch);
    for _ in 0..config.epochs {
        // Fisher–Yates with a xorshift: deterministic for a seed.
        for i in (1..n).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for chunk in order.chunks(config.batch.max(1)) {
            super::throttle::pace();
            buf.clear();
            y.clear();
            for &i in chunk {
                buf.features.extend_from_slice(&all.features[i * N_FEATURES..(i + 1) * N_FEATURES]);
                buf.context.extend_from_slice(&all.context[i * CONTEXT..(i + 1) * CONTEXT]);
                buf.candidates.push(all.candidates[i]);
                y.push(labels[i]);
            }
            let features = model.standardizer.apply(&buf.features);
            let logits = model.logits(buf.view(), &features).view([-1]);
            let target = Tensor::from_slice(&y).to_device(device).to_kind(Kind::Float);
            let loss = logits.binary_cross_entropy_with_logits::<Tensor>(&target, None, None, Reduction::Mean);
            opt.backward_step(&loss);
        }
    }
    model.refresh_native();
    Ok(model)
}

#[cfg(test)]
mod tests {
    use augur_simulators::rng::Rng;

    use super::*;

    #[test]
    fn the_native_dense_nets_score_as_libtorch_does() {
        for kind in [ModelKind::Logistic, ModelKind::Mlp] {
            // Untrained: libtorch's random initial weights are as good a test as any.
            let model = train(kind, &Dataset::default(), TorchTrainConfig::default()).expect("model");
            let native = model.native.as_ref().expect("dense nets are copied out");
            let n = 300;
            let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
            let features: Vec<f32> = (0..n * N_FEATURES).map(|_| (rng.next_f64() as f32 - 0.5) * 6.0).collect();
            let context = vec![0u64; n * CONTEXT];
            let candidates = vec![0u64; n];
            let batch = Batch { features: &features, context: &context, candidates: &candidates };
            let want = model.score_with_libtorch(batch, &features);
            let got = native.score(&features, N_FEATURES);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{kind:?}: native {g} against libtorch {w}");
            }
        }
    }

    #[test]
    fn a_thread_that_scores_through_libtorch_runs_one_intra_op_thread() {
        // Trained (and so capped) on this thread, scored on another, as the
        // predictor thread scores what the training thread trained. OpenMP's
        // thread count is per thread, so the scoring thread needs its own cap.
        let model = train(ModelKind::Mlp, &Dataset::default(), TorchTrainConfig::default()).expect("model");
        let n = NATIVE_MAX_ROWS * 4;
        let features = vec![0.5f32; n * N_FEATURES];
        let context = vec![0u64; n * CONTEXT];
        let candidates = vec![0u64; n];
        let (scored, threads) = std::thread::spawn(move || {
            let batch = Batch { features: &features, context: &context, candidates: &candidates };
            (model.score(batch).len(), omp_max_threads())
        })
        .join()
        .expect("scoring thread");
        assert_eq!(scored, n);
        assert_eq!(threads, 1, "libtorch on the scoring thread would run {threads} OpenMP threads");
    }

    /// The calling thread's OpenMP thread count, asked of libgomp itself (loaded
    /// with libtorch): `tch::get_num_threads` would first apply libtorch's own
    /// setting to the thread, and so hide what its matrix products ran with.
    fn omp_max_threads() -> i32 {
        // SAFETY: dlsym with a NUL-terminated name only looks the symbol up.
        let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"omp_get_max_threads".as_ptr()) };
        assert!(!f.is_null(), "libtorch's CPU build loads libgomp; omp_get_max_threads is missing");
        // SAFETY: omp_get_max_threads is `int omp_get_max_threads(void)`.
        let f: extern "C" fn() -> libc::c_int = unsafe { std::mem::transmute(f) };
        f()
    }
}
