import Fastify, { type FastifyInstance, type FastifyRequest, LogController } from 'fastify';
import type { Logger } from 'pino';
import { registerMessages } from './anthropic/messages.ts';
import { parseJsonBody } from './body.ts';
import { decodeBody } from './body-encoding.ts';
import type { ServeConfig } from './config.ts';
import { ApiError, apiFamily, errorBody, isFailure, toApiError } from './errors.ts';
import { AdmissionGate, type ServerContext } from './generation.ts';
import { hostCheck } from './host-check.ts';
import { ignoredFieldLog } from './ignored-fields.ts';
import { ServerMetrics } from './metrics.ts';
import type { ModelRegistry } from './models.ts';
import { registerBlobRoutes } from './ollama/blob-routes.ts';
import { registerChat } from './ollama/chat.ts';
import { registerEmbed } from './ollama/embed.ts';
import { registerGenerate } from './ollama/generate.ts';
import { registerModelRoutes } from './ollama/models.ts';
import { registerStoreRoutes } from './ollama/store-routes.ts';
import { registerChatCompletions } from './openai/chat.ts';
import { registerCompletions } from './openai/completions.ts';
import { registerEmbeddings } from './openai/embeddings.ts';
import { registerLoraAdapters } from './openai/lora-adapters.ts';
import { registerModels } from './openai/models.ts';
import { ResponseStore } from './openai/response-store.ts';
import { registerResponses } from './openai/responses.ts';
import { registerRequestLog } from './request-log.ts';
import { registerRerank } from './rerank.ts';
import { routeMethods } from './route-methods.ts';
import { registerScore } from './score.ts';
import { corsPolicy, requireApiKey } from './security.ts';
import { registerTokenize } from './tokenize.ts';
import { isPageRequest, registerUi, wantsHtml } from './ui/routes.ts';

export interface App {
  app: FastifyInstance;
  ctx: ServerContext;
}

/** How often node looks for requests past their timeouts: a quarter of the shortest, at most once a second. */
function checkingInterval(config: ServeConfig): number {
  const limits = [config.headersTimeoutMs, config.requestTimeoutMs].filter((ms) => ms > 0);
  return Math.max(10, Math.min(1000, ...limits.map((ms) => ms / 4)));
}

/**
 * The HTTP app: routes of both APIs, body parsing, auth, CORS, one log line per request, error shapes.
 * `starting` names the start-up models not loaded yet: /health answers 503 while there are any.
 */
export function buildApp(
  config: ServeConfig,
  registry: ModelRegistry,
  log: Logger,
  version: string,
  starting: () => readonly string[] = () => [],
): App {
  const app = Fastify({
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
    // request.log is the server's logger, not a child per request bound to a request id that no other line carries
    // (an allocation on every request for the rare error line): that line names the request's method and URL.
    childLoggerFactory: (logger) => logger,
    bodyLimit: config.bodyLimitBytes,
    // Requests during shutdown get a 503 in their API's shape (the hook below), not Fastify's own body.
    return503OnClosing: false,
    // node enforces both once the request is whole, so answers may stream for as long as they take.
    requestTimeout: config.requestTimeoutMs,
    http: {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      connectionsCheckingInterval: checkingInterval(config),
    },
  }) as unknown as FastifyInstance;
  const metrics = new ServerMetrics(() =>
    registry.resident().map((r) => ({ name: r.entry.name, stats: r.model.engine.stats() })),
  );
  const ctx: ServerContext = {
    config,
    registry,
    metrics,
    gate: new AdmissionGate(config.maxQueue),
    responses: new ResponseStore(),
    version,
  };

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, async (request: FastifyRequest, body: Buffer) =>
    parseJsonBody(await decodeBody(body, request.headers['content-encoding'], config.bodyLimitBytes)),
  );

  const methodsOf = routeMethods(app);
  registerRequestLog(app, log, config.logRequests, (status) => metrics.httpResponses.inc({ status: String(status) }));
  const checkHost = hostCheck(() => {
    const address = app.server.address();
    return typeof address === 'object' && address ? address.address : null;
  });
  const cors = corsPolicy(config.origins);
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (request, reply) => {
    checkHost(request.headers.host);
    if (cors(request, reply) === 'preflight') return reply.code(204).send();
    if (closing) throw new ApiError(503, 'the server is shutting down', null, null, { 'retry-after': '5' });
  });
  if (config.apiKey) {
    const check = requireApiKey(config.apiKey);
    // The page loads without the key, then asks for it and sends it with every API call.
    const open = (request: FastifyRequest) => config.ui && isPageRequest(request);
    app.addHook('onRequest', async (request) => {
      if (!open(request)) check(request);
    });
  }

  const noteIgnored = ignoredFieldLog(log);
  app.addHook('preHandler', async (request) => noteIgnored(request.routeOptions.url ?? '', request.body));

  app.setErrorHandler((err, request, reply) => {
    const api = toApiError(err);
    if (isFailure(api))
      request.log.error({ err, method: request.method, url: request.url.slice(0, 200) }, 'request failed');
    reply
      .code(api.status)
      .headers(api.headers)
      .send(errorBody(apiFamily(request.url), api));
  });
  app.setNotFoundHandler((request, reply) => {
    const url = request.url.slice(0, 200);
    const allowed = methodsOf(request.url.split('?')[0]!);
    // A route of this method that found nothing (a page file that is not there) is a 404 too.
    const api =
      allowed.length && !allowed.includes(request.method)
        ? new ApiError(405, `${request.method} is not allowed on ${url} (it takes ${allowed.join(', ')})`, null, null, {
            allow: allowed.join(', '),
          })
        : new ApiError(404, `${request.method} ${url} not found`);
    reply
      .code(api.status)
      .headers(api.headers)
      .send(errorBody(apiFamily(request.url), api));
  });

  app.get('/health', async (_request, reply) => {
    const pending = starting();
    const ready = registry.resident().map((r) => r.entry.name);
    reply.code(pending.length ? 503 : 200);
    return { status: pending.length ? 'loading' : 'ok', models: { ready, loading: registry.loading() } };
  });
  // vLLM's (and SageMaker's) readiness probe: /health's status, no body.
  app.route({
    method: ['GET', 'POST'],
    url: '/ping',
    handler: async (_request, reply) => reply.code(starting().length ? 503 : 200).send(),
  });
  app.get('/version', async () => ({ version }));
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.get('/', async (request, reply) =>
    config.ui && wantsHtml(request) ? reply.redirect('ui/', 302) : 'pagoda is running',
  );
  app.get('/api/version', async () => ({ version }));

  registerChatCompletions(app, ctx);
  registerCompletions(app, ctx);
  registerResponses(app, ctx);
  registerMessages(app, ctx);
  registerEmbeddings(app, ctx);
  registerRerank(app, ctx);
  registerScore(app, ctx);
  registerTokenize(app, ctx);
  registerModels(app, ctx);
  registerLoraAdapters(app, ctx);
  registerGenerate(app, ctx);
  registerChat(app, ctx);
  registerEmbed(app, ctx);
  registerModelRoutes(app, ctx);
  registerBlobRoutes(app);
  registerStoreRoutes(app, ctx);
  if (config.ui) registerUi(app);
  return { app, ctx };
}
