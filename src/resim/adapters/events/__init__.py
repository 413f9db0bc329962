"""CAMARA notification sinks: the HTTP client, its fake and a loopback capture server."""
