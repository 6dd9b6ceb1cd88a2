# nvcf-sidecar: one image for every command (worker, gateway, dev, invoke).
#
#   docker build -t nvcf-sidecar .
#   docker run --rm -p 8090:8090 nvcf-sidecar dev --demo          # NATS, gateway, worker and the echo container
#   docker run --rm --stop-timeout 110 nvcf-sidecar               # the worker (configured by environment)
#   docker run --rm -p 8090:8090 -e NATS_URL=nats://nats:4222 nvcf-sidecar gateway
#
# Stop timeout: a stopping worker drains for up to DRAIN_GRACE (100 s) before it exits, and
# Docker kills a container 10 s after SIGTERM unless told otherwise. Give the container
# DRAIN_GRACE + 10 s: `docker run --stop-timeout 110`, compose `stop_grace_period: 110s`,
# Kubernetes `terminationGracePeriodSeconds` (see examples/05-kubernetes and 06-docker-compose).
#
# Node.js 24 is the LTS line this image is built and run on; NODE_VERSION picks another.

ARG NODE_VERSION=24
ARG NATS_VERSION=2.12

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Only for `dev`, which starts a private nats-server from PATH; the worker and gateway use NATS_URL.
# The release binary is static, so the Alpine image's copy runs on Debian.
FROM nats:${NATS_VERSION}-alpine AS nats

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# In a container the gateway (and the one `dev` starts) must listen beyond loopback to be published.
ENV NODE_ENV=production GATEWAY_HOST=0.0.0.0
WORKDIR /app
COPY --from=nats /usr/local/bin/nats-server /usr/local/bin/nats-server
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# examples/01-echo is the container `dev --demo` starts.
COPY examples ./examples
COPY ops/docker-healthcheck.mjs ./ops/docker-healthcheck.mjs
# The worker shares /var/inf with the inference container (an emptyDir in a pod, a volume in compose).
RUN mkdir -p /var/inf/inputAssets /var/inf/response && chown -R node:node /var/inf
USER node
# 8080: the worker's /v1/health/live and /v1/health/ready; 8010: its /metrics (both as in NVCF).
# 8090: the gateway's API, its /metrics and /v1/health/*.
EXPOSE 8080 8010 8090
# Liveness of whichever command runs (see the script); readiness is for orchestrators to ask.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["node", "/app/ops/docker-healthcheck.mjs"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["worker"]
