"""HTTP plumbing shared by the API routers: dependencies, errors, limits, health, queues."""
