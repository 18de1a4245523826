//! API errors as CloudStack reports them: an `errorcode` that doubles as the HTTP status, an
//! optional `cserrorcode` naming the Java exception class it stands for, and the `errortext`.

use thiserror::Error;

use crate::db::DbError;

/// `ApiErrorCode` values. The HTTP status of an error reply equals the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A session request with no `command`.
    BadRequest,
    /// Bad signature, unknown key, expired `expires`, bad session, command not allowed.
    Unauthorized,
    /// `login` sent with GET.
    MethodNotAllowed,
    /// Two-factor authentication not completed.
    Unauthorized2fa,
    /// API throttling.
    ApiLimitExceeded,
    /// Bad `name[index].field` syntax.
    MalformedParameter,
    /// Missing or invalid parameter.
    ParamError,
    /// Unknown or unavailable command.
    UnsupportedAction,
    /// Unhandled failure.
    InternalError,
    /// Permission denied, failed login.
    AccountError,
    /// Resource limit exceeded.
    AccountResourceLimit,
    /// No capacity to deploy.
    InsufficientCapacity,
    /// Resource unavailable.
    ResourceUnavailable,
    /// Allocation failed.
    ResourceAllocation,
    /// Resource in use.
    ResourceInUse,
    /// Conflicting network rule.
    NetworkRuleConflict,
}

impl ErrorCode {
    /// The numeric `errorcode`.
    pub fn code(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Unauthorized2fa => 411,
            ErrorCode::ApiLimitExceeded => 429,
            ErrorCode::MalformedParameter => 430,
            ErrorCode::ParamError => 431,
            ErrorCode::UnsupportedAction => 432,
            ErrorCode::InternalError => 530,
            ErrorCode::AccountError => 531,
            ErrorCode::AccountResourceLimit => 532,
            ErrorCode::InsufficientCapacity => 533,
            ErrorCode::ResourceUnavailable => 534,
            ErrorCode::ResourceAllocation => 535,
            ErrorCode::ResourceInUse => 536,
            ErrorCode::NetworkRuleConflict => 537,
        }
    }

    /// The HTTP status of the reply; CloudStack uses the error code itself.
    pub fn http_status(self) -> u16 {
        self.code()
    }

    /// The code for a number, if it is one of ours (e.g. a job result code read back).
    pub fn from_code(code: u16) -> Option<ErrorCode> {
        ALL.iter().copied().find(|c| c.code() == code)
    }
}

const ALL: [ErrorCode; 16] = [
    ErrorCode::BadRequest,
    ErrorCode::Unauthorized,
    ErrorCode::MethodNotAllowed,
    ErrorCode::Unauthorized2fa,
    ErrorCode::ApiLimitExceeded,
    ErrorCode::MalformedParameter,
    ErrorCode::ParamError,
    ErrorCode::UnsupportedAction,
    ErrorCode::InternalError,
    ErrorCode::AccountError,
    ErrorCode::AccountResourceLimit,
    ErrorCode::InsufficientCapacity,
    ErrorCode::ResourceUnavailable,
    ErrorCode::ResourceAllocation,
    ErrorCode::ResourceInUse,
    ErrorCode::NetworkRuleConflict,
];

/// `cserrorcode` values (`CSExceptionErrorCode`) for the exception classes we imitate.
pub mod cs {
    /// CloudRuntimeException.
    pub const CLOUD_RUNTIME: u32 = 4250;
    /// AccountLimitException.
    pub const ACCOUNT_LIMIT: u32 = 4280;
    /// InsufficientCapacityException.
    pub const INSUFFICIENT_CAPACITY: u32 = 4325;
    /// InvalidParameterValueException.
    pub const INVALID_PARAMETER_VALUE: u32 = 4350;
    /// NetworkRuleConflictException.
    pub const NETWORK_RULE_CONFLICT: u32 = 4360;
    /// PermissionDeniedException.
    pub const PERMISSION_DENIED: u32 = 4365;
    /// ResourceAllocationException.
    pub const RESOURCE_ALLOCATION: u32 = 4370;
    /// ResourceInUseException.
    pub const RESOURCE_IN_USE: u32 = 4375;
    /// ResourceUnavailableException.
    pub const RESOURCE_UNAVAILABLE: u32 = 4380;
    /// RequestLimitException.
    pub const REQUEST_LIMIT: u32 = 4545;
    /// UnavailableCommandException.
    pub const UNAVAILABLE_COMMAND: u32 = 4555;
    /// A bare ServerApiException.
    pub const SERVER_API: u32 = 9999;
}

/// The text every authentication failure carries, whatever the cause (so probing learns nothing).
pub const UNAUTHORIZED_TEXT: &str = "unable to verify user credentials and/or request signature";

/// The texts of a 530 for a write the database refused.
pub const DB_READ_ONLY_TEXT: &str = "The database is read-only; try again once it is writable";
pub const DB_BUSY_TEXT: &str = "The database is busy (another writer holds its lock); try again shortly";
/// The text of a 530 for any other database failure (the cause goes to the server's log).
pub const DB_INTERNAL_TEXT: &str = "Internal error executing command, please contact your system administrator";

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        tracing::error!("{e}");
        let text = match e {
            DbError::ReadOnly(_) => DB_READ_ONLY_TEXT,
            DbError::Busy(_) => DB_BUSY_TEXT,
            _ => DB_INTERNAL_TEXT,
        };
        ApiError::internal(text)
    }
}

