"""Default policy and sample configuration; installed as `auditor.defaults` package data."""
