// Type declarations of comet-shim, the browser client of the Comet wire
// protocol v1. The API mirrors the browser's WebSocket; see README.md.

export as namespace Comet;
export = Comet;

declare class Comet {
  /**
   * Opens a session, as new WebSocket(url, protocols) does: protocols is a subprotocol or a
   * list of them (the server picks one; none in common fails with 1006). Options may follow
   * protocols, or take their place.
   */
  constructor(url: string | URL, protocols?: string | string[], options?: Comet.Options);
  constructor(url: string | URL, options?: Comet.Options);

  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;

  /** The URL given to the constructor, resolved against the page. */
  readonly url: string;
  readonly readyState: 0 | 1 | 2 | 3;
  /** Bytes sent and not yet acknowledged by the server (not: not yet written to the network). */
  readonly bufferedAmount: number;
  /** Any other value is ignored with comet-dom.js; comet.js alone does not check it. */
  binaryType: 'blob' | 'arraybuffer';
  /** The transport in use: 'websocket', 'sse', 'streaming' or 'longpoll'; '' before open. */
  readonly transport: '' | Comet.TransportName;
  /** The subprotocol the server selected, '' if none was asked for; set once negotiate answers. */
  readonly protocol: string;
  /** Always '': Comet has no extensions. */
  readonly extensions: string;
  /**
   * With the topics option (and comet-topics.js): the position of each topic, the last message
   * the page received of it or where its subscription started, kept up to date. Persist it and
   * pass it as the next Comet's topics option to resume every topic where this one stopped.
   * Undefined without the option.
   */
  readonly topics?: { [topic: string]: Comet.TopicPosition };

  onopen: ((this: Comet, ev: Comet.TransportEvent) => any) | null;
  onmessage: ((this: Comet, ev: Comet.MessageEvent) => any) | null;
  onerror: ((this: Comet, ev: Comet.CloseEvent) => any) | null;
  onclose: ((this: Comet, ev: Comet.CloseEvent) => any) | null;
  ontransport?: ((this: Comet, ev: Comet.TransportEvent) => any) | null;
  onreconnecting?: ((this: Comet, ev: Comet.ReconnectingEvent) => any) | null;
  ongap?: ((this: Comet, ev: Comet.GapEvent) => any) | null;
  ondrain?: ((this: Comet, ev: Comet.Event) => any) | null;
  ontopicgap?: ((this: Comet, ev: Comet.TopicGapEvent) => any) | null;

  /**
   * Queues a message. Throws InvalidStateError while CONNECTING; after close() discards the
   * data and grows bufferedAmount (as the standard says). While OPEN throws SyntaxError above
   * the server's maxMessage, QuotaExceededError past options.maxBuffered, TypeError for binary
   * data without typed-array support, and (without comet-dom.js, which makes them U+FFFD) for
   * text with a lone surrogate.
   */
  send(data: string | ArrayBuffer | ArrayBufferView | Blob): void;
  /** Closes with no code (1005), 1000 or 3000–4999 and a reason of at most 123 UTF-8 bytes. */
  close(code?: number, reason?: string): void;

  addEventListener<K extends keyof Comet.EventMap>(type: K,
    listener: ((this: Comet, ev: Comet.EventMap[K]) => any) | { handleEvent(ev: Comet.EventMap[K]): any },
    options?: boolean | { once?: boolean }): void;
  removeEventListener<K extends keyof Comet.EventMap>(type: K,
    listener: ((this: Comet, ev: Comet.EventMap[K]) => any) | { handleEvent(ev: Comet.EventMap[K]): any }): void;
  /**
   * Dispatches an event to the listeners. Listener objects (handleEvent), the once option,
   * registration order across on<type> handlers and listeners, and the boolean result need
   * comet-dom.js; comet.js alone runs function listeners after the on<type> handler.
   */
  dispatchEvent(event: Comet.Event | Event): boolean | void;
}

declare namespace Comet {
  type TransportName = 'websocket' | 'sse' | 'streaming' | 'longpoll';

  /** Why the client left a transport, as reported to the server in the attach's why parameter. */
  type Reason = '' | 'ws_refused' | 'ws_hung' | 'ws_silent' | 'stream_buffered' | 'idle_cut' | 'early_death' | 'upgraded';

