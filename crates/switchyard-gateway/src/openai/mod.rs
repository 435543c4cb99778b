//! OpenAI wire types: the request we accept and the responses we write.

pub mod completions;
pub mod embeddings;
pub mod request;
pub mod response;
pub mod responses_out;
pub mod responses_request;
