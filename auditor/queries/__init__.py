"""KQL queries shipped with auditor (package data: `*.kql`)."""
