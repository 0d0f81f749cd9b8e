# One image for every service; docker-compose.yml picks the entry point per container.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY config ./config
COPY shared ./shared
COPY services ./services
COPY scripts ./scripts
COPY console ./console
# The services, and the console's static pages that the api serves from dist/console.
RUN npx tsc -p tsconfig.build.json && npx vite build --config console/vite.config.ts

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
# Overridden per service in docker-compose.yml.
CMD ["node", "--enable-source-maps", "dist/services/api/main.js"]
