//! Prompt size prediction: how many tokens a chat request will occupy in a model's context.
//!
//! Routing by context fit needs the count *before* sending. The count is the model's tokenizer
//! applied to every message, plus the chat template's own tokens, plus a safety margin for what
//! the estimate cannot see. Tokenizers sit behind [`TokenCounter`] so that an exact per-model
//! tokenizer can replace the calibrated heuristic without touching the planner.

/// Counts the tokens of a piece of text the way some model's tokenizer would.
pub trait TokenCounter: Send + Sync {
    /// Token count of `text` (without BOS or template tokens).
    fn count(&self, text: &str) -> u32;
    /// Whether counts are exact (the model's own vocabulary) or an estimate.
    fn is_exact(&self) -> bool;
    /// For estimating counters: the features behind the count, which calibration re-weights.
    fn features(&self, _text: &str) -> Option<TextFeatures> {
        None
    }
}

/// What the heuristic sees in a text: the counts it prices, kept apart so calibration can learn
/// each one's real price for a given model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextFeatures {
    /// Runs of ASCII letters (words).
    pub words: u32,
    /// Extra pieces of long words: one per six letters beyond the first six.
    pub long_word_extra: u32,
    /// Digit groups of up to three.
    pub digit_groups: u32,
    /// Single digits (some tokenizers split every digit).
    pub digits: u32,
    /// ASCII punctuation and symbols.
    pub symbols: u32,
    /// Non-ASCII characters, weighted by UTF-8 length (half a token per byte).
    pub non_ascii: u32,
    /// Whitespace the tokenizer cannot fold into the next word: runs, newlines, tabs.
    pub spacing: u32,
}

impl TextFeatures {
    /// Number of features.
    pub const LEN: usize = 7;

    /// One pass over `text`.
    pub fn of(text: &str) -> Self {
        let mut f = TextFeatures::default();
        let mut letters: u32 = 0;
        let mut digits: u32 = 0;
        let mut spaces: u32 = 0;
        for ch in text.chars() {
            if ch.is_ascii_alphabetic() || ch.is_ascii_digit() {
                // A run of several spaces keeps one for the next word and costs a token.
                if spaces > 1 {
                    f.spacing += 1;
                }
                spaces = 0;
            }
            if ch.is_ascii_alphabetic() {
                f.flush_digits(&mut digits);
                letters += 1;
                continue;
            }
            f.flush_letters(&mut letters);
            if ch.is_ascii_digit() {
                digits += 1;
                continue;
            }
            f.flush_digits(&mut digits);
            if ch == ' ' {
                spaces += 1;
                continue;
            }
            if spaces > 0 {
                f.spacing += 1;
                spaces = 0;
            }
            if ch.is_ascii() {
                f.symbols += 1;
            } else {
                // CJK and most other scripts: one to two tokens per character; emoji more.
                f.non_ascii += (ch.len_utf8() as u32).div_ceil(2).max(1);
            }
        }
        f.flush_letters(&mut letters);
        f.flush_digits(&mut digits);
        if spaces > 0 {
            f.spacing += 1;
        }
        f
    }

    fn flush_letters(&mut self, letters: &mut u32) {
        if *letters > 0 {
            self.words += 1;
            self.long_word_extra += letters.div_ceil(6) - 1;
            *letters = 0;
        }
    }

    fn flush_digits(&mut self, digits: &mut u32) {
        if *digits > 0 {
            self.digit_groups += digits.div_ceil(3);
            self.digits += *digits;
            *digits = 0;
        }
    }

    /// Adds another text's features.
    pub fn add(&mut self, o: &TextFeatures) {
        self.words = self.words.saturating_add(o.words);
        self.long_word_extra = self.long_word_extra.saturating_add(o.long_word_extra);
        self.digit_groups = self.digit_groups.saturating_add(o.digit_groups);
        self.digits = self.digits.saturating_add(o.digits);
        self.symbols = self.symbols.saturating_add(o.symbols);
        self.non_ascii = self.non_ascii.saturating_add(o.non_ascii);
        self.spacing = self.spacing.saturating_add(o.spacing);
    }

    /// The heuristic's own price: every feature at one token, single digits free (their groups
    /// are priced).
    pub fn heuristic_tokens(&self) -> u32 {
        self.words
            .saturating_add(self.long_word_extra)
            .saturating_add(self.digit_groups)
            .saturating_add(self.symbols)
            .saturating_add(self.non_ascii)
            .saturating_add(self.spacing)
    }

    /// The features as numbers, in a fixed order.
    pub fn to_array(&self) -> [f64; Self::LEN] {
        [
            self.words as f64,
            self.long_word_extra as f64,
            self.digit_groups as f64,
            self.digits as f64,
            self.symbols as f64,
            self.non_ascii as f64,
            self.spacing as f64,
        ]
    }

    /// The heuristic's prices in [`TextFeatures::to_array`] order.
    pub const HEURISTIC_WEIGHTS: [f64; Self::LEN] = [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0];
}

