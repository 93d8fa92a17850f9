"""Canopy's backend service: HTTP and WebSocket API, authentication, and (as they arrive) the
runtime, debug pods and the incident pipeline."""
