//! Trent's server: the actix-web listeners (the API listener hands every request to the
//! framework-free pipeline of `trent_service::edge`; the admin listener serves metrics, health,
//! readiness and simulation), TLS, and the `trent` command line. The only crate that knows the
//! HTTP framework.

pub mod cli;
pub mod server;
pub mod tls;
