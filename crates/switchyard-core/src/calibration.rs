//! Calibration: learning what an estimated prompt really costs on one deployment.
//!
//! For a deployment without its own tokenizer the router predicts prompt sizes with a heuristic
//! that prices a few features of the text (words, long-word pieces, digits, symbols, non-ASCII
//! characters, spacing) plus the chat template. Every answer reports the real prompt size
//! (`prompt_eval_count`, `usage.prompt_tokens`), so the router learns, per deployment, the real
//! price of each feature: `reported ≈ Σ wᵢ·featureᵢ + w_t·template`. A single ratio cannot do this:
//! one model splits every digit, another keeps long words whole, and on short prompts the template
//! dominates while on long ones the content does.
//!
//! The fit is exponentially weighted ridge regression, starting from the heuristic's own prices
//! as a weak prior, re-solved on each answer (an 8×8 system behind a mutex, microseconds). The
//! prediction reads the solved weights under a read lock. The safety margin starts wide (an
//! uncalibrated heuristic can be off by a quarter) and shrinks to twice the observed error as the
//! estimate proves itself.

// Matrix arithmetic reads clearer with indices than with zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::sync::{Mutex, RwLock};

use crate::tokens::TextFeatures;

/// Features plus the template column.
pub const DIMS: usize = TextFeatures::LEN + 1;

/// One observation's inputs: text features, then template tokens.
pub type Inputs = [f64; DIMS];

/// Observations before the margin starts to shrink.
const WARM_UP: u32 = 5;
/// Margin while warming up.
const COLD_MARGIN: f32 = 0.10;
/// Weight kept by older observations at each new one (an effective memory of ~50 answers).
const DECAY: f64 = 0.98;
/// Strength of the prior (in squared tokens per dimension): as much as a few dozen tokens of
/// evidence, so one real observation outweighs it where it has information.
const PRIOR: f64 = 400.0;
/// A whole prediction outside this ratio of the report is a broken backend, not a tokenizer.
const PLAUSIBLE: std::ops::RangeInclusive<f64> = 0.2..=5.0;

/// The heuristic's prices, then 1.0 for the template.
fn prior_weights() -> Inputs {
    let mut w = [1.0; DIMS];
    w[..TextFeatures::LEN].copy_from_slice(&TextFeatures::HEURISTIC_WEIGHTS);
    w
}

