// sse: the Server-Sent Events transport (PROTOCOL.md section 5.1). Every
// frame is one event of the default type. On error the EventSource is
// closed: its own reconnect would reuse a spent ticket, so the session
// attaches again itself, with a fresh ticket and its ack.

// From other files: _data (downstream); _gone (resume).
var sse = {
  _name: 'sse',
  _need: 'EventSource',
  _stream: 1,
  _open: function (c, att, url) {
    // The options are the EventSourceInit: EventSource reads only their
    // withCredentials, as a boolean.
    var es = att._handle = new c._globals.EventSource(url, c._options);
    es.onmessage = function (e) {
      _data(c, att, e.data);
    };
    es.onerror = function () {
      _gone(c, att, {});
    };
  }
};
