/**
 * `npm start`: loads the configuration (PARLEY_CONFIG, env overrides, or the embedded default),
 * builds the app and listens. SIGTERM/SIGINT drain (CONTRACT §5) and exit 0 within
 * `drainSeconds` + 5 s, however many times the signal arrives.
 */
import { buildApp, newReplicaId } from './app.js';
import { ConfigError, loadConfig } from './config/load.js';
import { configSecrets } from './config/secrets.js';
import { createLogger } from './telemetry/logger.js';

async function main(): Promise<void> {
  let loaded;
  try {
    loaded = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const { config, source } = loaded;
  // The replica id goes into the logger's base, so even the lines written here carry it.
  const replicaId = newReplicaId();
  const logger = createLogger({ level: config.logLevel, replicaId, secrets: configSecrets(config) });
  const app = await buildApp({ config, logger, replicaId, defaultMetrics: true });
  const { url } = await app.listen();
  logger.info({ url, config: source, store: config.store.kind }, 'parley listening');
  if (source === 'default') {
    const account = config.accounts[0]!;
    // Printed on stdout for the newcomer, not through the logger: the logger redacts secrets.
    process.stdout.write(
      [
        '',
        `  Parley is running on ${url} with the embedded default configuration.`,
        `  Demo page:     ${url}/demo/`,
        `  Dashboard:     ${url}/dashboard#key=${encodeURIComponent(account.keys[0]!.secret)}`,
        `  Demo account:  ${account.id}`,
        `  Demo API key:  ${account.keys[0]!.secret}   (new at every start; set PARLEY_CONFIG for your own)`,
        `  Try:           curl -s -X POST ${url}/v1/tokens -H "Authorization: Bearer ${account.keys[0]!.secret}"`,
        '',
      ].join('\n') + '\n',
    );
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      logger.info({ signal }, 'already draining');
      return;
    }
    stopping = true;
    logger.info({ signal }, 'draining');
    const hardStop = setTimeout(() => {
      logger.warn('drain took too long; exiting');
      process.exit(0);
    }, (config.server.drainSeconds + 4) * 1000);
    hardStop.unref();
    app
      .drain()
      .then(() => app.close())
      .then(
        () => {
          logger.info('stopped');
          process.exit(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'error while stopping');
          process.exit(0);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`parley: failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
