"""Debug pods: isolated per-user worker processes (local processes or Kubernetes pods) that run
executions next to the tree, and the server side that starts, reaches and reaps them."""
