"""The job service: pipelines run as jobs by worker processes, state in a durable store, a FastAPI front door."""
