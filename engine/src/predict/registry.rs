//! Model versions: shadow evaluation, promotion, automatic rollback, checkpoints.
//!
//! A freshly trained model does not act at once. It runs in shadow: every labelled
//! sample that resolves is scored by the active model and by the shadow, so both
//! are judged on the same requests. After `trial` samples the shadow is promoted
//! only if it beats the active model ([`beats`]); otherwise it is rejected. A
//! promoted model's predecessor stays in memory for another trial, judged the
//! same way, and if it turns out better the registry rolls back to it.
//!
//! With a directory (serving), every model that becomes active is checkpointed
//! (`v{N}.json` metadata and calibration, plus weights: `v{N}.ot` through tch's
//! VarStore, or `v{N}.gbdt.json`), `registry.json` lists the versions, and the
//! active version is reloaded at start.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::dataset::{log_loss, precision_recall, Sample};
use super::model::{BatchBuf, ModelKind, Platt, TrainedModel, Validation};
use super::PredictError;

/// What the registry knows about one version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelMeta {
    /// 1, 2, …
    pub version: u32,
    /// Model kind name.
    pub kind: String,
    /// Seconds since the epoch when it was trained.
    pub created_unix_s: u64,
    /// Request position when training started.
    pub trained_at_seq: u64,
    /// Samples it was trained, calibrated and validated on.
    pub samples: usize,
    /// Offline validation figures.
    pub validation: Validation,
    /// shadow, active, previous, retired, rejected or rolled-back.
    pub state: String,
    /// Live figures from its last trial (same samples as its opponent).
    pub live: Option<LiveFigures>,
}

/// How a model did on live, labelled samples.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct LiveFigures {
    /// Samples judged.
    pub samples: usize,
    /// Log loss.
    #[serde(deserialize_with = "super::model::nan_from_null")]
    pub log_loss: f64,
    /// Precision of "P ≥ threshold" (prefetch accuracy's proxy; NaN when nothing
    /// scored above it).
    #[serde(deserialize_with = "super::model::nan_from_null")]
    pub accuracy: f64,
    /// Recall of "P ≥ threshold" (coverage's proxy).
    #[serde(deserialize_with = "super::model::nan_from_null")]
    pub coverage: f64,
}

/// Operator requests (`AUGUR.MODEL …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    /// Every version with its metadata.
    List,
    /// Make version N active now (from memory or its checkpoint).
    Promote(u32),
    /// Back to the version active before the current one.
    Rollback,
}

/// The challenger wins if its log loss is lower and neither accuracy nor coverage
/// at the current threshold is worse by more than 0.02, with their sum higher:
/// a model must serve prefetching better, not only fit the labels better.
pub fn beats(challenger: &LiveFigures, incumbent: &LiveFigures) -> bool {
    let nan_low = |v: f64| if v.is_nan() { 0.0 } else { v };
    let (ca, cc, ia, ic) = (
        nan_low(challenger.accuracy),
        nan_low(challenger.coverage),
        nan_low(incumbent.accuracy),
        nan_low(incumbent.coverage),
    );
    challenger.log_loss < incumbent.log_loss && ca >= ia - 0.02 && cc >= ic - 0.02 && ca + cc > ia + ic
}

fn live(p: &[f32], y: &[f32], threshold: f32) -> LiveFigures {
    let (accuracy, coverage) = precision_recall(p, y, threshold);
    LiveFigures { samples: p.len(), log_loss: log_loss(p, y), accuracy, coverage }
}

/// A model with its trial scores so far.
struct Slot {
    version: u32,
    model: TrainedModel,
    mine: Vec<f32>,
    theirs: Vec<f32>,
    labels: Vec<f32>,
}

impl Slot {
    fn new(version: u32, model: TrainedModel) -> Self {
        Slot { version, model, mine: Vec::new(), theirs: Vec::new(), labels: Vec::new() }
    }
}

/// What happened at a trial's end (for logs and the timeline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Decision {
    /// The shadow became active.
    Promoted(u32),
    /// The shadow lost and was dropped.
    Rejected(u32),
    /// The previous version beat the active one and is active again.
    RolledBack {
        /// Back to this version.
        to: u32,
        /// Away from this one.
        from: u32,
    },
    /// The previous version lost its trial and was retired.
    Retired(u32),
}

