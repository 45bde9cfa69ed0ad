//! The request edge without HTTP: a framework-free `Request`/`Response`, who is calling
//! (`caller`), the one `pipeline` every protocol on the listener goes through, and the KMS
//! protocol (`kms`). CloudTrail's and STS's protocols live with their operations
//! (`crate::cloudtrail`, `crate::sts`); `crate::listener` picks the protocol of a request.

pub mod caller;
pub mod kms;
pub mod pipeline;
pub mod request;

pub use request::{Request, Response};
