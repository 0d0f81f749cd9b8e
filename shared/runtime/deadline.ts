/** A call to another system that did not answer in time: its outcome is unknown, not failed. */
export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

/**
 * Waits for `work` at most `ms`. A database command whose connection dies at the wrong moment can be
 * left without an answer for good (seen with the MongoDB driver when the server is killed mid-command:
 * the socket is gone, so neither its timeout nor its error fires). Whoever waits for such a command
 * gives up here and treats the outcome as unknown; the work itself cannot be cancelled and may still land.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what}: no answer within ${ms} ms; its outcome is unknown`)), ms);
    timer.unref();
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