  interface Options {
    /** Transports to use, best first; one entry forces it (no fallback). Default all four. */
    transports?: TransportName[];
    /** Extra headers on negotiate only (tokens belong here, not in URLs). */
    headers?: { [name: string]: string };
    /** Send cookies cross-origin (XHR and EventSource withCredentials). Default false. */
    withCredentials?: boolean;
    /** Heartbeat interval (long-polling: hold) to ask for, ms; 0 = the server's. */
    heartbeat?: number;
    /** Timeout of negotiate, ms. Default 10000. */
    timeout?: number;
    /** Attach timeout, ms; 0 derives it from the negotiate round trip. */
    attachTimeout?: number;
    /** Largest bufferedAmount, bytes; send throws beyond it. Default 8 MiB. */
    maxBuffered?: number;
    /** Open a fresh session after an end that allows it (never after 3003 or 3005). Default false. */
    reconnect?: boolean;
    /** Backoff bounds of reconnect, ms. Default 1000 and 30000. */
    reconnectDelay?: number;
    reconnectMaxDelay?: number;
    /**
     * Send and receive binary messages as binary WebSocket messages, where the server agrees;
     * false keeps them base64 in text frames. Other transports always carry base64. Default true
     * (where the browser has ArrayBuffer and Uint8Array).
     */
    binaryFrames?: boolean;
    /** Remember the working transport per endpoint in localStorage for a day. Default true. */
    remember?: boolean;
    /**
     * A TCP relay target, 'host:port' (an IPv6 host in brackets), sent in the negotiate request.
     * Only its type is checked here (a non-string throws TypeError); the server decides whether
     * it may connect. Most pages use CometTCP (comet-tcp.js) instead of setting it.
     */
    target?: string;
    /**
     * Topic positions (PROTOCOL.md section 15); needs comet-topics.js, loaded after comet.js
     * (without it, the constructor throws TypeError). The positions to present, by topic (a
     * previous Comet's topics), or {} to ask for positions only.
     */
    topics?: { [topic: string]: TopicPosition };
    /**
     * With comet-share.js loaded: false makes this Comet connect on its own, not through the
     * connection the page's tabs share (PROTOCOL.md section 16). Default true. Without
     * comet-share.js it has no effect.
     */
    share?: boolean;
    /** Diagnostics hook; its calls are stripped from comet.min.js. */
    debug?: ((msg: string, data?: any) => void) | null;
    /** Browser globals to use instead of the global object's (tests). */
    globals?: { [name: string]: any };
  }

  /** currentTarget, timeStamp, origin and lastEventId are set with comet-dom.js (real DOM events). */
  interface Event {
    readonly type: string;
    readonly target: Comet;
    readonly currentTarget?: Comet;
    readonly timeStamp?: number;
  }
  interface MessageEvent extends Event {
    /** A string for text; an ArrayBuffer or Blob for binary, per binaryType. */
    readonly data: string | ArrayBuffer | Blob;
    readonly origin?: string;
    readonly lastEventId?: string;
    /** The topic of a message published to one (topics option, comet-topics.js); absent otherwise. */
    readonly topic?: string;
  }
  interface CloseEvent extends Event {
    readonly code: number;
    readonly reason: string;
    readonly wasClean: boolean;
    /** The HTTP status of a refused request (negotiate 401/403 → code 3003). */
    readonly status?: number;
    /** The server's reconnect hint, ms. */
    readonly retry?: number;
  }
  /** The open and transport events. */
  interface TransportEvent extends Event {
    readonly transport: TransportName;
    readonly from: '' | TransportName;
    readonly reason: Reason;
    /** The round trip of negotiate, ms. */
    readonly rtt: number;
    /** The heartbeat interval in force on this transport, ms (long-polling: the hold). */
    readonly heartbeat: number;
  }
  interface ReconnectingEvent extends Event {
    /** Why: a Reason, 'dropped', or 'session_ended' (fresh is then true). */
    readonly reason: string;
    readonly transport?: TransportName;
    /** For a resume: the heartbeat interval it asks for, ms; 0 for the server's. */
    readonly heartbeat?: number;
    readonly fresh?: boolean;
    readonly code?: number;
    readonly delay?: number;
  }
  interface GapEvent extends Event {
    /** How the previous session ended. */
    readonly code: number;
    readonly reason: string;
    /** Messages sent on the previous session that it never acknowledged. */
    readonly dropped: number;
  }
  /** A place in a topic's history: the offset of a message, in the epoch that numbered it. */
  interface TopicPosition {
    epoch: string;
    offset: number;
  }
  /**
   * The messages of a topic before offset + 1 could not be recovered (the server's history no
   * longer held them, or began again); what follows is the topic's from this position on.
   */
  interface TopicGapEvent extends Event {
    readonly topic: string;
    readonly epoch: string;
    readonly offset: number;
  }
  interface EventMap {
    open: TransportEvent;
    message: MessageEvent;
    error: CloseEvent;
    close: CloseEvent;
    transport: TransportEvent;
    reconnecting: ReconnectingEvent;
    gap: GapEvent;
    drain: Event;
    topicgap: TopicGapEvent;
  }
}