/// A tokenizer-free estimate shaped like byte-level BPE vocabularies (Llama 3, Qwen, SmolLM2):
/// common words are one token with their leading space, long words split every few letters, digits
/// go in groups of up to three, punctuation and non-ASCII characters cost about one token each.
///
/// It deliberately errs high on English (about +15–25 %), which keeps routing on the safe side of
/// a window until calibration (see [`crate::calibration`]) has learned each feature's real price
/// for the model.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeuristicCounter;

impl TokenCounter for HeuristicCounter {
    fn count(&self, text: &str) -> u32 {
        TextFeatures::of(text).heuristic_tokens()
    }

    fn is_exact(&self) -> bool {
        false
    }

    fn features(&self, text: &str) -> Option<TextFeatures> {
        Some(TextFeatures::of(text))
    }
}

/// Chat-template families whose per-message overhead was measured (backends.md §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateFamily {
    /// `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`: 5 per message + BOS + 4, plus
    /// about 10 for the "Cutting Knowledge Date" system block Ollama's library templates add.
    Llama3,
    /// `[INST] … [/INST]` (v0.3 control tokens).
    Mistral,
    /// ChatML (`<|im_start|>role\n…<|im_end|>\n`): Qwen, SmolLM2 and most others.
    ChatMl,
}

impl TemplateFamily {
    /// Parses a configured family name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "llama3" | "llama-3" => Some(TemplateFamily::Llama3),
            "mistral" => Some(TemplateFamily::Mistral),
            "chatml" => Some(TemplateFamily::ChatMl),
            _ => None,
        }
    }

    /// Guesses the family from a model name such as `llama3.2:1b` or `mistral:7b`.
    pub fn from_model_name(model: &str) -> Self {
        let m = model.to_ascii_lowercase();
        if m.contains("llama3") || m.contains("llama-3") || m.contains("llama 3") {
            TemplateFamily::Llama3
        } else if m.contains("mistral") || m.contains("mixtral") {
            TemplateFamily::Mistral
        } else {
            TemplateFamily::ChatMl
        }
    }

    /// Tokens of the system block a template adds by itself when the conversation does not
    /// start with a system message (ChatML models such as SmolLM2 add a default system prompt;
    /// Llama 3 templates add a "Cutting Knowledge Date" block). Part of [`Self::overhead`]; a
    /// prompt rendered without it (see `template::render_continuation`) needs it added back.
    pub fn default_system_tokens(self, first_role: Option<&str>) -> u32 {
        let has_system = matches!(first_role, Some("system" | "developer"));
        match self {
            TemplateFamily::ChatMl if !has_system => 21,
            TemplateFamily::Llama3 => 10,
            _ => 0,
        }
    }

    /// Template tokens for a conversation with these message roles (in order).
    pub fn overhead<'a>(self, roles: impl IntoIterator<Item = &'a str>) -> u32 {
        let mut n = 0u32;
        let mut users = 0u32;
        let mut assistants = 0u32;
        let mut first_is_system = false;
        let mut has_system = false;
        for (i, role) in roles.into_iter().enumerate() {
            n += 1;
            match role {
                "user" => users += 1,
                "assistant" => assistants += 1,
                "system" | "developer" => {
                    has_system = true;
                    if i == 0 {
                        first_is_system = true;
                    }
                }
                _ => users += 1,
            }
        }
        match self {
            TemplateFamily::Llama3 => 5 * n + 5 + 10,
            TemplateFamily::Mistral => {
                1 + 3 * users + 2 * assistants + if has_system { 2 } else { 0 }
            }
            TemplateFamily::ChatMl => {
                let default_system = if first_is_system { 0 } else { 21 };
                5 * n + assistants + 4 + default_system
            }
        }
    }
}

/// The pieces of a prompt estimate, kept apart so a route can be explained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PromptEstimate {
    /// Tokens of the message contents and tool definitions (the counter's own count).
    pub content: u32,
    /// Chat-template tokens.
    pub template: u32,
    /// The prompt size the backend is expected to report: `content + template`, or the
    /// calibrated prediction for estimating counters.
    pub predicted: u32,
    /// Safety margin for what an estimate cannot see (zero for exact counts); for a range of an
    /// exact count (see [`PromptEstimate::within`]), up to the range's upper end.
    pub margin: u32,
    /// The least the prompt can be: the range's lower end for [`PromptEstimate::within`], else
    /// the prediction. What a report is compared with to detect a truncated prompt.
    pub lower: u32,
}

impl PromptEstimate {
    /// Uncalibrated count: contents plus template.
    pub fn raw(&self) -> u32 {
        self.content.saturating_add(self.template)
    }

    /// The prompt size the backend is expected to report.
    pub fn predicted(&self) -> u32 {
        self.predicted
    }

    /// The number routing compares against a window (before the output reserve).
    pub fn total(&self) -> u32 {
        self.predicted.saturating_add(self.margin)
    }
}

/// Margin rule for estimates: a ratio of the count plus a constant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SafetyMargin {
    pub ratio: f32,
    pub tokens: u32,
}

impl Default for SafetyMargin {
    fn default() -> Self {
        // backends.md §7 "practical rule": about 2 % + 16 tokens.
        SafetyMargin {
            ratio: 0.02,
            tokens: 16,
        }
    }
}

