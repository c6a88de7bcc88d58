/**
 * comlink transfer handlers installed on both sides of the worker boundary: typed errors keep
 * their class and fields (a `QuotaError` thrown in the worker is a `QuotaError` on the main
 * thread), and an `AbortSignal` crosses as a MessagePort that aborts a worker-side twin.
 */
import * as Comlink from 'comlink';
import { reviveError, serializeError, type SerializedError } from '../errors.js';

let installed = false;

export function installHandlers(): void {
  if (installed) return;
  installed = true;
  const baseThrow = Comlink.transferHandlers.get('throw')!;
  Comlink.transferHandlers.set('throw', {
    canHandle: baseThrow.canHandle,
    serialize: (thrown: unknown) => [serializeError((thrown as { value: unknown }).value), []],
    deserialize: (s: unknown) => {
      throw reviveError(s as SerializedError);
    },
  });
  Comlink.transferHandlers.set('abortsignal', {
    canHandle: (v: unknown): v is AbortSignal => typeof AbortSignal !== 'undefined' && v instanceof AbortSignal,
    serialize: (signal: AbortSignal) => {
      // The reason travels too (as a serialised error), so `AbortSignal.abort(new Error('user
      // left'))` still says "user left" on the other side.
      const { port1, port2 } = new MessageChannel();
      const reason = () => serializeError(signal.reason);
      if (signal.aborted) port1.postMessage(reason());
      else signal.addEventListener('abort', () => port1.postMessage(reason()), { once: true });
      return [{ port: port2, reason: signal.aborted ? reason() : null }, [port2]];
    },
    deserialize: ({ port, reason }: { port: MessagePort; reason: SerializedError | null }) => {
      const ctl = new AbortController();
      if (reason) ctl.abort(reviveError(reason));
      port.onmessage = (e: MessageEvent<SerializedError>) => {
        ctl.abort(reviveError(e.data));
        port.close();
      };
      return ctl.signal;
    },
  } as Comlink.TransferHandler<AbortSignal, { port: MessagePort; reason: SerializedError | null }>);
}