/// Builds the inputs of one prediction.
pub fn inputs(features: &TextFeatures, template: u32) -> Inputs {
    let mut x = [0.0; DIMS];
    x[..TextFeatures::LEN].copy_from_slice(&features.to_array());
    x[TextFeatures::LEN] = template as f64;
    x
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibrationState {
    pub weights: Inputs,
    /// Mean absolute relative error of calibrated predictions (recent answers weigh more).
    pub error: f32,
    pub samples: u32,
}

impl Default for CalibrationState {
    fn default() -> Self {
        CalibrationState {
            weights: prior_weights(),
            error: 0.0,
            samples: 0,
        }
    }
}

/// The normal equations `A·w = b` of the weighted ridge fit.
struct Normal {
    a: [[f64; DIMS]; DIMS],
    b: Inputs,
}

impl Default for Normal {
    fn default() -> Self {
        let w0 = prior_weights();
        let mut a = [[0.0; DIMS]; DIMS];
        let mut b = [0.0; DIMS];
        for i in 0..DIMS {
            a[i][i] = PRIOR;
            b[i] = PRIOR * w0[i];
        }
        Normal { a, b }
    }
}

impl Normal {
    fn add(&mut self, x: &Inputs, y: f64) {
        for i in 0..DIMS {
            for j in 0..DIMS {
                self.a[i][j] = self.a[i][j] * DECAY + x[i] * x[j];
            }
            self.b[i] = self.b[i] * DECAY + x[i] * y;
        }
        // The prior decays with everything else; keep a floor of it so directions the data never
        // explores (no digits seen yet, say) stay at the heuristic's price.
        let w0 = prior_weights();
        for i in 0..DIMS {
            let floor = PRIOR * 0.1;
            if self.a[i][i] < floor {
                self.a[i][i] += floor;
                self.b[i] += floor * w0[i];
            }
        }
    }

    /// Gaussian elimination with partial pivoting; `None` if the system is singular.
    fn solve(&self) -> Option<Inputs> {
        let mut m = self.a;
        let mut v = self.b;
        for col in 0..DIMS {
            let pivot = (col..DIMS).max_by(|&r, &s| m[r][col].abs().total_cmp(&m[s][col].abs()))?;
            if m[pivot][col].abs() < 1e-9 {
                return None;
            }
            m.swap(col, pivot);
            v.swap(col, pivot);
            for row in col + 1..DIMS {
                let f = m[row][col] / m[col][col];
                if f != 0.0 {
                    for k in col..DIMS {
                        m[row][k] -= f * m[col][k];
                    }
                    v[row] -= f * v[col];
                }
            }
        }
        let mut w = [0.0; DIMS];
        for row in (0..DIMS).rev() {
            let mut acc = v[row];
            for k in row + 1..DIMS {
                acc -= m[row][k] * w[k];
            }
            w[row] = acc / m[row][row];
        }
        w.iter().all(|x| x.is_finite()).then_some(w)
    }
}

/// One deployment's calibration.
#[derive(Default)]
pub struct Calibration {
    state: RwLock<CalibrationState>,
    normal: Mutex<Normal>,
}

fn dot(w: &Inputs, x: &Inputs) -> f64 {
    w.iter().zip(x).map(|(a, b)| a * b).sum()
}

impl Calibration {
    pub fn state(&self) -> CalibrationState {
        *self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The calibrated prediction for these inputs.
    pub fn predict(&self, x: &Inputs) -> u32 {
        let w = self.state().weights;
        dot(&w, x).round().max(0.0) as u32
    }

    /// The safety-margin ratio to use now: wide until warmed up, then twice the observed error,
    /// never below `floor`.
    pub fn margin_ratio(&self, floor: f32) -> f32 {
        let s = self.state();
        if s.samples < WARM_UP {
            COLD_MARGIN.max(floor)
        } else {
            (2.0 * s.error).max(floor)
        }
    }

    /// Learns from one answer: its inputs and the prompt size the backend reported.
    /// Implausible observations are ignored.
    pub fn observe(&self, x: &Inputs, reported: u32) {
        let raw = dot(&prior_weights(), x);
        if raw <= 0.0 || reported == 0 || !PLAUSIBLE.contains(&(reported as f64 / raw)) {
            return;
        }
        let y = reported as f64;
        let before = self.state();
        let err = ((dot(&before.weights, x) - y) / y).abs() as f32;
        let solved = {
            let mut n = self.normal.lock().unwrap_or_else(|p| p.into_inner());
            n.add(x, y);
            n.solve()
        };
        let alpha = (1.0 / (before.samples as f32 + 1.0)).max(0.2);
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = solved {
            s.weights = w;
        }
        s.error = if s.samples == 0 {
            err
        } else {
            s.error + alpha * (err - s.error)
        };
        s.samples = s.samples.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_inputs(text: &str, template: u32) -> Inputs {
        inputs(&TextFeatures::of(text), template)
    }

    #[test]
    fn learns_feature_prices_and_the_template() {
        let c = Calibration::default();
        assert!((c.margin_ratio(0.02) - 0.10).abs() < 1e-6);
        // A model whose tokenizer counts every word as one token however long, splits every digit
        // and uses a 10-token template where the heuristic assumed 20.
        let truth = |t: &str| {
            let f = TextFeatures::of(t);
            f.words + f.digits + f.symbols + f.non_ascii + f.spacing + 10
        };
        let texts: Vec<String> = (0..60)
            .map(|i| {
                let mut s = String::new();
                for j in 0..(50 + i * 7) {
                    let w = [
                        "cat",
                        "internationalization",
                        "42017",
                        "tokenizer",
                        "a,",
                        "fits",
                    ][(i * 3 + j) % 6];
                    s.push_str(w);
                    s.push(' ');
                }
                s
            })
            .collect();
        for t in &texts[..40] {
            c.observe(&text_inputs(t, 20), truth(t));
        }
        for t in &texts[40..] {
            let p = c.predict(&text_inputs(t, 20)) as f64;
            let y = truth(t) as f64;
            assert!((p - y).abs() / y < 0.01, "predicted {p}, reported {y}");
        }
        assert!(c.margin_ratio(0.02) < 0.05, "{:?}", c.state());
    }

    #[test]
    fn a_short_prompt_does_not_mislead_the_next_long_one() {
        let c = Calibration::default();
        c.observe(&text_inputs("hi there", 20), 12);
        let long = "the cat sat on the mat ".repeat(270);
        let p = c.predict(&text_inputs(&long, 20)) as f64;
        let raw = TextFeatures::of(&long).heuristic_tokens() as f64 + 20.0;
        assert!((p - raw).abs() / raw < 0.05, "{p} vs {raw}");
    }

    #[test]
    fn implausible_observations_are_ignored() {
        let c = Calibration::default();
        c.observe(&text_inputs(&"word ".repeat(1000), 20), 10);
        c.observe(&[0.0; DIMS], 10);
        assert_eq!(c.state().samples, 0);
    }
}
