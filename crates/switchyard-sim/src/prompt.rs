//! What the model is asked: the prompt of a request, its size in sim tokens, and Ollama's silent
//! truncation (backends.md §3.2: Stage A drops old messages, Stage B cuts tokens).

use crate::tokens::{self, PER_MESSAGE, PER_PROMPT};

/// One chat message, reduced to what the simulator uses.
#[derive(Clone, Debug)]
pub(crate) struct Msg {
    pub role: String,
    pub content: String,
}

/// The prompt of a generation request.
#[derive(Clone, Debug)]
pub(crate) enum PromptInput {
    /// `/api/chat`, `/v1/chat/completions`.
    Chat {
        messages: Vec<Msg>,
        /// JSON text of the `tools` array, when tools were sent.
        tools_json: Option<String>,
    },
    /// `/api/generate`, `/v1/completions`.
    Text {
        prompt: String,
        system: Option<String>,
        raw: bool,
    },
}

/// Prompt size before and after truncation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PromptSize {
    pub prompt_tokens: u32,
    pub evaluated_tokens: u32,
    pub truncated: bool,
}

impl PromptInput {
    /// True when there is nothing to generate from (Ollama: load-only request).
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Self::Chat { messages, .. } => messages.is_empty(),
            Self::Text { prompt, .. } => prompt.is_empty(),
        }
    }

    /// The last user message (or the text prompt): where `[[tokens=N]]` / `[[tool]]` are read.
    pub(crate) fn last_user(&self) -> &str {
        match self {
            Self::Chat { messages, .. } => messages
                .iter()
                .rev()
                .find(|m| m.role == "user")
                .map_or("", |m| m.content.as_str()),
            Self::Text { prompt, .. } => prompt,
        }
    }

    /// The trailing assistant message being continued, if any.
    pub(crate) fn trailing_assistant(&self) -> Option<&str> {
        match self {
            Self::Chat { messages, .. } => messages
                .last()
                .filter(|m| m.role == "assistant")
                .map(|m| m.content.as_str()),
            // A raw prompt has no turns: what follows its last `[[…]]` directive is taken as the
            // model's own earlier output (a text completion being continued).
            Self::Text {
                prompt, raw: true, ..
            } => Self::after_directive(prompt).filter(|rest| !rest.is_empty()),
            Self::Text { .. } => None,
        }
    }

    /// The text after the last `]]` of a prompt.
    fn after_directive(prompt: &str) -> Option<&str> {
        prompt.rfind("]]").and_then(|i| prompt.get(i + 2..))
    }

    /// Seed of the answer: hash of all contents except a trailing assistant message.
    pub(crate) fn seed(&self) -> u64 {
        let mut all = String::new();
        match self {
            Self::Chat { messages, .. } => {
                let n = if self.trailing_assistant().is_some() {
                    messages.len().saturating_sub(1)
                } else {
                    messages.len()
                };
                for m in messages.iter().take(n) {
                    all.push_str(&m.content);
                }
            }
            Self::Text { prompt, system, .. } => {
                if let Some(s) = system {
                    all.push_str(s);
                }
                // A continued raw prompt has the answer's seed of the prompt it continues.
                let continued = self.trailing_assistant().map_or(0, str::len);
                all.push_str(prompt.get(..prompt.len() - continued).unwrap_or(prompt));
            }
        }
        tokens::fnv1a(all.as_bytes())
    }

    /// Unscaled cost of each part: (is_system, tokens) per message, plus the fixed overhead.
    fn costs(&self) -> (Vec<(bool, u32)>, u32) {
        match self {
            Self::Chat {
                messages,
                tools_json,
            } => {
                let fixed = PER_PROMPT + tools_json.as_deref().map_or(0, tokens::count);
                let parts = messages
                    .iter()
                    .map(|m| (m.role == "system", tokens::count(&m.content) + PER_MESSAGE))
                    .collect();
                (parts, fixed)
            }
            Self::Text {
                prompt,
                system,
                raw,
            } => {
                if *raw {
                    return (vec![(false, tokens::count(prompt))], 0);
                }
                let mut parts = Vec::new();
                if let Some(s) = system {
                    parts.push((true, tokens::count(s) + PER_MESSAGE));
                }
                parts.push((false, tokens::count(prompt)));
                (parts, PER_PROMPT)
            }
        }
    }

    /// Rendered prompt size in sim tokens, scaled.
    pub(crate) fn size(&self, token_scale: f32) -> u32 {
        let (parts, fixed) = self.costs();
        let total = parts
            .iter()
            .fold(fixed, |acc, (_, c)| acc.saturating_add(*c));
        tokens::scale(total, token_scale)
    }

    /// The text the template produces (llama.cpp `/apply-template`).
    pub(crate) fn render(&self) -> String {
        match self {
            Self::Chat {
                messages,
                tools_json,
            } => tokens::render_chat(
                messages
                    .iter()
                    .map(|m| (m.role.as_str(), m.content.as_str())),
                tools_json.as_deref(),
            ),
            Self::Text { prompt, raw, .. } if *raw => prompt.clone(),
            Self::Text { prompt, system, .. } => {
                let mut msgs: Vec<(&str, &str)> = Vec::new();
                if let Some(s) = system {
                    msgs.push(("system", s));
                }
                msgs.push(("user", prompt));
                tokens::render_chat(msgs, None)
            }
        }
    }

    /// Ollama's silent truncation to `num_ctx` (when `truncate` is true).
    pub(crate) fn fit(&self, token_scale: f32, num_ctx: u32, truncate: bool) -> PromptSize {
        let full = self.size(token_scale);
        if !truncate || full <= num_ctx {
            return PromptSize {
                prompt_tokens: full,
                evaluated_tokens: full,
                truncated: false,
            };
        }
        let (parts, fixed) = self.costs();
        // Stage A: drop whole oldest non-system messages; system messages and the last message stay.
        let mut kept = full;
        if parts.len() > 1 {
            for start in 0..parts.len() {
                let total = parts.iter().enumerate().fold(fixed, |acc, (i, (sys, c))| {
                    if i >= start || *sys {
                        acc.saturating_add(*c)
                    } else {
                        acc
                    }
                });
                kept = tokens::scale(total, token_scale);
                if kept <= num_ctx {
                    break;
                }
            }
        }
        // Stage B: the runner keeps the head and the tail and cuts the middle.
        let evaluated = if kept > num_ctx {
            num_ctx.saturating_sub((num_ctx.saturating_sub(4) / 2).max(1))
        } else {
            kept
        };
        PromptSize {
            prompt_tokens: full,
            evaluated_tokens: evaluated,
            truncated: evaluated < full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> Msg {
        Msg {
            role: role.to_owned(),
            content: content.to_owned(),
        }
    }

    #[test]
    fn stage_a_drops_old_messages_and_keeps_system() {
        let words = "word ".repeat(50); // 50 tokens + trailing space run = 51
        let input = PromptInput::Chat {
            messages: vec![
                msg("system", "be brief"),
                msg("user", &words),
                msg("assistant", &words),
                msg("user", "hi"),
            ],
            tools_json: None,
        };
        let full = input.size(1.0);
        assert_eq!(full, 5 + (2 + 5) + 2 * (51 + 5) + (1 + 5));
        let fit = input.fit(1.0, 80, true);
        assert!(fit.truncated);
        // system + assistant + last user = 5 + 7 + 56 + 6 = 74.
        assert_eq!(fit.evaluated_tokens, 74);
        // Stage B when even the last message is too long.
        let fit = input.fit(1.0, 10, true);
        assert_eq!(fit.evaluated_tokens, 10 - 3);
        let fit = input.fit(1.0, 10, false);
        assert!(!fit.truncated);
        assert_eq!(fit.evaluated_tokens, full);
    }
}
