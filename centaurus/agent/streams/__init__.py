"""Kubernetes streaming on the node side: SPDY/3.1, the WebSocket channel protocol, exec/attach
and port-forward over both."""
