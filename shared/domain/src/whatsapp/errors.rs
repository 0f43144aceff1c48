//! What to do about a Graph API error code (PROTOCOLS.md, "Error codes").

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphErrorClass {
    /// Throttling or a passing fault: retry with backoff and jitter.
    Retry,
    /// Outside the 24-hour window: only a template can be sent.
    OutsideWindow,
    /// The pair rate limit or an unhealthy ecosystem: wait about a day.
    WaitDay,
    /// Will not succeed by trying again.
    Final,
}

impl GraphErrorClass {
    pub fn from_code(code: i64) -> Self {
        match code {
            130429 | 131056 | 4 | 80007 | 131000 | 131016 | 2 => GraphErrorClass::Retry,
            131047 => GraphErrorClass::OutsideWindow,
            131049 => GraphErrorClass::WaitDay,
            _ => GraphErrorClass::Final,
        }
    }

    pub fn is_retryable(self) -> bool {
        self == GraphErrorClass::Retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_table() {
        for code in [130429, 131056, 4, 80007, 131000, 131016, 2] {
            assert_eq!(
                GraphErrorClass::from_code(code),
                GraphErrorClass::Retry,
                "{code}"
            );
        }
        for code in [131026, 131048, 131050, 131051, 132000, 132001, 132015, 100] {
            assert_eq!(
                GraphErrorClass::from_code(code),
                GraphErrorClass::Final,
                "{code}"
            );
        }
        assert_eq!(
            GraphErrorClass::from_code(131047),
            GraphErrorClass::OutsideWindow
        );
        assert_eq!(GraphErrorClass::from_code(131049), GraphErrorClass::WaitDay);
    }
}
