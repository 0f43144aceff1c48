//! The WhatsApp Cloud API: webhook model (inbound), send model (outbound),
//! and the Graph API error table.

pub mod errors;
pub mod inbound;
pub mod outbound;
