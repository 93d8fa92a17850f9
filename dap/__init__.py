"""Debug Adapter Protocol layer: maps DAP onto the runtime's debug-control contract."""
