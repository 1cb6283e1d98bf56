# The lineage server image used by docker-compose.yml.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends graphviz git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY lineage ./lineage
RUN pip install --no-cache-dir '.[s3]'
EXPOSE 8000
CMD ["lineage", "server", "--host", "0.0.0.0", "--port", "8000"]
