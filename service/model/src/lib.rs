//! The KMS API as Trent speaks it: operations from `X-Amz-Target`, input validation against AWS's
//! model, typed requests, and the errors clients see (`KmsError`, rendered as an `AwsError`).
//! Nothing here knows an HTTP framework.

// No panics on request paths: unwrap, expect and unchecked indexing are refused outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod convert;
pub mod error;
pub mod json_out;
pub mod model;
pub mod operation;
pub mod wire;

pub use error::{AwsError, KmsError};
pub use operation::Operation;
