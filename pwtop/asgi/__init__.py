"""pwtop inside an ASGI app (FastAPI, Starlette): the request-timing middleware."""
