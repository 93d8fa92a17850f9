"""The runtime that executes and debugs trees; it knows nothing of DAP or HTTP."""
