"""People's details: erasure (`muster people erase`) and the retention schedule (docs/security.md)."""
