# nvcf-sidecar: the worker sidecar image (runs `nvcf-sidecar worker`).
# Build: docker build -t nvcf-sidecar .
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The worker shares /var/inf with the inference container (an emptyDir in the pod).
RUN mkdir -p /var/inf/inputAssets /var/inf/response && chown -R node:node /var/inf
USER node
# 8080: /v1/health/live and /v1/health/ready; 8010: /metrics (both reserved by NVCF).
EXPOSE 8080 8010
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["worker"]
