//! A deployment's TLS settings, from LiteLLM's keys (`ssl_verify: false`, `ssl_verify: ca.pem`,
//! `ssl_certificate`, per deployment or in `litellm_settings`) or the native `tls:` block.
//!
//! Files are checked to exist here, so `check` names a missing CA or key; they are parsed when
//! the backend clients are built.

use super::error::ConfigError;
use super::model::TlsSettings;
use super::raw::{RawLiteLlmParams, RawSslVerify, RawTls};

/// `litellm_settings.ssl_verify` / `ssl_certificate`: every deployment's default.
#[derive(Debug, Default)]
pub(super) struct TlsDefaults {
    pub ssl_verify: Option<RawSslVerify>,
    pub ssl_certificate: Option<String>,
}

fn file(key: &str, path: &str) -> Result<String, ConfigError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(path.to_string()),
        Ok(_) => Err(ConfigError::invalid(key, format!("{path} is not a file"))),
        Err(e) => Err(ConfigError::invalid(
            key,
            format!("cannot read {path}: {e}"),
        )),
    }
}

/// Notes what the settings mean for `api_base` (nothing at all for plain http).
fn note(label: &str, tls: &TlsSettings, api_base: &str, notes: &mut Vec<String>) {
    if tls == &TlsSettings::default() {
        if api_base.starts_with("https://") {
            notes.push(format!(
                "{label}: https with the system's root certificates"
            ));
        }
        return;
    }
    if !api_base.starts_with("https://") {
        notes.push(format!(
            "{label}: TLS settings ignored: {api_base} is plain http"
        ));
        return;
    }
    let mut parts = Vec::new();
    if tls.insecure {
        parts.push("certificate NOT verified (ssl_verify: false)".to_string());
    } else if let Some(ca) = &tls.ca_file {
        parts.push(format!(
            "server certificate checked against the CA file {ca}"
        ));
    } else {
        parts.push("server certificate checked against the system's roots".to_string());
    }
    if let Some(c) = &tls.client_cert {
        parts.push(format!("client certificate {c}"));
    }
    notes.push(format!("{label}: https, {}", parts.join(", ")));
}

/// `ssl_verify` as written: `Ok(None)` = verify with the system roots.
fn verify(key: &str, v: &RawSslVerify) -> Result<(bool, Option<String>), ConfigError> {
    match v {
        RawSslVerify::Bool(b) => Ok((!b, None)),
        RawSslVerify::Path(p) => match p.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok((false, None)),
            "false" | "0" | "no" => Ok((true, None)),
            _ => Ok((false, Some(file(key, p.trim())?))),
        },
    }
}

/// The TLS settings of a LiteLLM `model_list` entry.
pub(super) fn litellm(
    key: &str,
    p: &RawLiteLlmParams,
    defaults: &TlsDefaults,
    api_base: &str,
    notes: &mut Vec<String>,
) -> Result<TlsSettings, ConfigError> {
    let mut tls = TlsSettings::default();
    let (sv, sv_key) = match (&p.ssl_verify, &defaults.ssl_verify) {
        (Some(v), _) => (Some(v), format!("{key}.litellm_params.ssl_verify")),
        (None, Some(v)) => (Some(v), "litellm_settings.ssl_verify".to_string()),
        (None, None) => (None, String::new()),
    };
    if let Some(v) = sv {
        (tls.insecure, tls.ca_file) = verify(&sv_key, v)?;
    }
    let (cert, cert_key) = match (&p.ssl_certificate, &defaults.ssl_certificate) {
        (Some(c), _) => (Some(c), format!("{key}.litellm_params.ssl_certificate")),
        (None, Some(c)) => (Some(c), "litellm_settings.ssl_certificate".to_string()),
        (None, None) => (None, String::new()),
    };
    if let Some(c) = cert {
        tls.client_cert = Some(file(&cert_key, c)?);
    }
    if let Some(k) = &p.ssl_certificate_key {
        let kk = format!("{key}.litellm_params.ssl_certificate_key");
        if tls.client_cert.is_none() {
            return Err(ConfigError::invalid(
                kk,
                "a key without ssl_certificate: set the client certificate too",
            ));
        }
        tls.client_key = Some(file(&kk, k)?);
    }
    note(key, &tls, api_base, notes);
    Ok(tls)
}

/// The TLS settings of a native deployment's `tls:` block.
pub(super) fn native(
    key: &str,
    raw: Option<&RawTls>,
    api_base: &str,
    notes: &mut Vec<String>,
) -> Result<TlsSettings, ConfigError> {
    let Some(raw) = raw else {
        note(key, &TlsSettings::default(), api_base, notes);
        return Ok(TlsSettings::default());
    };
    let path = |name: &str, v: &Option<String>| {
        v.as_deref()
            .map(|p| file(&format!("{key}.tls.{name}"), p))
            .transpose()
    };
    let tls = TlsSettings {
        insecure: raw.verify == Some(false),
        ca_file: path("ca_file", &raw.ca_file)?,
        client_cert: path("client_cert", &raw.client_cert)?,
        client_key: path("client_key", &raw.client_key)?,
    };
    if tls.client_key.is_some() && tls.client_cert.is_none() {
        return Err(ConfigError::invalid(
            format!("{key}.tls.client_key"),
            "a key without client_cert: set the client certificate too",
        ));
    }
    note(key, &tls, api_base, notes);
    Ok(tls)
}
