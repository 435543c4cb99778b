// openai-node and @langchain/openai through Switchyard to a real llama-cpp-python server
// (SmolLM2-135M-Instruct; group `smol`). Run by crates/switchyard/tests/clients.rs with
// SWITCHYARD_REAL_URL. The model is tiny: the tests check shapes and tool calls, not wording.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { ChatOpenAI } from "@langchain/openai";

const BASE = process.env.SWITCHYARD_REAL_URL;
const skip = BASE ? false : "SWITCHYARD_REAL_URL not set (run through cargo test)";
const client = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: "not-needed", maxRetries: 0, timeout: 120000 });

const chatTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};
const responsesTool = { type: "function", name: "get_weather", strict: false, ...chatTool.function };
delete responsesTool.function;

test("openai-node: chat, streamed and not", { skip }, async () => {
  const r = await client.chat.completions.create({
    model: "smol",
    max_tokens: 12,
    messages: [{ role: "user", content: "Say hi" }],
  });
  assert.ok(r.choices[0].message.content);
  const stream = await client.chat.completions.create({
    model: "smol",
    max_tokens: 12,
    messages: [{ role: "user", content: "Say hi" }],
    stream: true,
  });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
  assert.ok(text);
});

test("openai-node: named tool_choice, streamed (llama-cpp-python's all-null first delta)", { skip }, async () => {
  const done = await client.chat.completions
    .stream({
      model: "smol",
      max_tokens: 40,
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [chatTool],
      tool_choice: { type: "function", function: { name: "get_weather" } },
    })
    .finalChatCompletion();
  assert.equal(done.choices[0].message.tool_calls[0].function.name, "get_weather");
});

test("openai-node: responses.create with a function tool round trip, streamed and not", { skip }, async () => {
  const r = await client.responses.create({
    model: "smol",
    max_output_tokens: 40,
    input: "Weather in Paris?",
    tools: [responsesTool],
    tool_choice: { type: "function", name: "get_weather" },
  });
  const call = r.output.find((o) => o.type === "function_call");
  assert.equal(call.name, "get_weather");
  const r2 = await client.responses.create({
    model: "smol",
    max_output_tokens: 16,
    input: [
      { role: "user", content: "Weather in Paris?" },
      ...r.output,
      { type: "function_call_output", call_id: call.call_id, output: "22C and sunny" },
    ],
  });
  assert.equal(r2.status === "completed" || r2.status === "incomplete", true);
  const stream = await client.responses.create({ model: "smol", max_output_tokens: 12, input: "Say hi", stream: true });
  const types = [];
  for await (const e of stream) types.push(e.type);
  assert.equal(types[0], "response.created");
  assert.ok(["response.completed", "response.incomplete"].includes(types.at(-1)));
  assert.ok(types.includes("response.output_text.delta"));
});

test("@langchain/openai useResponsesApi: invoke and stream", { skip }, async () => {
  const llm = new ChatOpenAI({
    model: "smol",
    apiKey: "not-needed",
    useResponsesApi: true,
    maxRetries: 0,
    maxTokens: 12,
    configuration: { baseURL: `${BASE}/v1` },
  });
  assert.ok((await llm.invoke("Say hi")).text);
  let text = "";
  for await (const chunk of await llm.stream("Say hi")) text += chunk.text;
  assert.ok(text);
});
