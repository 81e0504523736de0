"""The only code that touches sockets: one port for WebSocket (`/app/{key}`) and the HTTP API."""
