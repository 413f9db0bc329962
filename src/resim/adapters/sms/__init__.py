"""SMS: the gateway adapter over HTTP, an in-memory fake and a loopback capture."""
