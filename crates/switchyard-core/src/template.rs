//! Rendering a conversation as raw prompt text, for continuing a partial answer on servers that
//! cannot be asked to continue a trailing assistant message.
//!
//! Mid-stream failover hands the next model the original messages plus the answer so far. Ollama
//! and current llama-server continue a trailing assistant message by themselves ("prefill"). Other
//! OpenAI-compatible servers (llama-cpp-python's, for one) close that message and start a new turn,
//! so for them the router renders the family's chat template up to the open assistant turn and
//! asks for a plain text completion of it.

use crate::tokens::TemplateFamily;

/// The text that closes a turn in `family`'s template: a continuation stops there, should the
/// server not treat it as the end of generation.
pub fn end_of_turn(family: TemplateFamily) -> &'static str {
    match family {
        TemplateFamily::ChatMl => "<|im_end|>",
        TemplateFamily::Llama3 => "<|eot_id|>",
        TemplateFamily::Mistral => "</s>",
    }
}

/// Renders `(role, content)` pairs followed by an open assistant turn that starts with `partial`.
pub fn render_continuation<'a>(
    family: TemplateFamily,
    messages: impl IntoIterator<Item = (&'a str, &'a str)>,
    partial: &str,
) -> String {
    let mut out = String::new();
    match family {
        TemplateFamily::ChatMl => {
            for (role, content) in messages {
                let role = if role == "developer" { "system" } else { role };
                out.push_str("<|im_start|>");
                out.push_str(role);
                out.push('\n');
                out.push_str(content);
                out.push_str("<|im_end|>\n");
            }
            out.push_str("<|im_start|>assistant\n");
        }
        TemplateFamily::Llama3 => {
            for (role, content) in messages {
                let role = if role == "developer" { "system" } else { role };
                out.push_str("<|start_header_id|>");
                out.push_str(role);
                out.push_str("<|end_header_id|>\n\n");
                out.push_str(content);
                out.push_str("<|eot_id|>");
            }
            out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
        }
        TemplateFamily::Mistral => {
            let mut system = String::new();
            for (role, content) in messages {
                match role {
                    "system" | "developer" => {
                        system.push_str(content);
                        system.push_str("\n\n");
                    }
                    "assistant" => {
                        out.push(' ');
                        out.push_str(content);
                        out.push_str("</s>");
                    }
                    _ => {
                        out.push_str("[INST] ");
                        out.push_str(&system);
                        system.clear();
                        out.push_str(content);
                        out.push_str("[/INST]");
                    }
                }
            }
            out.push(' ');
        }
    }
    out.push_str(partial);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_leaves_the_assistant_turn_open() {
        let s = render_continuation(
            TemplateFamily::ChatMl,
            [("system", "Be brief."), ("user", "Hi")],
            "Hello th",
        );
        assert_eq!(
            s,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello th"
        );
    }

    #[test]
    fn mistral_puts_system_in_the_first_instruction() {
        let s = render_continuation(
            TemplateFamily::Mistral,
            [("system", "S"), ("user", "U")],
            "A",
        );
        assert_eq!(s, "[INST] S\n\nU[/INST] A");
    }
}
