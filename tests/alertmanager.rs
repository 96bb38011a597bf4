//! Placeholder until this test lands (issue 6).
