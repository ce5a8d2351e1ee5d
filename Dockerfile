# One image for the API, the workers and the migration job.
FROM python:3.12-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY services ./services
COPY workers ./workers
COPY migrations ./migrations
COPY groundwire ./groundwire
RUN pip install .
RUN useradd --system --uid 10001 groundwire
USER groundwire
EXPOSE 8000
CMD ["groundwire", "api", "--host", "0.0.0.0", "--port", "8000"]
