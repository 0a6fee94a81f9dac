// websocket: the WebSocket transport (PROTOCOL.md section 5). Each
// WebSocket message is one batch, both ways. The transport only adapts
// the wire; proving, racing and resuming are the session's.
var websocket = {
  name: 'websocket',
  need: 'WebSocket',
  open: function (c, att, url) {
    var ws = att.x = new c._g.WebSocket(url.replace(/^http/, 'ws'));
    ws.onopen = function () {
      c._wsOpen(att);
    };
    ws.onmessage = function (e) {
      if (typeof e.data == 'string') c._data(att, e.data);
      else c._fail(1002, 'binary message');
    };
    // Browsers hide why a handshake failed; before onopen it is a refusal.
    ws.onerror = ws.onclose = function () {
      c._gone(att, { why: att.up ? '' : 'ws_refused' });
    };
  },
  send: function (att, text) {
    att.x.send(text);
  }
};
