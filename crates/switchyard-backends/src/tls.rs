//! TLS to backends: one rustls client configuration per distinct [`TlsSettings`], shared by the
//! attempt pool and the prober.
//!
//! rustls with the ring provider (no C toolchain beyond what `ring` needs, one provider for the
//! whole process). Roots are the system's (`rustls-native-certs` reads the OS trust store, so a
//! corporate CA installed there is trusted as it is by curl), unless a deployment names a CA
//! file, which then replaces them. `ssl_verify: false` accepts any certificate but still checks
//! the handshake's signatures.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use switchyard_core::config::TlsSettings;

/// Why a TLS configuration could not be built (a file that is not PEM, say).
#[derive(Debug, thiserror::Error)]
#[error("TLS settings: {0}")]
pub struct TlsError(String);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's root certificates, read once per process.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "reading the system's root certificates");
            }
            let mut store = RootCertStore::empty();
            let (added, ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                tracing::warn!(
                    "no system root certificates found (install ca-certificates); https backends need a CA file (ssl_verify: /path/ca.pem)"
                );
            }
            tracing::debug!(added, ignored, "system root certificates");
            Arc::new(store)
        })
        .clone()
}

fn certs(path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError(format!("{path}: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(format!("{path}: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError(format!("{path}: no PEM certificate in it")));
    }
    Ok(certs)
}

/// A configuration for hosts reached over plain http (it never handshakes: no roots read).
pub fn plain_config() -> Result<ClientConfig, TlsError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth())
}

/// The rustls client configuration for `s`.
pub fn client_config(s: &TlsSettings) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?;
    let builder = if s.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider().signature_verification_algorithms,
            )))
    } else if let Some(ca) = &s.ca_file {
        let mut roots = RootCertStore::empty();
        for c in certs(ca)? {
            roots.add(c).map_err(|e| TlsError(format!("{ca}: {e}")))?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder.with_root_certificates(system_roots())
    };
    match &s.client_cert {
        None => Ok(builder.with_no_client_auth()),
        Some(cert) => {
            let key_path = s.client_key.as_deref().unwrap_or(cert);
            let key = PrivateKeyDer::from_pem_file(key_path)
                .map_err(|e| TlsError(format!("{key_path}: no private key: {e}")))?;
            builder
                .with_client_auth_cert(certs(cert)?, key)
                .map_err(|e| TlsError(format!("{cert}: {e}")))
        }
    }
}

/// `ssl_verify: false`: any certificate, for any name, is accepted; signatures are still checked
/// so the handshake itself is sound.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Whether a TLS failure is somewhere in an error's causes (so the message can say so). An
/// `io::Error` wrapping another error hides it from `source()` (hyper-rustls wraps tokio-rustls's
/// `io::Error` in another), so those are opened with `get_ref`.
pub(crate) fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        cur = match err.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => std::error::Error::source(io),
            },
            None => err.source(),
        };
    }
    false
}
