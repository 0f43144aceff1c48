//! Outside HTTP services that are not AWS.
