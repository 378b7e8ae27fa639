# One image for every Hyperscale process: Node 20, the built workspaces, production dependencies.
# The chart (charts/hyperscale) picks the process with its command, run from /app:
#   node --import @hyperscale/platform/telemetry services/like/dist/main.js      (like, counter, writer)
#   node --import @hyperscale/platform/telemetry operators/countershard/dist/main.js
#   node services/platform/dist/mysql/migrate-cli.js                              (migration Job)
# Build: docker build -t ghcr.io/hyperscale/hyperscale:0.1.0 .
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json ./
COPY services/platform/package.json services/platform/
COPY services/like/package.json services/like/
COPY services/counter/package.json services/counter/
COPY services/writer/package.json services/writer/
COPY operators/countershard/package.json operators/countershard/
COPY bench/package.json bench/
RUN npm ci --no-audit --no-fund
COPY services services
COPY operators operators
RUN npx tsc -b services/platform services/like services/counter services/writer operators/countershard \
  && npm prune --omit=dev --no-audit --no-fund \
  && rm -rf bench services/*/src services/*/test operators/*/src operators/*/test

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app /app
USER 10001:10001
CMD ["node", "--import", "@hyperscale/platform/telemetry", "services/like/dist/main.js"]
