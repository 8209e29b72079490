# The headless mef3lab server, installed as the tests install it (pip, Python 3.11).
# Not built by CI (no container runtime on the project's machines).
#   docker build -t mef3lab .
#   docker run --shm-size=2g -p 50051:50051 -p 8080:8080 -v /data:/data:ro -v $PWD/tokens:/etc/mef3lab/tokens:ro mef3lab --root /data
# (--shm-size: the segment cache lives in /dev/shm, which Docker makes 64 MB by default)
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mef3lab ./mef3lab
COPY jupyter-config ./jupyter-config
RUN pip install --no-cache-dir . && useradd --create-home mef3lab
USER mef3lab
# Inside a container the server must listen beyond localhost, so it needs tokens (lines "TOKEN" or
# "USER TOKEN"; without them it refuses to start). The status page over TCP shows no paths.
ENV HOST=0.0.0.0 PORT=50051 HTTP_PORT=8080 TOKEN_FILE=/etc/mef3lab/tokens
EXPOSE 50051 8080
# /healthz needs no token: it says only whether the server is up. `mef3lab health` reads the
# same variables as the server (HTTP_PORT, TLS_CERT, ...) and asks over HTTPS when TLS is on;
# settings given as `docker run ... mef3lab --flag` are not seen by it: give them as -e VARIABLE.
HEALTHCHECK CMD ["mef3lab", "health"]
ENTRYPOINT ["mef3lab", "serve"]
