//! Where load goes: an `http://127.0.0.1:PORT/path` URL, parsed once, and refused unless it is a
//! loopback address — benchmarks on shared machines must never send traffic anywhere else.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A parsed benchmark target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The socket to connect to (always loopback).
    pub addr: SocketAddr,
    /// The `Host` header value (`host:port` as written in the URL).
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

/// Why a URL was refused.
#[derive(Debug)]
pub enum TargetError {
    /// Only `http://` is supported (the gateway and its peers listen without TLS here).
    NotHttp(String),
    /// The host is not a loopback address.
    NotLoopback(String),
    /// Host or port missing or malformed.
    Malformed(String),
}

impl std::error::Error for TargetError {}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetError::NotHttp(u) => write!(f, "{u}: only http:// URLs are supported"),
            TargetError::NotLoopback(u) => {
                write!(
                    f,
                    "{u}: refusing a non-loopback target (benchmarks only talk to 127.0.0.1)"
                )
            }
            TargetError::Malformed(u) => write!(f, "{u}: expected http://127.0.0.1:PORT/path"),
        }
    }
}

impl Target {
    /// Parses `http://HOST:PORT/path`; HOST must be `localhost` or a loopback IP.
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| TargetError::NotHttp(url.to_string()))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, p) = v6
                .split_once("]:")
                .ok_or_else(|| TargetError::Malformed(url.to_string()))?;
            (h, p)
        } else {
            authority
                .rsplit_once(':')
                .ok_or_else(|| TargetError::Malformed(url.to_string()))?
        };
        let port: u16 = port
            .parse()
            .map_err(|_| TargetError::Malformed(url.to_string()))?;
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.parse()
                .map_err(|_| TargetError::Malformed(url.to_string()))?
        };
        if !ip.is_loopback() {
            return Err(TargetError::NotLoopback(url.to_string()));
        }
        Ok(Target {
            addr: SocketAddr::new(ip, port),
            authority: authority.to_string(),
            path: path.to_string(),
        })
    }

    /// The same host with another path (e.g. the simulator's `/_sim/requests`).
    pub fn with_path(&self, path: &str) -> Self {
        Target {
            path: path.to_string(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn accepts_loopback_only() {
        let t = Target::parse("http://127.0.0.1:4000/v1/chat/completions").unwrap();
        assert_eq!(t.addr, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(t.path, "/v1/chat/completions");
        assert_eq!(t.authority, "127.0.0.1:4000");
        let t = Target::parse("http://localhost:9").unwrap();
        assert_eq!(t.path, "/");
        assert!(Target::parse("http://[::1]:80/x").is_ok());
        assert!(matches!(
            Target::parse("http://10.0.0.1:80/"),
            Err(TargetError::NotLoopback(_))
        ));
        assert!(matches!(
            Target::parse("http://example.com:80/"),
            Err(TargetError::Malformed(_))
        ));
        assert!(matches!(
            Target::parse("https://127.0.0.1:80/"),
            Err(TargetError::NotHttp(_))
        ));
        assert!(matches!(
            Target::parse("http://127.0.0.1/"),
            Err(TargetError::Malformed(_))
        ));
    }
}
