# One image for every Hyperscale process: Node 20, the built workspaces, production dependencies.
# The chart (charts/hyperscale) picks the process with its command, run from /app:
#   node --enable-source-maps --import @hyperscale/platform/telemetry services/like/dist/main.js
#        (like, counter, writer; operators/countershard/dist/main.js for the operator)
#   node services/platform/dist/mysql/migrate-cli.js                              (migration Job)
# Build: docker build -t ghcr.io/hyperscale/hyperscale:0.1.0 .
# charts/test/image.test.ts replays this file without a container engine and runs every process
# from the result: keep to FROM, WORKDIR, COPY, RUN, ENV, USER and CMD (exec form).

# The package manifests, alone: the dependency layers below are rebuilt only when they change.
FROM node:20-bookworm-slim AS manifests
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json ./
COPY services/platform/package.json services/platform/
COPY services/like/package.json services/like/
COPY services/counter/package.json services/counter/
COPY services/writer/package.json services/writer/
COPY operators/countershard/package.json operators/countershard/
COPY bench/package.json bench/

# Compiled with every dependency, development ones included.
FROM manifests AS build
RUN npm ci --no-audit --no-fund
COPY services services
COPY operators operators
RUN npx tsc -b services/platform services/like services/counter services/writer operators/countershard \
  && rm -rf services/*/src services/*/test operators/*/src operators/*/test \
    services/*/dist/.tsbuildinfo operators/*/dist/.tsbuildinfo

# The production dependencies of the workspaces the image runs (not the bench's load generator).
FROM manifests AS deps
RUN npm ci --omit=dev --no-audit --no-fund -w services/platform -w services/like -w services/counter \
  -w services/writer -w operators/countershard

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/package.json ./
COPY --from=deps /app/node_modules node_modules
COPY --from=build /app/services services
COPY --from=build /app/operators operators
USER 10001:10001
CMD ["node", "--enable-source-maps", "--import", "@hyperscale/platform/telemetry", "services/like/dist/main.js"]
