//! Trent's server: the actix-web listeners (the API listener hands every request to the
//! framework-free pipeline of `trent_service::edge`; the admin listener serves metrics, health,
//! readiness and simulation), TLS, and the `trent` command line. The only crate that knows the
//! HTTP framework.

// No panics on request paths: unwrap, expect and unchecked indexing are refused outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod body;
pub mod cli;
pub mod console;
pub mod server;
pub mod tls;
pub mod xks_check;
