//! The black-box suite as one test binary: each module drives a real `trent` process (or a store)
//! through the harness in `common`, so a change to the service relinks one executable, not nineteen.

#[macro_use]
mod common;

mod check_order;
mod console;

mod asymmetric;
mod authorization;
mod aws_cli;
mod durability;
mod edge;
mod fidelity;
mod import;
mod key_state_matrix;
mod kms_api;
mod lifecycle;
mod lookup_events;
mod monitoring;
mod multi_region;
mod protocol_errors;
mod response_fields;
mod role_sessions;
mod safety;
mod sdk_interop;
mod service_principals;
mod simulation;
mod snapshots;
mod store_conformance;
mod tls;
mod trail;
mod warm_up;
mod xks_check;
mod xks_stores;
