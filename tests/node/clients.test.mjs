// The official OpenAI Node SDK and LangChain.js (`@langchain/openai` with `useResponsesApi: true`)
// against a running Switchyard, unchanged. Run by crates/switchyard/tests/clients.rs (simulator +
// gateway on ephemeral ports, base URL in SWITCHYARD_URL) with `node --test`. The simulator answers
// `[[tokens=N]]` with N words and `[[tool]]` (with tools sent) with a call of the first tool.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { ChatOpenAI, OpenAIEmbeddings } from "@langchain/openai";

const BASE = process.env.SWITCHYARD_URL;
const skip = BASE ? false : "SWITCHYARD_URL not set (run through cargo test)";
const client = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: "not-needed", maxRetries: 0, timeout: 30000 });

// Routes still being built: their tests skip while a probe of the route answers 404.
async function routeMissing(path, body) {
  if (!BASE) return "SWITCHYARD_URL not set";
  const r = await fetch(`${BASE}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  return r.status === 404 ? `POST ${path} answered 404: ${text.slice(0, 200)}` : false;
}
const embedMissing = await routeMissing("/v1/embeddings", { model: "embed", input: "probe" });
const completionsMissing = await routeMissing("/v1/completions", { model: "local-small", prompt: "probe" });

const words = (s) => s.split(/\s+/).filter(Boolean).length;

const chatTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" } } },
  },
};
const responsesTool = {
  type: "function",
  name: "get_weather",
  description: "Weather for a city",
  strict: false,
  parameters: { type: "object", properties: { city: { type: "string" } } },
};

test("openai-node: chat completion", { skip }, async () => {
  const r = await client.chat.completions.create({
    model: "local-small",
    messages: [{ role: "user", content: "hello there [[tokens=5]]" }],
  });
  assert.equal(r.object, "chat.completion");
  assert.equal(words(r.choices[0].message.content), 5);
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test("openai-node: streamed chat with usage", { skip }, async () => {
  const stream = await client.chat.completions.create({
    model: "local-small",
    messages: [{ role: "user", content: "stream this [[tokens=8]]" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let usage = null;
  const finishes = [];
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta.content ?? "";
      if (c.finish_reason) finishes.push(c.finish_reason);
    }
  }
  assert.equal(words(text), 8);
  assert.deepEqual(finishes, ["stop"]);
  assert.equal(usage.completion_tokens, 8);
});

test("openai-node: named tool_choice, streamed and not", { skip }, async () => {
  const req = {
    model: "local-small",
    messages: [{ role: "user", content: "weather? [[tool]]" }],
    tools: [chatTool],
    tool_choice: { type: "function", function: { name: "get_weather" } },
  };
  const r = await client.chat.completions.create(req);
  assert.equal(r.choices[0].finish_reason, "tool_calls");
  assert.equal(r.choices[0].message.tool_calls[0].function.name, "get_weather");
  assert.deepEqual(JSON.parse(r.choices[0].message.tool_calls[0].function.arguments), { city: "Tokyo" });

  // The SDK's stream helper assembles the call from the deltas.
  const stream = client.chat.completions.stream(req);
  const done = await stream.finalChatCompletion();
  const call = done.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "Tokyo" });
});

test("openai-node: responses.create", { skip }, async () => {
  const r = await client.responses.create({
    model: "local-small",
    input: "hello there [[tokens=6]]",
    instructions: "be brief",
    max_output_tokens: 50,
  });
  assert.equal(r.object, "response");
  assert.equal(r.status, "completed");
  assert.equal(words(r.output_text), 6);
  assert.equal(r.usage.output_tokens, 6);
  assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
});

test("openai-node: responses.create streamed", { skip }, async () => {
  const stream = await client.responses.create({ model: "local-small", input: "stream this [[tokens=9]]", stream: true });
  const events = [];
  for await (const e of stream) events.push(e);
  assert.equal(events[0].type, "response.created");
  assert.equal(events.at(-1).type, "response.completed");
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  const text = events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");
  assert.equal(words(text), 9);
  // Raw events carry the response as sent (`output_text` is an SDK convenience, added by the helpers).
  const message = events.at(-1).response.output.find((o) => o.type === "message");
  assert.equal(message.content.map((c) => c.text).join(""), text);

  // The SDK's stream helper and its final response.
  const helper = client.responses.stream({ model: "local-small", input: "stream this [[tokens=9]]" });
  const final = await helper.finalResponse();
  assert.equal(final.output_text, text);
});

test("openai-node: responses function tool round trip, streamed and not", { skip }, async () => {
  const r = await client.responses.create({
    model: "local-small",
    input: "weather? [[tool]]",
    tools: [responsesTool],
    tool_choice: { type: "function", name: "get_weather" },
  });
  const call = r.output.find((o) => o.type === "function_call");
  assert.equal(call.name, "get_weather");
  assert.deepEqual(JSON.parse(call.arguments), { city: "Tokyo" });
  const r2 = await client.responses.create({
    model: "local-small",
    input: [
      { role: "user", content: "weather?" },
      ...r.output,
      { type: "function_call_output", call_id: call.call_id, output: "22C" },
    ],
    tools: [responsesTool],
  });
  assert.ok(r2.output_text);
  assert.ok(!r2.output.some((o) => o.type === "function_call"));

  const stream = await client.responses.create({
    model: "local-small",
    input: "weather? [[tool]]",
    tools: [responsesTool],
    tool_choice: { type: "function", name: "get_weather" },
    stream: true,
  });
  const events = [];
  for await (const e of stream) events.push(e);
  const added = events.find((e) => e.type === "response.output_item.added" && e.item.type === "function_call");
  assert.equal(added.item.name, "get_weather");
  const args = events
    .filter((e) => e.type === "response.function_call_arguments.delta")
    .map((e) => e.delta)
    .join("");
  const done = events.find((e) => e.type === "response.function_call_arguments.done");
  assert.equal(done.arguments, args);
  const finalCall = events.at(-1).response.output.find((o) => o.type === "function_call");
  assert.equal(finalCall.arguments, args);
  assert.deepEqual(JSON.parse(args), { city: "Tokyo" });
});

const lc = () =>
  new ChatOpenAI({
    model: "local-small",
    apiKey: "not-needed",
    useResponsesApi: true,
    maxRetries: 0,
    configuration: { baseURL: `${BASE}/v1` },
  });

test("@langchain/openai useResponsesApi: invoke", { skip }, async () => {
  const r = await lc().invoke("hello there [[tokens=5]]");
  assert.equal(words(r.text), 5);
  assert.equal(r.usage_metadata.output_tokens, 5);
});

test("@langchain/openai useResponsesApi: stream", { skip }, async () => {
  let full;
  for await (const chunk of await lc().stream("stream this [[tokens=7]]")) {
    full = full ? full.concat(chunk) : chunk;
  }
  assert.equal(words(full.text), 7);
});

test("@langchain/openai useResponsesApi: bindTools with a named choice", { skip }, async () => {
  // Chat-shaped tool definitions are what LangChain converts (a Responses-shaped one is dropped).
  const llm = lc().bindTools([chatTool], { tool_choice: "get_weather" });
  const ai = await llm.invoke("weather? [[tool]]");
  assert.deepEqual(
    ai.tool_calls.map((c) => [c.name, c.args]),
    [["get_weather", { city: "Tokyo" }]],
  );
});

test("@langchain/openai useResponsesApi: batch of 4", { skip }, async () => {
  const answers = await lc().batch([0, 1, 2, 3].map((i) => `question ${i} [[tokens=${i + 2}]]`));
  assert.deepEqual(answers.map((a) => words(a.text)), [2, 3, 4, 5]);
});

test("@langchain/openai useResponsesApi: withStructuredOutput", { skip }, async () => {
  // JSON schema (text.format): the simulator's JSON answer is {"answer": "..."}.
  const answerSchema = {
    title: "Answer",
    type: "object",
    properties: { answer: { type: "string" } },
    required: ["answer"],
    additionalProperties: false,
  };
  const out = await lc().withStructuredOutput(answerSchema, { method: "jsonSchema" }).invoke("in JSON [[tokens=3]]");
  assert.equal(words(out.answer), 3);
  // Function calling: a named choice of the schema's tool.
  const weatherSchema = {
    title: "Weather",
    description: "The city to get the weather for",
    type: "object",
    properties: { city: { type: "string" } },
    required: ["city"],
  };
  const call = await lc().withStructuredOutput(weatherSchema, { method: "functionCalling" }).invoke("weather? [[tool]]");
  assert.deepEqual(call, { city: "Tokyo" });
});

test("openai-node: runTools with a named tool_choice", { skip }, async () => {
  const seen = [];
  const runner = client.chat.completions.runTools({
    model: "local-small",
    messages: [{ role: "user", content: "weather? [[tool]]" }],
    tool_choice: { type: "function", function: { name: "get_weather" } },
    tools: [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather for a city",
          parameters: { type: "object", properties: { city: { type: "string" } } },
          parse: JSON.parse,
          function: (args) => {
            seen.push(args);
            return "22C";
          },
        },
      },
    ],
  });
  await runner.done();
  assert.deepEqual(seen, [{ city: "Tokyo" }]);
  assert.equal(runner.messages.at(-1).role, "tool");
});

test("@langchain/openai: OpenAIEmbeddings", { skip: embedMissing }, async () => {
  const emb = new OpenAIEmbeddings({ model: "embed", apiKey: "not-needed", maxRetries: 0, configuration: { baseURL: `${BASE}/v1` } });
  const vectors = await emb.embedDocuments(["the first text", "a second one"]);
  assert.equal(vectors.length, 2);
  assert.ok(vectors[0].length > 0);
  assert.notDeepEqual(vectors[0], vectors[1]);
  const q = await emb.embedQuery("the first text");
  q.forEach((f, i) => assert.ok(Math.abs(f - vectors[0][i]) < 1e-6));
});

test("openai-node: embeddings.create (string, list, base64)", { skip: embedMissing }, async () => {
  const one = await client.embeddings.create({ model: "embed", input: "the first text" });
  assert.equal(one.object, "list");
  const dim = one.data[0].embedding.length;
  assert.ok(dim > 0);
  assert.ok(one.usage.prompt_tokens > 0);
  const list = await client.embeddings.create({ model: "embed", input: ["the first text", "a second one"] });
  assert.deepEqual(list.data.map((d) => d.index), [0, 1]);
  assert.deepEqual(list.data[0].embedding, one.data[0].embedding);
  // The SDK asks for base64 by default when no format is given and decodes it; ask explicitly too.
  const b64 = await client.embeddings.create({ model: "embed", input: "the first text", encoding_format: "base64" });
  assert.equal(typeof b64.data[0].embedding, "string");
  const bytes = Buffer.from(b64.data[0].embedding, "base64");
  const floats = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  assert.equal(floats.length, dim);
  floats.forEach((f, i) => assert.ok(Math.abs(f - one.data[0].embedding[i]) < 1e-6));
});

test("openai-node: completions.create, streamed and not", { skip: completionsMissing }, async () => {
  const r = await client.completions.create({ model: "local-small", prompt: "Once upon a time [[tokens=5]]" });
  assert.equal(r.object, "text_completion");
  assert.equal(words(r.choices[0].text), 5);
  assert.equal(r.usage.completion_tokens, 5);
  const stream = await client.completions.create({
    model: "local-small",
    prompt: "Once upon a time [[tokens=5]]",
    stream: true,
  });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
  assert.equal(text, r.choices[0].text);
});
