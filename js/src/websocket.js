// websocket: the WebSocket transport (PROTOCOL.md section 5). Each text
// WebSocket message is one batch, both ways; a binary one is a raw binary
// message, where negotiate agreed to them. The transport only adapts the
// wire; proving, racing and resuming are the session's.

// From other files: _wsOpen (attach); _data, _raw (downstream);
// _fail (lifecycle); _gone (resume).
var websocket = {
  _name: 'websocket',
  _need: 'WebSocket',
  _open: function (c, att, url) {
    var ws = att._handle = new c._globals.WebSocket(url.replace(/^http/, 'ws'));
    ws.onopen = function () {
      _wsOpen(c, att);
    };
    ws.binaryType = 'arraybuffer';
    ws.onmessage = function (e) {
      if (typeof e.data == 'string') _data(c, att, e.data);
      else if (c._binary) _raw(c, att, e.data);
      else _fail(c, 1002, 'binary message');
    };
    // Browsers hide why a handshake failed; before onopen it is a refusal.
    ws.onerror = ws.onclose = function () {
      _gone(c, att, { _why: att._socketOpen ? '' : 'ws_refused' });
    };
  }
};