/// Versions and their trials.
pub struct Registry {
    metas: Vec<ModelMeta>,
    active: Option<Slot>,
    challenger: Option<Slot>,
    /// The challenger is the previous version (a rollback trial), not a shadow.
    challenger_is_previous: bool,
    trial: usize,
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("versions", &self.metas.len()).field("active", &self.active_version()).finish()
    }
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Registry {
    /// An empty registry kept in memory only; `trial` samples decide each shadow
    /// and rollback trial.
    pub fn in_memory(trial: usize) -> Self {
        Registry {
            metas: Vec::new(),
            active: None,
            challenger: None,
            challenger_is_previous: false,
            trial: trial.max(1),
            dir: None,
        }
    }

    /// As [`Registry::in_memory`]; with `dir`, versions are checkpointed there and
    /// the active one is reloaded.
    pub fn open(trial: usize, dir: Option<PathBuf>) -> Result<Self, PredictError> {
        let mut r = Registry { dir, ..Registry::in_memory(trial) };
        if let Some(dir) = r.dir.clone() {
            std::fs::create_dir_all(&dir).map_err(|e| PredictError::Checkpoint(format!("{}: {e}", dir.display())))?;
            let list = dir.join("registry.json");
            if list.exists() {
                let text = std::fs::read_to_string(&list)
                    .map_err(|e| PredictError::Checkpoint(format!("{}: {e}", list.display())))?;
                r.metas = serde_json::from_str(&text)
                    .map_err(|e| PredictError::Checkpoint(format!("{} is corrupt: {e}", list.display())))?;
                if let Some(meta) = r.metas.iter().find(|m| m.state == "active").cloned() {
                    let model = load(&dir, meta.version)?;
                    tracing::info!(version = meta.version, kind = meta.kind, "predictor: reloaded the active model");
                    r.active = Some(Slot::new(meta.version, model));
                }
            }
        }
        Ok(r)
    }

    /// Every version, oldest first.
    pub fn versions(&self) -> &[ModelMeta] {
        &self.metas
    }

    /// The active model.
    pub fn active(&self) -> Option<&TrainedModel> {
        self.active.as_ref().map(|s| &s.model)
    }

    /// The active version (0: none).
    pub fn active_version(&self) -> u32 {
        self.active.as_ref().map_or(0, |s| s.version)
    }

    /// Whether a trial is running.
    pub fn in_trial(&self) -> bool {
        self.challenger.is_some()
    }

    fn meta_mut(&mut self, version: u32) -> Option<&mut ModelMeta> {
        self.metas.iter_mut().find(|m| m.version == version)
    }

    fn set_state(&mut self, version: u32, state: &str) {
        if let Some(m) = self.meta_mut(version) {
            m.state = state.to_string();
        }
    }

    /// Registers a newly trained model: active at once if there is none, else a
    /// shadow (replacing a running trial's challenger).
    pub fn add(&mut self, model: TrainedModel, trained_at_seq: u64, samples: usize) -> u32 {
        let version = self.metas.last().map_or(0, |m| m.version) + 1;
        self.metas.push(ModelMeta {
            version,
            kind: model.kind.name().to_string(),
            created_unix_s: now_s(),
            trained_at_seq,
            samples,
            validation: model.validation,
            state: "shadow".into(),
            live: None,
        });
        if self.active.is_none() {
            self.activate(Slot::new(version, model));
            return version;
        }
        if let Some(old) = self.challenger.take() {
            let state = if self.challenger_is_previous { "retired" } else { "rejected" };
            self.set_state(old.version, state);
        }
        self.challenger = Some(Slot::new(version, model));
        self.challenger_is_previous = false;
        version
    }

    fn activate(&mut self, slot: Slot) {
        let version = slot.version;
        self.set_state(version, "active");
        if let Err(e) = self.checkpoint(&slot.model, version) {
            tracing::warn!("predictor: cannot checkpoint model v{version}: {e}");
        }
        self.active = Some(Slot { mine: Vec::new(), theirs: Vec::new(), labels: Vec::new(), ..slot });
        self.save_list();
    }

    /// Scores resolved samples with the active model and the challenger; ends the
    /// trial once `trial` samples are in.
    pub fn judge(&mut self, samples: &[Sample], threshold: f32) -> Option<Decision> {
        let (Some(active), Some(challenger)) = (self.active.as_ref(), self.challenger.as_mut()) else { return None };
        if samples.is_empty() {
            return None;
        }
        let batch = BatchBuf::from_dataset(&super::dataset::Dataset { samples: samples.to_vec() });
        challenger.mine.extend(challenger.model.predict(batch.view()));
        challenger.theirs.extend(active.model.predict(batch.view()));
        challenger.labels.extend(samples.iter().map(|s| f32::from(u8::from(s.label))));
        if challenger.labels.len() < self.trial {
            return None;
        }
        let challenger = self.challenger.take()?;
        let mine = live(&challenger.mine, &challenger.labels, threshold);
        let theirs = live(&challenger.theirs, &challenger.labels, threshold);
        let active_version = self.active_version();
        if let Some(m) = self.meta_mut(challenger.version) {
            m.live = Some(mine);
        }
        if let Some(m) = self.meta_mut(active_version) {
            m.live = Some(theirs);
        }
        let won = beats(&mine, &theirs);
        let decision = match (won, self.challenger_is_previous) {
            (true, false) => {
                let old = self.active.take()?;
                self.set_state(old.version, "previous");
                let to = challenger.version;
                self.activate(challenger);
                // The predecessor gets its own trial: if it does better, roll back.
                self.challenger = Some(Slot::new(old.version, old.model));
                self.challenger_is_previous = true;
                Decision::Promoted(to)
            }
            (false, false) => {
                self.set_state(challenger.version, "rejected");
                Decision::Rejected(challenger.version)
            }
            (true, true) => {
                let demoted = self.active.take()?;
                self.set_state(demoted.version, "rolled-back");
                let to = challenger.version;
                self.activate(challenger);
                Decision::RolledBack { to, from: demoted.version }
            }
            (false, true) => {
                self.set_state(challenger.version, "retired");
                Decision::Retired(challenger.version)
            }
        };
        self.save_list();
        tracing::info!(?decision, challenger = ?mine, active = ?theirs, "predictor: trial ended");
        Some(decision)
    }

    /// Runs an operator command; returns the reply text.
    pub fn admin(&mut self, command: &AdminCommand) -> Result<String, String> {
        match command {
            AdminCommand::List => Ok(serde_json::to_string(&self.metas).map_err(|e| e.to_string())?),
            AdminCommand::Rollback => {
                let previous = self
                    .metas
                    .iter()
                    .rev()
                    .find(|m| m.version < self.active_version() && m.state != "rejected")
                    .map(|m| m.version)
                    .ok_or_else(|| "no earlier version to roll back to".to_string())?;
                self.force(previous, "rolled-back")
            }
            AdminCommand::Promote(version) => self.force(*version, "previous"),
        }
    }

    fn force(&mut self, version: u32, old_state: &str) -> Result<String, String> {
        if version == self.active_version() {
            return Ok(format!("v{version} is already active"));
        }
        if !self.metas.iter().any(|m| m.version == version) {
            return Err(format!("no model version {version}"));
        }
        let slot = match self.challenger.take() {
            Some(c) if c.version == version => c,
            other => {
                self.challenger = other;
                let dir = self
                    .dir
                    .clone()
                    .ok_or_else(|| format!("v{version} is not in memory and there are no checkpoints"))?;
                Slot::new(version, load(&dir, version).map_err(|e| e.to_string())?)
            }
        };
        let demoted = self.active.take();
        if let Some(old) = &demoted {
            self.set_state(old.version, old_state);
        }
        self.activate(slot);
        match demoted {
            // An operator's promotion is guarded like an automatic one: the model
            // it replaced gets the rollback trial, so a bad choice is undone by the
            // live figures. (An explicit ROLLBACK is not second-guessed.)
            Some(old) if old_state == "previous" => {
                if let Some(pending) = self.challenger.take() {
                    self.set_state(pending.version, "retired");
                }
                self.challenger = Some(Slot::new(old.version, old.model));
                self.challenger_is_previous = true;
                self.save_list();
                Ok(format!("v{version} is active; v{} is on trial to take over again if it does better", old.version))
            }
            _ => Ok(format!("v{version} is active")),
        }
    }

    fn checkpoint(&self, model: &TrainedModel, version: u32) -> Result<(), PredictError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let stem = dir.join(format!("v{version}"));
        model.scorer.save(&stem)?;
        let header =
            CheckpointHeader { kind: model.kind.name().to_string(), platt: model.platt, validation: model.validation };
        write_json(&stem.with_extension("json"), &header)
    }

    fn save_list(&self) {
        if let Some(dir) = &self.dir {
            if let Err(e) = write_json(&dir.join("registry.json"), &self.metas) {
                tracing::warn!("predictor: cannot save the model registry: {e}");
            }
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointHeader {
    kind: String,
    platt: Platt,
    validation: Validation,
}

/// Writes JSON atomically (temp file, then rename), so a crash leaves the old file.
fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), PredictError> {
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_vec_pretty(value).map_err(|e| PredictError::Checkpoint(e.to_string()))?;
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| PredictError::Checkpoint(format!("{}: {e}", path.display())))
}

