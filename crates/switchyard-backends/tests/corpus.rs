//! Decodes every response body in `tests/corpus/` (the shapes of llama.cpp's server,
//! llama-cpp-python, vLLM, LM Studio, and Ollama's native and `/v1` APIs) and checks what an
//! attempt would hand the router: content, reasoning, tool calls, finish reason and usage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use switchyard_backends::{BackendEvent, decode};
use switchyard_core::config::Provider;

/// What one corpus file must decode to.
struct Expect {
    file: &'static str,
    content: &'static str,
    reasoning: &'static str,
    /// (name, arguments) per call, in index order.
    tools: &'static [(&'static str, &'static str)],
    finish: &'static str,
    prompt: Option<u32>,
    completion: Option<u32>,
}

const TOKYO: &str = r#"{"city":"Tokyo"}"#;
const TOKYO_SPACED: &str = r#"{"city": "Tokyo"}"#;

fn text(
    file: &'static str,
    reasoning: &'static str,
    finish: &'static str,
    usage: Option<(u32, u32)>,
) -> Expect {
    Expect {
        file,
        content: "Hello there",
        reasoning,
        tools: &[],
        finish,
        prompt: usage.map(|u| u.0),
        completion: usage.map(|u| u.1),
    }
}

fn tool(
    file: &'static str,
    reasoning: &'static str,
    tools: &'static [(&'static str, &'static str)],
    usage: Option<(u32, u32)>,
) -> Expect {
    Expect {
        file,
        content: "",
        reasoning,
        tools,
        finish: "tool_calls",
        prompt: usage.map(|u| u.0),
        completion: usage.map(|u| u.1),
    }
}

const WEATHER: &[(&str, &str)] = &[("get_weather", TOKYO)];
const WEATHER_SPACED: &[(&str, &str)] = &[("get_weather", TOKYO_SPACED)];

