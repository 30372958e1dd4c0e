# syntax=docker/dockerfile:1
# Parley gateway.
#   Build: docker build -t parley .
#   Run:   docker run -p 8080:8080 parley                       (embedded default: demo + dashboard on)
#          docker run -p 8080:8080 -e PARLEY_CONFIG=/config/parley.json -v $PWD/config:/config:ro parley
# See docs/operations.md (replicas on Redis, health checks, drain, metrics).

# ---- build: compile TypeScript and bundle the browser SDK ----------------------------------------
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts ./scripts
COPY client-demo ./client-demo
COPY packages ./packages
# tsc -> dist/, the Lua scripts -> dist/src/store/lua, build:client -> client-demo/dist, and
# build:package -> packages/client/dist (the @parley/client package; not part of the image).
RUN npm run build

# ---- deps: production dependencies only --------------------------------------------------------
FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime -----------------------------------------------------------------------------------
FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    PORT=8080
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The demo page and its bundled SDK (client-demo/dist), served at /demo/ when server.demo is on.
COPY --from=build /app/client-demo ./client-demo
COPY package.json ./
# The files stay root-owned: the unprivileged node user can read the app but not change it.
USER node
EXPOSE 8080
# Exec form: node is PID 1 and gets SIGTERM itself, so the drain (CONTRACT §5) runs and the
# process exits 0 within drainSeconds + 5 s. Give the orchestrator's grace period more than that
# (docker stop -t 20; Kubernetes terminationGracePeriodSeconds >= drainSeconds + 10).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/src/main.js"]
