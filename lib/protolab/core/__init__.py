"""Leaves of the package: modules that import nothing else from protolab (atomic writes, the dry-run meter,
seeding and devices, the oneDNN linear map)."""
