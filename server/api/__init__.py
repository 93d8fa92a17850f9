"""The HTTP and WebSocket API: routes, request parsing, problem documents and middlewares.
Handlers stay thin: they parse and authorise the request, call the event log, and encode."""
