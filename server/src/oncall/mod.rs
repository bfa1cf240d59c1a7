//! On-call routing: who is called for a patient's alert at a given instant.
//!
//! Layout:
//! - [`holidays`]: Japanese public holidays computed from the law.
pub mod holidays;
