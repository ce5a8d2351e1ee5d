"""Identity and access: workspaces, API keys and their scopes, the caller of a request."""
