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
    /// Over a rate or quota; retry after the time the answer names.
    ResourceExhausted,
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
            Self::ResourceExhausted => tonic::Code::ResourceExhausted,
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
            Self::ResourceExhausted => 429,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }
}

/// The symbolic name of an OS error an operator can act on (`ENOSPC`, `EMFILE`...).
fn errno_name(code: i32) -> Option<&'static str> {
    // Linux numbers; these are the faults a collector meets in the field.
    Some(match code {
        1 => "EPERM",
        2 => "ENOENT",
        5 => "EIO",
        12 => "ENOMEM",
        13 => "EACCES",
        23 => "ENFILE",
        24 => "EMFILE",
        27 => "EFBIG",
        28 => "ENOSPC",
        30 => "EROFS",
        122 => "EDQUOT",
        _ => return None,
    })
}

/// An I/O error as an operator needs to read it: the message and the errno name, e.g.
/// "No space left on device (os error 28, ENOSPC)".
pub fn describe_io(e: &std::io::Error) -> String {
    match e.raw_os_error().and_then(errno_name) {
        Some(name) => format!("{e} [{name}]"),
        None => e.to_string(),
    }
}

/// Adds the errno name after each OS error code inside a message from a library that only
/// passes the text on (tantivy does, as "(os error 24)" or "Os { code: 24, ... }").
pub fn name_os_errors(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 8);
    let mut rest = message;
    loop {
        let at = [("(os error ", ')'), ("Os { code: ", ',')]
            .iter()
            .filter_map(|(p, end)| rest.find(p).map(|i| (i, p.len(), *end)))
            .min();
        let Some((at, plen, end)) = at else {
            break;
        };
        let after = &rest[at + plen..];
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        let close = at + plen + digits.len();
        out.push_str(&rest[..close]);
        rest = &rest[close..];
        if let Some(name) = digits.parse().ok().and_then(errno_name) {
            if rest.starts_with(end) {
                out.push_str(&format!(" [{name}]"));
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether an I/O error is a resource running out (disk, quota, file handles, memory), which
/// may go away, rather than a fault in the data.
pub fn is_resource_exhausted(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(12 | 23 | 24 | 27 | 28 | 122))
        || e.kind() == std::io::ErrorKind::StorageFull
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_carry_their_names() {
        let e = std::io::Error::from_raw_os_error(28);
        assert!(describe_io(&e).contains("ENOSPC"), "{}", describe_io(&e));
        assert!(is_resource_exhausted(&e));
        assert!(!is_resource_exhausted(&std::io::Error::from_raw_os_error(
            5
        )));
        assert_eq!(
            name_os_errors("index: Too many open files (os error 24) while merging"),
            "index: Too many open files (os error 24 [EMFILE]) while merging"
        );
        assert_eq!(
            name_os_errors("err: Os { code: 28, kind: StorageFull }"),
            "err: Os { code: 28 [ENOSPC], kind: StorageFull }"
        );
        assert_eq!(name_os_errors("(os error 9999)"), "(os error 9999)");
    }
}