/// Loads version `version`'s checkpoint from `dir`.
pub fn load(dir: &Path, version: u32) -> Result<TrainedModel, PredictError> {
    let stem = dir.join(format!("v{version}"));
    let path = stem.with_extension("json");
    let text =
        std::fs::read_to_string(&path).map_err(|e| PredictError::Checkpoint(format!("{}: {e}", path.display())))?;
    let header: CheckpointHeader = serde_json::from_str(&text)
        .map_err(|e| PredictError::Checkpoint(format!("{} is corrupt: {e}", path.display())))?;
    let kind: ModelKind = header.kind.parse()?;
    let scorer = super::trainer::load(kind, &stem)?;
    Ok(TrainedModel { kind, scorer, platt: header.platt, validation: header.validation })
}

#[cfg(test)]
mod tests {
    use super::super::dataset::{Dataset, CONTEXT};
    use super::super::features::N_FEATURES;
    use super::super::trainer::{train_all, TrainConfig};
    use super::*;

    /// Samples whose label follows feature 0 (`sign` +1) or its opposite (-1).
    fn samples(n: usize, sign: f32, seed: u64) -> Vec<Sample> {
        let mut state = seed | 1;
        (0..n)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let x = (state >> 11) as f32 / (1u64 << 53) as f32;
                let mut features = [0f32; N_FEATURES];
                features[0] = x;
                let label = if sign > 0.0 { x > 0.5 } else { x <= 0.5 };
                Sample { seq: i as u64, features, context: [0; CONTEXT], candidate: i as u64, label, issued: false }
            })
            .collect()
    }

    fn model(sign: f32, seed: u64) -> TrainedModel {
        let config = TrainConfig { models: vec![ModelKind::Logistic], ..TrainConfig::default() };
        let mut models = train_all(&Dataset { samples: samples(4000, sign, seed) }, &config).expect("train");
        models.remove(0)
    }

    #[test]
    fn checkpoints_reload_the_active_version_with_identical_predictions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut r = Registry::open(100, Some(dir.path().to_path_buf())).expect("open");
        assert_eq!(r.add(model(1.0, 3), 10, 4000), 1);
        let probe = Dataset { samples: samples(50, 1.0, 99) };
        let batch = BatchBuf::from_dataset(&probe);
        let before = r.active().expect("active").predict(batch.view());
        drop(r);
        let r = Registry::open(100, Some(dir.path().to_path_buf())).expect("reopen");
        assert_eq!(r.active_version(), 1);
        assert_eq!(r.versions()[0].state, "active");
        let after = r.active().expect("reloaded").predict(batch.view());
        for (a, b) in before.iter().zip(&after) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        drop(r);
        // A figure with nothing behind it is NaN, which JSON stores as null: the
        // list must still load (a server once refused to start on one).
        let mut r = Registry::open(100, Some(dir.path().to_path_buf())).expect("reopen");
        r.add(model(1.0, 4), 20, 4000);
        let nothing_above = samples(200, 1.0, 7);
        assert!(r.judge(&nothing_above, 1.1).is_some(), "a threshold no score reaches: NaN precision");
        assert!(r.versions()[1].live.is_some_and(|l| l.accuracy.is_nan()));
        drop(r);
        let r = Registry::open(100, Some(dir.path().to_path_buf())).expect("a list holding NaN reloads");
        assert!(r.versions()[1].live.is_some_and(|l| l.accuracy.is_nan()));
        drop(r);
        std::fs::write(dir.path().join("registry.json"), b"{not json").expect("corrupt");
        let err = Registry::open(100, Some(dir.path().to_path_buf())).expect_err("corrupt list");
        assert!(err.to_string().contains("registry.json is corrupt"), "{err}");
    }

    #[test]
    fn a_better_shadow_is_promoted_a_worse_one_rejected_and_a_regression_rolled_back() {
        let mut r = Registry::in_memory(1000);
        r.add(model(-1.0, 1), 0, 4000); // v1 learned the opposite rule: bad on phase A
        assert_eq!(r.add(model(1.0, 2), 0, 4000), 2);
        assert_eq!(r.active_version(), 1, "a new model starts in shadow");
        let phase_a = samples(1000, 1.0, 5);
        assert_eq!(r.judge(&phase_a, 0.6), Some(Decision::Promoted(2)));
        assert_eq!(r.active_version(), 2);
        // The pattern flips back: v1, on trial as the previous version, wins.
        let phase_b = samples(1000, -1.0, 6);
        assert_eq!(r.judge(&phase_b, 0.6), Some(Decision::RolledBack { to: 1, from: 2 }));
        assert_eq!(r.active_version(), 1);
        assert_eq!(r.versions()[1].state, "rolled-back");
        // A worse shadow never acts.
        r.add(model(1.0, 7), 0, 4000);
        assert_eq!(r.judge(&phase_b, 0.6), Some(Decision::Rejected(3)));
        assert_eq!(r.active_version(), 1);
        let live = r.versions()[2].live.expect("judged");
        assert_eq!(live.samples, 1000);
    }

    #[test]
    fn operators_list_promote_and_roll_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut r = Registry::open(1000, Some(dir.path().to_path_buf())).expect("open");
        r.add(model(1.0, 1), 0, 4000);
        r.add(model(1.0, 2), 0, 4000);
        assert_eq!(
            r.admin(&AdminCommand::Promote(2)),
            Ok("v2 is active; v1 is on trial to take over again if it does better".into())
        );
        assert_eq!(r.active_version(), 2);
        let list: Vec<ModelMeta> = serde_json::from_str(&r.admin(&AdminCommand::List).expect("list")).expect("json");
        assert_eq!(list.iter().map(|m| m.state.as_str()).collect::<Vec<_>>(), ["previous", "active"]);
        assert_eq!(r.admin(&AdminCommand::Rollback), Ok("v1 is active".into()));
        assert_eq!(r.active_version(), 1, "v1 came back from its checkpoint");
        assert!(r.admin(&AdminCommand::Promote(9)).is_err());
    }

    #[test]
    fn a_bad_model_an_operator_promotes_is_rolled_back_by_its_live_trial() {
        let mut r = Registry::in_memory(1000);
        r.add(model(1.0, 1), 0, 4000); // v1: the rule the traffic follows
        r.add(model(-1.0, 2), 0, 4000); // v2: deliberately the opposite rule
        assert!(r.admin(&AdminCommand::Promote(2)).is_ok());
        assert_eq!(r.active_version(), 2);
        let traffic = samples(1000, 1.0, 8);
        assert_eq!(r.judge(&traffic, 0.6), Some(Decision::RolledBack { to: 1, from: 2 }));
        assert_eq!(r.active_version(), 1);
        assert_eq!(r.versions()[1].state, "rolled-back");
    }
}
