# corral: build with the dev toolchain, run on a slim Node with production dependencies only.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim
# The image's defaults come as a config file (listen 0.0.0.0:11434), never as CORRAL_* variables:
# those would override the `listen` of a config mounted later. A mounted config (--config, or
# CORRAL_CONFIG) replaces this file whole; CORRAL_INSTANCES and friends still apply on top.
ENV NODE_ENV=production \
    CORRAL_CONFIG=/app/deploy/docker/corral.yaml
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY config ./config
COPY deploy/docker ./deploy/docker
# The image's own `node` user: corral needs no privileges (11434 is not a privileged port).
USER node
EXPOSE 11434
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:11434/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
# Instances come from CORRAL_INSTANCES / OLLAMA_HOST, or mount a config and pass --config. The
# health check probes 11434: a mounted config should keep listening there.
ENTRYPOINT ["node", "bin/corral.js"]
CMD ["serve"]
