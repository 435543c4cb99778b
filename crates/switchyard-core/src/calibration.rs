//! Calibration: learning how far an estimated token count is from what a backend reports.
//!
//! For a deployment without its own tokenizer the router predicts prompt sizes with a heuristic.
//! Every answer reports the real prompt size (`prompt_eval_count`, `usage.prompt_tokens`), so the
//! router learns, per deployment, `reported ≈ a·content + c·template`: a content factor (how the
//! heuristic compares with the model's tokenizer) and a template factor (how our template
//! overhead compares with the model's real template). Two factors matter: on short prompts the
//! template dominates, on long ones the content; a single ratio learned from a short prompt would
//! misjudge the next long one.
//!
//! The fit is an exponentially weighted least-squares solve over the recent answers (a few
//! floating-point sums behind a mutex, taken once per answer). Predictions read the solved
//! factors from one atomic word. The safety margin starts wide (an uncalibrated heuristic can be
//! off by a quarter) and shrinks to twice the observed error as the estimate proves itself.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Factor bounds: outside them an observation says more about a broken backend than a tokenizer.
const MIN_FACTOR: f64 = 0.2;
const MAX_FACTOR: f64 = 5.0;
/// Observations before the margin starts to shrink.
const WARM_UP: u32 = 5;
/// Margin while warming up.
const COLD_MARGIN: f32 = 0.10;
/// Weight kept by older observations at each new one (an effective memory of ~50 answers).
const DECAY: f64 = 0.98;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibrationState {
    /// Multiply the content estimate by this.
    pub content_factor: f32,
    /// Multiply the template estimate by this.
    pub template_factor: f32,
    /// Mean absolute relative error of calibrated predictions (exponentially weighted).
    pub error: f32,
    pub samples: u32,
}

impl Default for CalibrationState {
    fn default() -> Self {
        CalibrationState {
            content_factor: 1.0,
            template_factor: 1.0,
            error: 0.0,
            samples: 0,
        }
    }
}

/// Weighted sums of the least-squares problem.
struct Sums {
    cc: f64,
    ct: f64,
    tt: f64,
    cy: f64,
    ty: f64,
    sum_x: f64,
    sum_y: f64,
}

/// Evidence the fit starts from: one pure-content and one pure-template observation at factor 1
/// (as if 200 content tokens and 20 template tokens had been reported exactly). It keeps one tiny
/// prompt from swinging the factors, and fades like any other observation.
const PRIOR_CONTENT: f64 = 200.0;
const PRIOR_TEMPLATE: f64 = 20.0;

impl Default for Sums {
    fn default() -> Self {
        Sums {
            cc: PRIOR_CONTENT * PRIOR_CONTENT,
            ct: 0.0,
            tt: PRIOR_TEMPLATE * PRIOR_TEMPLATE,
            cy: PRIOR_CONTENT * PRIOR_CONTENT,
            ty: PRIOR_TEMPLATE * PRIOR_TEMPLATE,
            sum_x: PRIOR_CONTENT + PRIOR_TEMPLATE,
            sum_y: PRIOR_CONTENT + PRIOR_TEMPLATE,
        }
    }
}

/// One deployment's calibration.
#[derive(Default)]
pub struct Calibration {
    /// `content_factor` and `template_factor` as two f32.
    factors: AtomicU64,
    /// `error` (f32 bits) and `samples`.
    quality: AtomicU64,
    sums: Mutex<Sums>,
}

fn pack2(a: f32, b: f32) -> u64 {
    ((a.to_bits() as u64) << 32) | b.to_bits() as u64
}

fn unpack2(v: u64) -> (f32, f32) {
    (f32::from_bits((v >> 32) as u32), f32::from_bits(v as u32))
}

impl Calibration {
    pub fn state(&self) -> CalibrationState {
        let q = self.quality.load(Ordering::Relaxed);
        let samples = (q & 0xffff_ffff) as u32;
        if samples == 0 {
            return CalibrationState::default();
        }
        let (content_factor, template_factor) = unpack2(self.factors.load(Ordering::Relaxed));
        CalibrationState {
            content_factor,
            template_factor,
            error: f32::from_bits((q >> 32) as u32),
            samples,
        }
    }

