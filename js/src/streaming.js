// streaming: the XHR streaming transport (PROTOCOL.md section 5.1), for
// browsers without EventSource: one long GET read as its responseText
// grows. The server recycles the response after a byte budget, always at
// a frame boundary; the session then attaches again.
var streaming = {
  name: 'streaming',
  need: 'XMLHttpRequest',
  open: function (c, att, url) {
    var lines = lineReader();
    att.x = request(c, 'GET', url, null, {}, 0, function (status, text) {
      if (status != 200) _gone(c, att, refusalOf(status, text));
      else _gone(c, att, { ok: !lines() });
    }, function (text) {
      var batch = lines(text);
      if (batch) _data(c, att, batch);
    });
  }
};
