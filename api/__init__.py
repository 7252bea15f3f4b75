"""The HTTP API (FastAPI, served by uvicorn): health, monitoring, the Telegram webhook and what front ends add."""
