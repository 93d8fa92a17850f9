"""The ``ExecutionControl`` contract carried across processes: the JSON form of its calls,
results and errors, and the HTTP client that drives executions through a server."""