    /// The calibrated prediction for a raw estimate split into content and template tokens.
    pub fn apply(&self, content: u32, template: u32) -> u32 {
        let s = self.state();
        (content as f32 * s.content_factor + template as f32 * s.template_factor)
            .round()
            .max(0.0) as u32
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

    /// Learns from one answer whose raw estimate was `content + template` tokens and whose
    /// backend reported `reported`. Implausible observations are ignored.
    pub fn observe(&self, content: u32, template: u32, reported: u32) {
        let raw = content.saturating_add(template);
        if raw == 0 || reported == 0 {
            return;
        }
        let ratio = reported as f64 / raw as f64;
        if !(MIN_FACTOR..=MAX_FACTOR).contains(&ratio) {
            return;
        }
        let before = self.state();
        let predicted = self.apply(content, template) as f64;
        let err = ((predicted - reported as f64) / reported as f64).abs() as f32;

        let (c, t, y) = (content as f64, template as f64, reported as f64);
        let mut s = self.sums.lock().unwrap_or_else(|p| p.into_inner());
        s.cc = s.cc * DECAY + c * c;
        s.ct = s.ct * DECAY + c * t;
        s.tt = s.tt * DECAY + t * t;
        s.cy = s.cy * DECAY + c * y;
        s.ty = s.ty * DECAY + t * y;
        s.sum_x = s.sum_x * DECAY + c + t;
        s.sum_y = s.sum_y * DECAY + y;
        let det = s.cc * s.tt - s.ct * s.ct;
        // Solve only when the observations tell content and template apart (well conditioned);
        // otherwise one common factor is all the data supports.
        let (a, b) = if det > 1e-6 * s.cc * s.tt && s.cc > 0.0 && s.tt > 0.0 {
            (
                (s.cy * s.tt - s.ct * s.ty) / det,
                (s.cc * s.ty - s.ct * s.cy) / det,
            )
        } else {
            let r = s.sum_y / s.sum_x.max(1.0);
            (r, r)
        };
        let (a, b) =
            if (MIN_FACTOR..=MAX_FACTOR).contains(&a) && (0.0..=MAX_FACTOR * 4.0).contains(&b) {
                (a, b)
            } else {
                let r = s.sum_y / s.sum_x.max(1.0);
                (r, r)
            };
        self.factors
            .store(pack2(a as f32, b as f32), Ordering::Relaxed);
        let alpha = (1.0 / (before.samples as f32 + 1.0)).max(0.2);
        let error = if before.samples == 0 {
            err
        } else {
            before.error + alpha * (err - before.error)
        };
        let samples = before.samples.saturating_add(1);
        self.quality.store(
            ((error.to_bits() as u64) << 32) | samples as u64,
            Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_content_and_template_factors_apart() {
        let c = Calibration::default();
        assert_eq!(c.apply(1000, 20), 1020);
        assert!((c.margin_ratio(0.02) - 0.10).abs() < 1e-6);
        // The backend's tokenizer gives 0.8 per estimated content token; its template is 10
        // tokens where we assumed 20. Short and long prompts alternate.
        for i in 0..40u32 {
            let content = if i % 3 == 0 { 2 + i } else { 800 + 37 * i };
            let template = 20;
            let reported = (content as f32 * 0.8).round() as u32 + 10;
            c.observe(content, template, reported);
        }
        let s = c.state();
        assert!((s.content_factor - 0.8).abs() < 0.01, "{s:?}");
        assert!((s.template_factor - 0.5).abs() < 0.05, "{s:?}");
        let predicted = c.apply(2000, 20) as f32;
        assert!((predicted - 1610.0).abs() / 1610.0 < 0.01, "{predicted}");
        assert!(c.margin_ratio(0.02) < 0.05, "{s:?}");
    }

    #[test]
    fn a_short_prompt_does_not_mislead_the_next_long_one() {
        let c = Calibration::default();
        // One tiny prompt: 2 content + 20 template estimated, 12 reported.
        c.observe(2, 20, 12);
        // The next long prompt is still predicted near its size, not at half of it.
        let p = c.apply(1600, 20) as f32;
        assert!((p - 1615.0).abs() < 20.0, "{p}");
    }

    #[test]
    fn implausible_observations_are_ignored() {
        let c = Calibration::default();
        c.observe(1000, 20, 10);
        c.observe(0, 0, 10);
        assert_eq!(c.state().samples, 0);
    }
}
