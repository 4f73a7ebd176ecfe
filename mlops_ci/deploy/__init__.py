"""Deployment targets: registry promotion (compare-and-set on aliases), Docker blue/green,
Kubernetes manifests; and the audit trail every deployment leaves (version tags and an
append-only, hash-chained deployment log)."""
