//! Failure injection: the faults a test can arm, and how they are matched to requests.
//!
//! Faults are (de)serialized with a `kind` tag so the binary's `/_sim/faults` endpoint accepts
//! `{"model":"m","fault":{"kind":"status","code":500,"message":"boom"},"times":1}`.
//! Durations are given in milliseconds on the wire (`ms`, `stall_ms`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One injected failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "FaultSpec", from = "FaultSpec")]
pub enum Fault {
    /// Respond with that status and the flavor's error body shape.
    Status {
        /// HTTP status code.
        code: u16,
        /// Error text.
        message: String,
    },
    /// Accept, then drop the connection without any response.
    Reset,
    /// Wait before sending the response head.
    SlowFirstByte(Duration),
    /// Stream: send N chunks (counting the first/role chunk), then close the connection abruptly
    /// (no done / no `[DONE]`). Non-stream: drop the connection.
    CutAfter {
        /// Chunks sent before the cut.
        chunks: usize,
    },
    /// Stream: send N chunks, then an error line, then close without done / `[DONE]`.
    /// Non-stream: HTTP 500 with the same error text.
    ErrorLineAfter {
        /// Chunks sent before the error line.
        chunks: usize,
    },
    /// Stream: send N chunks, then nothing for `stall`, then continue normally.
    /// Non-stream: the whole response is delayed by `stall`.
    StallAfter {
        /// Chunks sent before the stall.
        chunks: usize,
        /// How long to stay silent.
        stall: Duration,
    },
    /// Non-stream: send the head and the first byte of the body, then nothing for `stall`, then
    /// the rest (a server that trickles its answer). Stream: as `StallAfter { chunks: 1 }`.
    StallBody {
        /// How long to stay silent mid-body.
        stall: Duration,
    },
}

/// A fault plus which requests it applies to and how often.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// `None` = any model.
    #[serde(default)]
    pub model: Option<String>,
    /// What to do.
    pub fault: Fault,
    /// `None` = until cleared.
    #[serde(default)]
    pub times: Option<u32>,
}

impl FaultRule {
    /// A rule for every model, active until cleared.
    pub fn always(fault: Fault) -> Self {
        Self {
            model: None,
            fault,
            times: None,
        }
    }

    /// A rule for one model, applied `times` times.
    pub fn for_model(model: &str, fault: Fault, times: Option<u32>) -> Self {
        Self {
            model: Some(model.to_owned()),
            fault,
            times,
        }
    }
}

/// The wire form of [`Fault`].
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum FaultSpec {
    Status { code: u16, message: String },
    Reset,
    SlowFirstByte { ms: u64 },
    CutAfter { chunks: usize },
    ErrorLineAfter { chunks: usize },
    StallAfter { chunks: usize, stall_ms: u64 },
    StallBody { stall_ms: u64 },
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl From<Fault> for FaultSpec {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Status { code, message } => Self::Status { code, message },
            Fault::Reset => Self::Reset,
            Fault::SlowFirstByte(d) => Self::SlowFirstByte { ms: millis(d) },
            Fault::CutAfter { chunks } => Self::CutAfter { chunks },
            Fault::ErrorLineAfter { chunks } => Self::ErrorLineAfter { chunks },
            Fault::StallAfter { chunks, stall } => Self::StallAfter {
                chunks,
                stall_ms: millis(stall),
            },
            Fault::StallBody { stall } => Self::StallBody {
                stall_ms: millis(stall),
            },
        }
    }
}

impl From<FaultSpec> for Fault {
    fn from(f: FaultSpec) -> Self {
        match f {
            FaultSpec::Status { code, message } => Self::Status { code, message },
            FaultSpec::Reset => Self::Reset,
            FaultSpec::SlowFirstByte { ms } => Self::SlowFirstByte(Duration::from_millis(ms)),
            FaultSpec::CutAfter { chunks } => Self::CutAfter { chunks },
            FaultSpec::ErrorLineAfter { chunks } => Self::ErrorLineAfter { chunks },
            FaultSpec::StallAfter { chunks, stall_ms } => Self::StallAfter {
                chunks,
                stall: Duration::from_millis(stall_ms),
            },
            FaultSpec::StallBody { stall_ms } => Self::StallBody {
                stall: Duration::from_millis(stall_ms),
            },
        }
    }
}

/// The armed rules, in the order they were added.
#[derive(Default)]
pub(crate) struct FaultBook {
    rules: Vec<FaultRule>,
}

impl FaultBook {
    pub(crate) fn add(&mut self, rule: FaultRule) {
        if rule.times != Some(0) {
            self.rules.push(rule);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    /// Takes the first rule matching any of `names` (or any model), consuming one use of it.
    pub(crate) fn take(&mut self, names: &[&str]) -> Option<Fault> {
        let idx = self.rules.iter().position(|r| match &r.model {
            None => true,
            Some(m) => names.iter().any(|n| crate::state::same_model(m, n)),
        })?;
        let rule = self.rules.get_mut(idx)?;
        let fault = rule.fault.clone();
        if let Some(t) = rule.times.as_mut() {
            *t = t.saturating_sub(1);
            if *t == 0 {
                self.rules.remove(idx);
            }
        }
        Some(fault)
    }
}
