//! Physical names and ARNs as CloudFormation would give them.

use crate::aws::ACCOUNT_ID;

/// `n` random hex digits, upper case unless `lower`.
pub(super) fn suffix(n: usize, lower: bool) -> String {
    let mut s = String::new();
    while s.len() < n {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(n);
    if lower {
        s
    } else {
        s.to_uppercase()
    }
}

/// CloudFormation's generated name: `{stack}-{LogicalId}-{RANDOM}`, cut to `max`.
pub(super) fn generated(stack: &str, id: &str, max: usize) -> String {
    let tail = format!("-{}", suffix(12, false));
    let mut head = format!("{stack}-{id}");
    head.truncate(max.saturating_sub(tail.len()));
    head + &tail
}

pub(super) fn arn(service: &str, resource: &str) -> String {
    format!(
        "arn:aws:{service}:{}:{ACCOUNT_ID}:{resource}",
        crate::aws::REGION
    )
}
