import mysql from 'mysql2/promise';
import type { Connection } from 'mysql2/promise';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { MysqlPoolName } from './errors.js';
import { mysqlErrno, MysqlErrno } from './errors.js';

/** What became of one kill: the thread was killed, had already ended, or the kill did not happen. */
export type KillOutcome = 'killed' | 'gone' | 'failed' | 'skipped';

/** Options of {@link ServerThreadKiller}. */
export interface ServerThreadKillerOptions {
  readonly pool: MysqlPoolName;
  /** Same server and account as the pool: a user may kill its own threads without privileges. */
  readonly url: string;
  /** Deadline of the whole kill: connect, `KILL CONNECTION`, close. */
  readonly timeoutMs: number;
  /** Kills in flight at most; beyond it a kill is skipped (a server that is down would only pile up connects). */
  readonly maxInFlight?: number;
  readonly kills: Counter<'pool' | 'outcome'>;
  readonly logger: Logger;
}

/**
 * Ends, on the server, the session of a connection abandoned at its statement deadline.
 *
 * Closing the client socket does not stop what the server is doing for it: the server only sees
 * the socket closed when it next reads or writes it. A statement waiting on a lock keeps waiting
 * (a metadata lock for `lock_wait_timeout`, a year by default) and then runs, so an
 * auto-committed write that the caller was told had timed out lands later. An open transaction
 * keeps its row locks meanwhile. `KILL CONNECTION <id>`, sent from a short-lived connection of
 * its own, aborts the statement, rolls the session back and frees the thread within a round trip.
 *
 * The pool's own connections are not used: they may all be stuck in the very waits being ended.
 * Best effort: a statement that completes before the kill arrives stays done, so a timeout still
 * means "outcome unknown", only for a round trip instead of indefinitely.
 */
export class ServerThreadKiller {
  readonly #options: ServerThreadKillerOptions;
  readonly #maxInFlight: number;
  readonly #inFlight = new Set<Promise<KillOutcome>>();

  constructor(options: ServerThreadKillerOptions) {
    this.#options = options;
    this.#maxInFlight = options.maxInFlight ?? 4;
  }

  /** Starts killing the server thread `threadId` (never rejects); resolves with what happened. */
  kill(threadId: number): Promise<KillOutcome> {
    if (!Number.isSafeInteger(threadId) || threadId <= 0) return Promise.resolve(this.#count('skipped'));
    if (this.#inFlight.size >= this.#maxInFlight) {
      // debug: with the server frozen this happens at the rate of timeouts; the counter shows it
      this.#options.logger.debug(
        { threadId, inFlight: this.#inFlight.size },
        'mysql kill of a timed-out session skipped: too many in flight',
      );
      return Promise.resolve(this.#count('skipped'));
    }
    const done = this.#killNow(threadId).then((outcome) => this.#count(outcome));
    this.#inFlight.add(done);
    void done.finally(() => this.#inFlight.delete(done));
    return done;
  }

  /** Waits for the kills in flight (each bounded by `timeoutMs`). */
  async drain(): Promise<void> {
    await Promise.all([...this.#inFlight]);
  }

  #count(outcome: KillOutcome): KillOutcome {
    this.#options.kills.inc({ pool: this.#options.pool, outcome });
    return outcome;
  }

  async #killNow(threadId: number): Promise<KillOutcome> {
    const { url, timeoutMs, logger } = this.#options;
    let conn: Connection | undefined;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const attempt = (async (): Promise<KillOutcome> => {
      conn = await mysql.createConnection({ uri: url, connectTimeout: timeoutMs });
      try {
        // An integer checked above: nothing from input reaches the text.
        await conn.query({ sql: `KILL CONNECTION ${threadId}`, timeout: timeoutMs });
        return 'killed';
      } catch (err) {
        if (mysqlErrno(err) === MysqlErrno.noSuchThread) return 'gone';
        throw err;
      }
    })();
    try {
      const outcome = await Promise.race([attempt, expired]);
      if (outcome === 'timeout') {
        logger.warn({ threadId, timeoutMs }, 'mysql kill of a timed-out session did not finish in time');
        return 'failed';
      }
      if (outcome === 'gone') logger.debug({ threadId }, 'mysql timed-out session had already ended');
      else logger.info({ threadId }, 'mysql timed-out session killed on the server');
      return outcome;
    } catch (err) {
      logger.warn({ err, threadId }, 'mysql kill of a timed-out session failed');
      return 'failed';
    } finally {
      clearTimeout(timer);
      // The connect may still be pending after the deadline: close whatever it yields (COM_QUIT
      // when the kill went through, so the server does not log an aborted connection).
      void attempt.then(
        () => conn?.end().catch(() => conn?.destroy()),
        () => conn?.destroy(),
      );
    }
  }
}
