//! The AWS JSON 1.1 wire protocol: operations from `X-Amz-Target`, input validation against the
//! KMS model, typed requests, and the mapping of errors to AWS error shapes.

mod convert;
pub mod error;
pub mod model;
pub mod operation;
pub mod wire;

pub use error::KmsError;
pub use operation::Operation;
