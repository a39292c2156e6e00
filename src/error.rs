//! One mapping from error kind to both gRPC status and HTTP status, so both front doors say
//! the same thing for the same fault.

/// What a caller can do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong; fix it and retry.
    InvalidArgument,
    /// No or bad credentials.
    Unauthenticated,
    /// Credentials valid but not allowed to do this.
    PermissionDenied,
    NotFound,
    /// Overloaded or shutting down; retry later with the same event ids.
    Unavailable,
    /// A bug or a broken disk; the operator must look at the logs.
    Internal,
}

impl ErrorKind {
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            Self::InvalidArgument => tonic::Code::InvalidArgument,
            Self::Unauthenticated => tonic::Code::Unauthenticated,
            Self::PermissionDenied => tonic::Code::PermissionDenied,
            Self::NotFound => tonic::Code::NotFound,
            Self::Unavailable => tonic::Code::Unavailable,
            Self::Internal => tonic::Code::Internal,
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidArgument => 400,
            Self::Unauthenticated => 401,
            Self::PermissionDenied => 403,
            Self::NotFound => 404,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }
}
