//! The KMS API as Trent speaks it: operations from `X-Amz-Target`, input validation against AWS's
//! model, typed requests, and the errors clients see (`KmsError`, rendered as an `AwsError`).
//! Nothing here knows an HTTP framework.

mod convert;
pub mod error;
pub mod model;
pub mod operation;
pub mod wire;

pub use error::{AwsError, KmsError};
pub use operation::Operation;
