//! A minimal GGUF header reader (little-endian v2/v3): the tokenizer lives entirely in the key/value
//! header, so this reads magic, version, counts and every KV pair and stops before the tensor infos.
//! Every length is checked against a limit before anything is allocated for it, so a malformed or
//! hostile file yields an error, never a panic or a huge allocation.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::error::GgufError;

/// Longest string accepted (chat templates are the longest real strings, about 100 kB).
pub const MAX_STRING_LEN: u64 = 16 << 20;
/// Most elements accepted in one array (the largest vocabularies have ~1M merges).
pub const MAX_ARRAY_LEN: u64 = 8 << 20;
/// Most key/value pairs accepted.
pub const MAX_KV_COUNT: u64 = 1 << 20;
const MAX_DEPTH: usize = 4;
/// Elements reserved up front, whatever a header claims: the rest grows as data actually arrives.
const PREALLOC: usize = 4096;

/// One GGUF metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<GgufValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl GgufValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Any integer type, widened.
    pub fn as_i64(&self) -> Option<i64> {
        Some(match *self {
            GgufValue::U8(v) => v.into(),
            GgufValue::I8(v) => v.into(),
            GgufValue::U16(v) => v.into(),
            GgufValue::I16(v) => v.into(),
            GgufValue::U32(v) => v.into(),
            GgufValue::I32(v) => v.into(),
            GgufValue::U64(v) => i64::try_from(v).ok()?,
            GgufValue::I64(v) => v,
            _ => return None,
        })
    }

    /// Any numeric type, widened (integers included: some files store integer scores).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(v.into()),
            GgufValue::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            GgufValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// The header of a GGUF file: format version, tensor count and all key/value pairs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GgufMetadata {
    pub version: u32,
    pub tensor_count: u64,
    pub kv: HashMap<String, GgufValue>,
}

impl GgufMetadata {
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.kv.get(key)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(GgufValue::as_str)
    }
}

/// Reads the header of the GGUF file at `path` (never its tensor data).
pub fn read_gguf(path: impl AsRef<Path>) -> Result<GgufMetadata, GgufError> {
    let file = File::open(path)?;
    read_gguf_from(BufReader::with_capacity(1 << 16, file))
}

/// Reads a GGUF header from `reader`, stopping right after the last key/value pair.
pub fn read_gguf_from(mut reader: impl Read) -> Result<GgufMetadata, GgufError> {
    let r = &mut reader;
    let magic: [u8; 4] = read_array(r)?;
    if &magic != b"GGUF" {
        return Err(GgufError::BadMagic(magic));
    }
    let version = u32::from_le_bytes(read_array(r)?);
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion(version));
    }
    let tensor_count = u64::from_le_bytes(read_array(r)?);
    let n_kv = checked_len(
        u64::from_le_bytes(read_array(r)?),
        MAX_KV_COUNT,
        "key/value count",
    )?;
    let mut kv = HashMap::with_capacity(n_kv.min(PREALLOC));
    for _ in 0..n_kv {
        let key = read_string(r)?;
        let ty = u32::from_le_bytes(read_array(r)?);
        let value = read_value(r, ty, 0)?;
        kv.insert(key, value);
    }
    Ok(GgufMetadata {
        version,
        tensor_count,
        kv,
    })
}

fn read_value(r: &mut impl Read, ty: u32, depth: usize) -> Result<GgufValue, GgufError> {
    Ok(match ty {
        0 => GgufValue::U8(u8::from_le_bytes(read_array(r)?)),
        1 => GgufValue::I8(i8::from_le_bytes(read_array(r)?)),
        2 => GgufValue::U16(u16::from_le_bytes(read_array(r)?)),
        3 => GgufValue::I16(i16::from_le_bytes(read_array(r)?)),
        4 => GgufValue::U32(u32::from_le_bytes(read_array(r)?)),
        5 => GgufValue::I32(i32::from_le_bytes(read_array(r)?)),
        6 => GgufValue::F32(f32::from_le_bytes(read_array(r)?)),
        7 => GgufValue::Bool(u8::from_le_bytes(read_array(r)?) != 0),
        8 => GgufValue::String(read_string(r)?),
        9 => {
            if depth >= MAX_DEPTH {
                return Err(GgufError::TooDeep(MAX_DEPTH));
            }
            let elem = u32::from_le_bytes(read_array(r)?);
            if elem > 12 {
                return Err(GgufError::UnknownType(elem));
            }
            let n = checked_len(
                u64::from_le_bytes(read_array(r)?),
                MAX_ARRAY_LEN,
                "array length",
            )?;
            let mut items = Vec::with_capacity(n.min(PREALLOC));
            for _ in 0..n {
                items.push(read_value(r, elem, depth + 1)?);
            }
            GgufValue::Array(items)
        }
        10 => GgufValue::U64(u64::from_le_bytes(read_array(r)?)),
        11 => GgufValue::I64(i64::from_le_bytes(read_array(r)?)),
        12 => GgufValue::F64(f64::from_le_bytes(read_array(r)?)),
        other => return Err(GgufError::UnknownType(other)),
    })
}

fn read_array<const N: usize>(r: &mut impl Read) -> Result<[u8; N], GgufError> {
    let mut buf = [0u8; N];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

fn read_string(r: &mut impl Read) -> Result<String, GgufError> {
    let len = checked_len(
        u64::from_le_bytes(read_array(r)?),
        MAX_STRING_LEN,
        "string length",
    )?;
    let mut buf = Vec::with_capacity(len.min(PREALLOC));
    r.take(len as u64).read_to_end(&mut buf)?;
    if buf.len() != len {
        return Err(GgufError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    // llama.cpp works on raw bytes; tokens that are not UTF-8 can never match &str input anyway.
    Ok(String::from_utf8(buf)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

fn checked_len(len: u64, max: u64, what: &'static str) -> Result<usize, GgufError> {
    if len > max {
        return Err(GgufError::TooLarge { what, len, max });
    }
    usize::try_from(len).map_err(|_| GgufError::TooLarge { what, len, max })
}
