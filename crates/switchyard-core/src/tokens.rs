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
}

/// A tokenizer-free estimate shaped like byte-level BPE vocabularies (Llama 3, Qwen, SmolLM2):
/// common words are one token with their leading space, long words split every few letters, digits
/// go in groups of up to three, punctuation and non-ASCII characters cost about one token each.
///
/// It deliberately errs high on English (about +15–25 %), which keeps routing on the safe side of
/// a window; the exact tokenizers of a later step remove the error.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeuristicCounter;

impl TokenCounter for HeuristicCounter {
    fn count(&self, text: &str) -> u32 {
        let mut tokens: u32 = 0;
        let mut letters: u32 = 0;
        let mut digits: u32 = 0;
        let mut spaces: u32 = 0;
        let flush_letters = |letters: &mut u32, tokens: &mut u32| {
            if *letters > 0 {
                *tokens = tokens.saturating_add(letters.div_ceil(6));
                *letters = 0;
            }
        };
        let flush_digits = |digits: &mut u32, tokens: &mut u32| {
            if *digits > 0 {
                *tokens = tokens.saturating_add(digits.div_ceil(3));
                *digits = 0;
            }
        };
        for ch in text.chars() {
            if ch.is_ascii_alphabetic() {
                flush_digits(&mut digits, &mut tokens);
                if spaces > 1 {
                    // A run of several spaces keeps one for the word and costs a token.
                    tokens = tokens.saturating_add(1);
                }
                spaces = 0;
                letters += 1;
                continue;
            }
            flush_letters(&mut letters, &mut tokens);
            if ch.is_ascii_digit() {
                digits += 1;
                continue;
            }
            flush_digits(&mut digits, &mut tokens);
            if ch == ' ' {
                spaces += 1;
                continue;
            }
            if spaces > 0 {
                tokens = tokens.saturating_add(1);
                spaces = 0;
            }
            tokens = tokens.saturating_add(if ch.is_ascii() {
                1
            } else {
                // CJK and most other scripts: one to two tokens per character; emoji more.
                (ch.len_utf8() as u32).div_ceil(2).max(1)
            });
        }
        flush_letters(&mut letters, &mut tokens);
        flush_digits(&mut digits, &mut tokens);
        if spaces > 0 {
            tokens = tokens.saturating_add(1);
        }
        tokens
    }

    fn is_exact(&self) -> bool {
        false
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
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PromptEstimate {
    /// Tokens of the message contents and tool definitions.
    pub content: u32,
    /// Chat-template tokens.
    pub template: u32,
    /// Calibration factors learned from the backend's reports (1.0 for exact counters).
    pub content_scale: f32,
    pub template_scale: f32,
    /// Safety margin for what an estimate cannot see (zero for exact counters).
    pub margin: u32,
}

impl Default for PromptEstimate {
    fn default() -> Self {
        PromptEstimate {
            content: 0,
            template: 0,
            content_scale: 1.0,
            template_scale: 1.0,
            margin: 0,
        }
    }
}

impl PromptEstimate {
    /// Uncalibrated count: contents plus template.
    pub fn raw(&self) -> u32 {
        self.content.saturating_add(self.template)
    }

    /// The prompt size the backend is expected to report.
    pub fn predicted(&self) -> u32 {
        (self.content as f32 * self.content_scale + self.template as f32 * self.template_scale)
            .round()
            .max(0.0) as u32
    }

    /// The number routing compares against a window (before the output reserve).
    pub fn total(&self) -> u32 {
        self.predicted().saturating_add(self.margin)
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
        Self::calibrated(content, template, exact, (1.0, 1.0), margin)
    }

    /// Like [`PromptEstimate::assemble`], with a learned calibration factor applied first.
    pub fn calibrated(
        content: u32,
        template: u32,
        exact: bool,
        (content_scale, template_scale): (f32, f32),
        margin: SafetyMargin,
    ) -> Self {
        let (content_scale, template_scale) = if exact {
            (1.0, 1.0)
        } else {
            (content_scale, template_scale)
        };
        let mut e = PromptEstimate {
            content,
            template,
            content_scale,
            template_scale,
            margin: 0,
        };
        if !exact {
            e.margin =
                ((e.predicted() as f32 * margin.ratio).ceil() as u32).saturating_add(margin.tokens);
        }
        e
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