/// One failed API call.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{text}")]
pub struct ApiError {
    pub code: ErrorCode,
    /// `cserrorcode`; `None` leaves the field out, as CloudStack's early 401s do.
    pub cs_code: Option<u32>,
    pub text: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, cs_code: Option<u32>, text: impl Into<String>) -> Self {
        ApiError { code, cs_code, text: text.into() }
    }

    /// The HTTP status to send.
    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }

    /// 401 with the fixed text and no `cserrorcode`.
    pub fn unauthorized() -> Self {
        Self::new(ErrorCode::Unauthorized, None, UNAUTHORIZED_TEXT)
    }

    /// 431 for a required parameter that was not sent. `cmd_lower` is the lower-cased command.
    pub fn missing_param(cmd_lower: &str, param: &str) -> Self {
        Self::new(
            ErrorCode::ParamError,
            Some(cs::SERVER_API),
            format!("Unable to execute API command {cmd_lower} due to missing parameter {param}"),
        )
    }

    /// 431 as InvalidParameterValueException.
    pub fn invalid_param(text: impl Into<String>) -> Self {
        Self::new(ErrorCode::ParamError, Some(cs::INVALID_PARAMETER_VALUE), text)
    }

    /// 431 raised by the dispatcher itself (a bare ServerApiException), e.g. a value that does
    /// not parse as its declared type.
    pub fn param_error(text: impl Into<String>) -> Self {
        Self::new(ErrorCode::ParamError, Some(cs::SERVER_API), text)
    }

    /// 430 for bad `name[index].field` syntax.
    pub fn malformed(text: impl Into<String>) -> Self {
        Self::new(ErrorCode::MalformedParameter, Some(cs::SERVER_API), text)
    }

    pub fn permission_denied(text: impl Into<String>) -> Self {
        Self::new(ErrorCode::AccountError, Some(cs::PERMISSION_DENIED), text)
    }

    pub fn in_use(text: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceInUse, Some(cs::RESOURCE_IN_USE), text)
    }

    pub fn internal(text: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, Some(cs::CLOUD_RUNTIME), text)
    }

    /// 432 for an unknown or unavailable command.
    pub fn unsupported(text: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedAction, Some(cs::UNAVAILABLE_COMMAND), text)
    }

    pub fn insufficient_capacity(text: impl Into<String>) -> Self {
        Self::new(ErrorCode::InsufficientCapacity, Some(cs::INSUFFICIENT_CAPACITY), text)
    }

    pub fn unavailable(text: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceUnavailable, Some(cs::RESOURCE_UNAVAILABLE), text)
    }

    pub fn resource_limit(text: impl Into<String>) -> Self {
        Self::new(ErrorCode::AccountResourceLimit, Some(cs::ACCOUNT_LIMIT), text)
    }

    pub fn allocation_failed(text: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceAllocation, Some(cs::RESOURCE_ALLOCATION), text)
    }

    pub fn rule_conflict(text: impl Into<String>) -> Self {
        Self::new(ErrorCode::NetworkRuleConflict, Some(cs::NETWORK_RULE_CONFLICT), text)
    }

    /// 429 when throttled.
    pub fn rate_limited(text: impl Into<String>) -> Self {
        Self::new(ErrorCode::ApiLimitExceeded, Some(cs::REQUEST_LIMIT), text)
    }

    /// 405, e.g. `login` over GET.
    pub fn method_not_allowed(text: impl Into<String>) -> Self {
        Self::new(ErrorCode::MethodNotAllowed, None, text)
    }

    /// 400, e.g. a session request without `command`.
    pub fn bad_request(text: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, None, text)
    }

    /// 531 for a failed login. The text names neither user nor cause, so it cannot be used to
    /// find out which accounts exist.
    pub fn login_failed() -> Self {
        Self::new(
            ErrorCode::AccountError,
            Some(cs::SERVER_API),
            "Failed to authenticate user; please provide valid credentials",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_status() {
        for c in ALL {
            assert_eq!(c.http_status(), c.code());
            assert_eq!(ErrorCode::from_code(c.code()), Some(c));
        }
        assert_eq!(ErrorCode::from_code(200), None);
        assert_eq!(ApiError::unauthorized().http_status(), 401);
        assert_eq!(ApiError::malformed("x").http_status(), 430);
        assert_eq!(ApiError::unsupported("x").http_status(), 432);
        assert_eq!(ApiError::in_use("x").http_status(), 536);
        assert_eq!(ApiError::rule_conflict("x").http_status(), 537);
    }

    #[test]
    fn fixed_texts() {
        let e = ApiError::unauthorized();
        assert_eq!(e.cs_code, None);
        assert_eq!(e.to_string(), UNAUTHORIZED_TEXT);

        let e = ApiError::missing_param("listtemplates", "templatefilter");
        assert_eq!(e.code, ErrorCode::ParamError);
        assert_eq!(e.cs_code, Some(9999));
        assert_eq!(e.text, "Unable to execute API command listtemplates due to missing parameter templatefilter");

        assert_eq!(ApiError::invalid_param("x").cs_code, Some(4350));
        assert_eq!(ApiError::permission_denied("x").cs_code, Some(4365));
        assert_eq!(ApiError::internal("x").cs_code, Some(4250));
        assert_eq!(ApiError::insufficient_capacity("x").cs_code, Some(4325));
        assert_eq!(ApiError::unavailable("x").cs_code, Some(4380));
        assert_eq!(ApiError::unsupported("x").cs_code, Some(4555));
        let e = ApiError::login_failed();
        assert_eq!(e.http_status(), 531);
        assert!(e.text.ends_with("please provide valid credentials"));
    }
}
