//! Validator (placeholder).
