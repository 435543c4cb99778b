//! Messages and service stubs generated from `proto/switchyard/ledger/v1/ledger.proto`.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("switchyard.ledger.v1");