fn corpus() -> Vec<Expect> {
    let thinking = "The user wants weather.";
    vec![
        text("llama-server/chat_stream.sse", "", "stop", Some((31, 2))),
        tool(
            "llama-server/tool_stream.sse",
            thinking,
            WEATHER,
            Some((180, 19)),
        ),
        text(
            "llama-server/chat.json",
            "Greet back.",
            "length",
            Some((31, 2)),
        ),
        tool("llama-server/tool.json", "", WEATHER, Some((180, 19))),
        text("llama-cpp-python/chat_stream.sse", "", "stop", None),
        tool(
            "llama-cpp-python/tool_choice_stream.sse",
            "",
            WEATHER_SPACED,
            None,
        ),
        text("llama-cpp-python/chat.json", "", "stop", Some((31, 2))),
        tool(
            "llama-cpp-python/tool_choice.json",
            "",
            WEATHER_SPACED,
            Some((150, 9)),
        ),
        text(
            "vllm/chat_stream.sse",
            "Short answer.",
            "stop",
            Some((31, 5)),
        ),
        tool("vllm/tool_stream.sse", "", WEATHER_SPACED, Some((180, 19))),
        text("vllm/chat.json", "", "stop", Some((31, 5))),
        tool(
            "vllm/tool.json",
            "",
            &[
                ("get_weather", TOKYO_SPACED),
                ("get_time", r#"{"tz": "JST"}"#),
            ],
            Some((180, 30)),
        ),
        text("lm-studio/chat_stream.sse", "", "stop", Some((31, 2))),
        tool("lm-studio/tool_stream.sse", "", WEATHER, None),
        text("lm-studio/chat.json", "", "stop", Some((31, 2))),
        text("ollama/chat_stream.ndjson", "", "stop", Some((31, 2))),
        tool(
            "ollama/tool_stream.ndjson",
            thinking,
            WEATHER,
            Some((180, 19)),
        ),
        text("ollama/chat.json", "", "length", Some((31, 2))),
        tool("ollama/tool.json", thinking, WEATHER, Some((180, 19))),
        text("ollama-v1/chat_stream.sse", "", "stop", Some((31, 2))),
        tool(
            "ollama-v1/tool_stream.sse",
            thinking,
            WEATHER,
            Some((180, 19)),
        ),
        text("ollama-v1/chat.json", "", "stop", Some((31, 2))),
    ]
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// The wire format and framing a corpus file is in, from its place and extension.
fn format_of(file: &str) -> (Provider, bool) {
    let provider = if file.starts_with("ollama/") {
        Provider::Ollama
    } else {
        Provider::OpenAi
    };
    (provider, !file.ends_with(".json"))
}

struct Decoded {
    content: String,
    reasoning: String,
    /// (index, id, name, arguments), fragments folded by index.
    tools: Vec<(u32, Option<String>, String, String)>,
    /// How many fragments carried a name, per call (an SDK concatenates repeated names).
    names_sent: Vec<usize>,
    finish: String,
    prompt: Option<u32>,
    completion: Option<u32>,
}

async fn decode_file(file: &str) -> Decoded {
    let body = std::fs::read(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let (provider, streamed) = format_of(file);
    let events: Vec<_> = decode(provider, streamed, Bytes::from(body))
        .collect()
        .await;
    let mut d = Decoded {
        content: String::new(),
        reasoning: String::new(),
        tools: Vec::new(),
        names_sent: Vec::new(),
        finish: String::new(),
        prompt: None,
        completion: None,
    };
    let n = events.len();
    for (i, ev) in events.into_iter().enumerate() {
        match ev.unwrap_or_else(|e| panic!("{file}: event {i}: {e}")) {
            BackendEvent::Delta(delta) => {
                assert!(i + 1 < n, "{file}: a delta after the end");
                d.content.push_str(&delta.content);
                d.reasoning
                    .push_str(delta.reasoning.as_deref().unwrap_or(""));
                for c in delta.tool_calls {
                    let at = match d.tools.iter().position(|t| t.0 == c.index) {
                        Some(at) => at,
                        None => {
                            d.tools.push((c.index, None, String::new(), String::new()));
                            d.names_sent.push(0);
                            d.tools.len() - 1
                        }
                    };
                    let t = &mut d.tools[at];
                    if let Some(name) = c.name {
                        t.2.push_str(&name);
                        d.names_sent[at] += 1;
                    }
                    if t.1.is_none() {
                        t.1 = c.id;
                    }
                    t.3.push_str(&c.arguments);
                }
            }
            BackendEvent::Done(c) => {
                assert_eq!(i + 1, n, "{file}: Done is not last");
                d.finish = c.finish_reason;
                d.prompt = c.prompt_tokens;
                d.completion = c.completion_tokens;
            }
        }
    }
    d
}

#[tokio::test]
async fn every_corpus_file_decodes_to_its_answer() {
    let cases = corpus();
    for e in &cases {
        let d = decode_file(e.file).await;
        assert_eq!(d.content, e.content, "{}: content", e.file);
        assert_eq!(d.reasoning, e.reasoning, "{}: reasoning", e.file);
        assert_eq!(d.finish, e.finish, "{}: finish reason", e.file);
        assert_eq!(
            (d.prompt, d.completion),
            (e.prompt, e.completion),
            "{}: usage",
            e.file
        );
        let tools: Vec<(&str, &str)> = d
            .tools
            .iter()
            .map(|t| (t.2.as_str(), t.3.as_str()))
            .collect();
        assert_eq!(tools, e.tools, "{}: tool calls", e.file);
        for (i, t) in d.tools.iter().enumerate() {
            assert_eq!(t.0, i as u32, "{}: tool call index", e.file);
            assert!(
                t.1.as_deref().is_some_and(|id| !id.is_empty()),
                "{}: tool call id",
                e.file
            );
            assert_eq!(
                d.names_sent[i], 1,
                "{}: the name is sent once per call",
                e.file
            );
        }
    }
    // Every file in the corpus is covered, and every server both streamed and unstreamed.
    let mut on_disk = Vec::new();
    for server in std::fs::read_dir(dir()).unwrap() {
        let server = server.unwrap().path();
        if !server.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&server).unwrap() {
            let f = f.unwrap().path();
            let rel = f
                .strip_prefix(dir())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            on_disk.push(rel);
        }
    }
    on_disk.sort();
    let mut listed: Vec<String> = cases.iter().map(|e| e.file.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "corpus files without expectations, or the reverse"
    );
    for server in [
        "llama-server",
        "llama-cpp-python",
        "vllm",
        "lm-studio",
        "ollama/",
        "ollama-v1",
    ] {
        for streamed in [true, false] {
            assert!(
                listed
                    .iter()
                    .any(|f| f.starts_with(server) && format_of(f).1 == streamed),
                "{server}: no {} case",
                if streamed { "streamed" } else { "unstreamed" }
            );
        }
    }
}

/// llama-cpp-python's first delta of a named `tool_choice` (every field `null`) is read as an
/// empty delta.
#[tokio::test]
async fn the_null_first_delta_of_a_named_tool_choice_is_read() {
    let body = std::fs::read(dir().join("llama-cpp-python/tool_choice_stream.sse")).unwrap();
    let first = body.split(|&b| b == b'\n').next().unwrap().to_vec();
    let mut only_first = first;
    only_first.extend_from_slice(b"\n\ndata: [DONE]\n\n");
    let events: Vec<_> = decode(Provider::OpenAi, true, Bytes::from(only_first))
        .collect()
        .await;
    // The first delta carries nothing; the stream then lacks a finish reason, which is the only
    // complaint (not "invalid type: null, expected a sequence").
    assert_eq!(events.len(), 1, "{events:?}");
    let e = events[0].as_ref().unwrap_err();
    assert_eq!(e.message, "stream ended without a finish reason");
}
