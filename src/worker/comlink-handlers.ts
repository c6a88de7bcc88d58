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
      const { port1, port2 } = new MessageChannel();
      if (signal.aborted) port1.postMessage(null);
      else signal.addEventListener('abort', () => port1.postMessage(null), { once: true });
      return [{ port: port2, aborted: signal.aborted }, [port2]];
    },
    deserialize: ({ port, aborted }: { port: MessagePort; aborted: boolean }) => {
      const ctl = new AbortController();
      if (aborted) ctl.abort();
      port.onmessage = () => {
        ctl.abort();
        port.close();
      };
      return ctl.signal;
    },
  } as Comlink.TransferHandler<AbortSignal, { port: MessagePort; aborted: boolean }>);
}
