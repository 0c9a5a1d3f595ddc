//! Tests of durable definitions and queue message logs.
