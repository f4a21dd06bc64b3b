//! Port behaviour suites (filled below).
