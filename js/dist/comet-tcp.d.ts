// Type declarations of comet-tcp.js: CometTCP, a TCP connection through a
// Comet server's relay, shaped like a WebSocket for bytes; see README.md
// ("TCP sockets through the relay"). It needs comet.d.ts beside it.

import Comet = require('./comet.js');

export as namespace CometTCP;
export = CometTCP;

declare class CometTCP {
  /**
   * Connects to host:port through the relay of the Comet server mounted at url. An IPv6 host is
   * written into the target in brackets. The Comet options pass through, except target (made from
   * host and port) and reconnect (always off). Throws TypeError when no Comet is loaded.
   */
  constructor(url: string, host: string, port: number | string, options?: CometTCP.Options);

  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;

  /** Readable reasons of the relay's close codes 3100–3106, used when the server gives none. */
  static readonly closeReasons: { readonly [code: number]: string };

  /** The host as given to the constructor (IPv6 without brackets). */
  readonly host: string;
  /** The port as given to the constructor. */
  readonly port: number | string;
  /** CONNECTING until the relay reports the back-end connection open; then OPEN. */
  readonly readyState: 0 | 1 | 2 | 3;
  /** Bytes sent and not yet acknowledged by the server: the session's bufferedAmount. */
  readonly bufferedAmount: number;
  /**
   * The Comet session carrying the connection, to watch its transport and reconnecting
   * events. Its messages are the relay's: read data from ondata, write with send.
   */
  readonly comet: Comet;

  /** The back end accepted the connection. */
  onopen: ((this: CometTCP, ev: CometTCP.Event) => any) | null;
  /** Bytes from the back end, in order. */
  ondata: ((this: CometTCP, ev: CometTCP.DataEvent) => any) | null;
  /** Just before an unclean close. */
  onerror: ((this: CometTCP, ev: CometTCP.CloseEvent) => any) | null;
  /** The connection has ended. */
  onclose: ((this: CometTCP, ev: CometTCP.CloseEvent) => any) | null;
  /** bufferedAmount fell to 0. */
  ondrain: ((this: CometTCP, ev: CometTCP.Event) => any) | null;

  /**
   * Writes bytes to the back end: an ArrayBuffer, the exact range of a typed array or DataView,
   * or the UTF-8 of a string (a lone surrogate becomes U+FFFD). Throws InvalidStateError unless
   * OPEN, QuotaExceededError when bufferedAmount would pass options.maxBuffered (nothing is sent),
   * TypeError for other data.
   */
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  /** Closes the session with 1000: what was sent is delivered, then the back-end connection closes. */
  close(): void;

  addEventListener<K extends keyof CometTCP.EventMap>(type: K,
    listener: (this: CometTCP, ev: CometTCP.EventMap[K]) => any): void;
  removeEventListener<K extends keyof CometTCP.EventMap>(type: K,
    listener: (this: CometTCP, ev: CometTCP.EventMap[K]) => any): void;
}

declare namespace CometTCP {
  /** The options of the Comet session, less target and reconnect, which CometTCP sets. */
  type Options = Omit<Comet.Options, 'target' | 'reconnect'>;

  interface Event {
    readonly type: string;
    readonly target: CometTCP;
    readonly currentTarget: CometTCP;
  }
  interface DataEvent extends Event {
    /** The bytes of one downstream message: a fresh array each time. */
    readonly data: Uint8Array;
  }
  interface CloseEvent extends Event {
    /**
     * The session's close code: 1000 after close(); 3100–3106 from the relay (3105: the back end
     * closed, after every byte was delivered); 1002 when the relay broke its protocol; any other
     * code of the session (1006, 3000, 3004...).
     */
    readonly code: number;
    /** The server's reason, or for 3100–3106 without one, closeReasons[code]. */
    readonly reason: string;
    readonly wasClean: boolean;
  }
  interface EventMap {
    open: Event;
    data: DataEvent;
    error: CloseEvent;
    close: CloseEvent;
    drain: Event;
  }
}