/// One message as the estimator sees it: a role and its text pieces.
pub struct MessageText<'a> {
    pub role: &'a str,
    pub texts: &'a [&'a str],
}

impl PromptEstimate {
    /// Puts an estimate together: the margin applies only to estimated (not exact) counts.
    pub fn assemble(content: u32, template: u32, exact: bool, margin: SafetyMargin) -> Self {
        let raw = content.saturating_add(template);
        Self::calibrated(content, template, exact, raw, margin)
    }

    /// Like [`PromptEstimate::assemble`], with a calibrated prediction in place of the raw count.
    pub fn calibrated(
        content: u32,
        template: u32,
        exact: bool,
        predicted: u32,
        margin: SafetyMargin,
    ) -> Self {
        let predicted = if exact {
            content.saturating_add(template)
        } else {
            predicted
        };
        let margin = if exact {
            0
        } else {
            ((predicted as f32 * margin.ratio).ceil() as u32).saturating_add(margin.tokens)
        };
        PromptEstimate {
            content,
            template,
            predicted,
            margin,
            lower: predicted,
        }
    }

    /// An exact tokenizer's count known only as a range (see [`crate::bound`]): the point
    /// estimate predicted, the margin up to the range's upper end (which routing compares with
    /// windows), the lower end kept.
    pub fn within(content: crate::bound::CountRange, template: u32) -> Self {
        let lower = content.lower.saturating_add(template);
        let upper = content.upper.saturating_add(template);
        let predicted = content
            .estimate
            .saturating_add(template)
            .clamp(lower, upper);
        PromptEstimate {
            content: content.estimate,
            template,
            predicted,
            margin: upper - predicted,
            lower,
        }
    }
}

/// Content tokens of a chat request: every message text plus the tool definitions.
pub fn count_content(
    counter: &dyn TokenCounter,
    messages: &[MessageText<'_>],
    tools_text: Option<&str>,
) -> u32 {
    let mut content = 0u32;
    for m in messages {
        for t in m.texts {
            content = content.saturating_add(counter.count(t));
        }
    }
    if let Some(tools) = tools_text {
        content = content.saturating_add(counter.count(tools));
    }
    content
}

/// Estimates a chat prompt's size for one model.
pub fn estimate_chat(
    counter: &dyn TokenCounter,
    family: TemplateFamily,
    messages: &[MessageText<'_>],
    tools_text: Option<&str>,
    margin: SafetyMargin,
) -> PromptEstimate {
    let content = count_content(counter, messages, tools_text);
    let template = family.overhead(messages.iter().map(|m| m.role));
    PromptEstimate::assemble(content, template, counter.is_exact(), margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heuristic_counts_words_digits_and_symbols() {
        let c = HeuristicCounter;
        assert_eq!(c.count(""), 0);
        assert_eq!(c.count("hello world"), 2);
        assert_eq!(c.count("internationalization"), 4);
        assert_eq!(c.count("12345"), 2);
        assert_eq!(c.count("a, b."), 4);
        assert!(c.count("你好世界") >= 4);
        assert!(c.count("👩‍👩‍👧") >= 4);
    }

    #[test]
    fn heuristic_errs_high_on_plain_english() {
        // Each of these words is a single token in real BPE vocabularies.
        let text = "the cat sat on the mat and looked at the dog ".repeat(50);
        let words = text.split_whitespace().count() as u32;
        let n = HeuristicCounter.count(&text);
        assert!(n >= words, "{n} < {words}");
    }

    #[test]
    fn overhead_matches_measured_constants() {
        assert_eq!(TemplateFamily::Mistral.overhead(["user"]), 4);
        assert_eq!(TemplateFamily::Mistral.overhead(["system", "user"]), 6);
        assert_eq!(
            TemplateFamily::Mistral.overhead(["user", "assistant", "user"]),
            9
        );
        assert_eq!(TemplateFamily::ChatMl.overhead(["user"]), 30);
        assert_eq!(TemplateFamily::ChatMl.overhead(["system", "user"]), 14);
        assert_eq!(
            TemplateFamily::ChatMl.overhead(["system", "user", "assistant", "user"]),
            25
        );
        assert_eq!(TemplateFamily::Llama3.overhead(["user"]), 20);
        assert_eq!(
            TemplateFamily::from_model_name("llama3.2:1b"),
            TemplateFamily::Llama3
        );
        assert_eq!(
            TemplateFamily::from_model_name("mistral:7b"),
            TemplateFamily::Mistral
        );
    }

    #[test]
    fn estimate_adds_margin_only_for_estimates() {
        let msgs = [MessageText {
            role: "user",
            texts: &["hello world"],
        }];
        let e = estimate_chat(
            &HeuristicCounter,
            TemplateFamily::Llama3,
            &msgs,
            None,
            SafetyMargin::default(),
        );
        assert_eq!(e.content, 2);
        assert_eq!(e.template, 20);
        assert_eq!(e.margin, 17);
        assert_eq!(e.total(), 39);
    }
}
