"""The shapes the engine answers with: one pydantic model per API object, used by the service, the CLI and the TUI."""
