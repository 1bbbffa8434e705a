"""A realistic sample estate in the export shapes people produce; `auditor scan --sample`."""
