//! `null` and absent mean the same: real servers write `"tool_calls": null` (llama-cpp-python),
//! `"choices": null` (Go's nil slices) or leave the field out, and all three must decode alike.

use serde::{Deserialize, Deserializer};

/// Deserializes `T`, reading `null` as `T::default()`. Use with `#[serde(default)]` so that an
/// absent field gets the default too.
pub(crate) fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Deserialize)]
    struct S {
        #[serde(default, deserialize_with = "or_default")]
        v: Vec<u32>,
        #[serde(default, deserialize_with = "or_default")]
        s: String,
    }

    #[test]
    fn null_absent_and_present_values() {
        let a: S = serde_json::from_str(r#"{"v":null,"s":null}"#).unwrap();
        assert!(a.v.is_empty() && a.s.is_empty());
        let b: S = serde_json::from_str("{}").unwrap();
        assert!(b.v.is_empty() && b.s.is_empty());
        let c: S = serde_json::from_str(r#"{"v":[1],"s":"x"}"#).unwrap();
        assert_eq!((c.v, c.s.as_str()), (vec![1], "x"));
    }
}
