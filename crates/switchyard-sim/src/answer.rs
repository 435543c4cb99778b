//! The deterministic answer: which words, how many, why generation stopped, and tool calls.
//!
//! Word `i` of the answer to a prompt is `VOCAB[(seed + i) % VOCAB.len()]`, so an answer
//! interrupted after `k` words and continued from a trailing assistant message concatenates to
//! the uninterrupted answer.

use serde_json::{Value, json};

use crate::prompt::PromptInput;

const VOCAB: [&str; 50] = [
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "river", "stone", "light",
    "green", "apple", "cloud", "music", "paper", "silver", "garden", "window", "ocean", "forest",
    "bright", "quiet", "morning", "evening", "city", "bridge", "winter", "summer", "yellow",
    "purple", "simple", "gentle", "mountain", "valley", "story", "number", "engine", "signal",
    "harbor", "island", "planet", "market", "thunder", "candle", "mirror", "orange", "pencil",
    "rocket", "table",
];

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    Stop,
    Length,
    ToolCalls,
}

impl Finish {
    /// OpenAI `finish_reason`.
    pub(crate) fn openai(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
        }
    }

    /// Ollama `done_reason` (tool calls end with "stop").
    pub(crate) fn ollama(self) -> &'static str {
        match self {
            Self::Stop | Self::ToolCalls => "stop",
            Self::Length => "length",
        }
    }
}

/// What was generated.
#[derive(Clone, Debug)]
pub(crate) enum Output {
    /// Content pieces, one streamed chunk each.
    Text(Vec<String>),
    /// A single call of the first tool.
    Tool { name: String, arguments: Value },
}

/// A complete answer.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    pub output: Output,
    pub finish: Finish,
    pub eval_count: u32,
}

impl Answer {
    /// The whole content text.
    pub(crate) fn text(&self) -> String {
        match &self.output {
            Output::Text(p) => p.concat(),
            Output::Tool { .. } => String::new(),
        }
    }
}

/// What limits and shapes the answer.
pub(crate) struct AnswerParams<'a> {
    /// num_predict / max_tokens; `None` = unlimited.
    pub max_output: Option<u32>,
    pub stops: &'a [String],
    /// JSON mode (Ollama `format`, OpenAI `response_format`).
    pub json: bool,
    /// Name of the first tool, when tools were sent.
    pub first_tool: Option<&'a str>,
    pub default_len: u32,
}

/// Parses `[[tokens=N]]`.
fn requested_len(text: &str) -> Option<u32> {
    let start = text.find("[[tokens=")? + "[[tokens=".len();
    let rest = text.get(start..)?;
    let end = rest.find("]]")?;
    rest.get(..end)?.trim().parse().ok()
}

/// Generates the answer to `input`.
pub(crate) fn generate(input: &PromptInput, p: &AnswerParams<'_>) -> Answer {
    let last_user = input.last_user();
    if let Some(name) = p.first_tool
        && last_user.contains("[[tool]]")
    {
        let arguments = json!({"city": "Tokyo"});
        let eval_count = crate::tokens::count(name) + crate::tokens::count(&arguments.to_string());
        return Answer {
            output: Output::Tool {
                name: name.to_owned(),
                arguments,
            },
            finish: Finish::ToolCalls,
            eval_count,
        };
    }
    let total = requested_len(last_user).unwrap_or(p.default_len);
    let skip = if p.json {
        0
    } else {
        input
            .trailing_assistant()
            .map_or(0, |a| a.split_whitespace().count())
    };
    let seed = usize::try_from(input.seed() % VOCAB.len() as u64).unwrap_or(0);
    let mut words: Vec<&str> = Vec::new();
    let mut finish = Finish::Stop;
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    for i in skip..total {
        if p.max_output.is_some_and(|m| words.len() >= m as usize) {
            finish = Finish::Length;
            break;
        }
        let w = VOCAB[(seed + i % VOCAB.len()) % VOCAB.len()];
        if p.stops.iter().any(|s| s.trim() == w) {
            break;
        }
        words.push(w);
    }
    let first_has_space = skip > 0;
    let mut pieces: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 && !first_has_space {
                (*w).to_owned()
            } else {
                format!(" {w}")
            }
        })
        .collect();
    if p.json {
        pieces.insert(0, "{\"answer\":\"".to_owned());
        pieces.push("\"}".to_owned());
    }
    let eval_count = u32::try_from(pieces.len()).unwrap_or(u32::MAX);
    Answer {
        output: Output::Text(pieces),
        finish,
        eval_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::Msg;

    fn chat(msgs: &[(&str, &str)]) -> PromptInput {
        PromptInput::Chat {
            messages: msgs
                .iter()
                .map(|(r, c)| Msg {
                    role: (*r).to_owned(),
                    content: (*c).to_owned(),
                })
                .collect(),
            tools_json: None,
        }
    }

    fn params(max: Option<u32>) -> AnswerParams<'static> {
        AnswerParams {
            max_output: max,
            stops: &[],
            json: false,
            first_tool: None,
            default_len: 8,
        }
    }

    #[test]
    fn continuation_concatenates() {
        let full = generate(&chat(&[("user", "hi [[tokens=6]]")]), &params(None)).text();
        let head = generate(&chat(&[("user", "hi [[tokens=6]]")]), &params(Some(2)));
        assert_eq!(head.finish, Finish::Length);
        let head = head.text();
        let tail = generate(
            &chat(&[("user", "hi [[tokens=6]]"), ("assistant", &head)]),
            &params(None),
        )
        .text();
        assert_eq!(format!("{head}{tail}"), full);
        assert_eq!(full.split(' ').count(), 6);
    }
}
