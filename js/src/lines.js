// lines: the reader of an XHR stream's growing responseText (PROTOCOL.md
// section 5.1). A response grows by arbitrary chunks; only whole lines are
// decoded, and a partial line waits for its newline.

// From other files: _data (downstream); refusalOf, request (env);
// _gone (resume).

// lineReader returns a function that takes the whole text so far and
// returns the complete lines it adds, newline-terminated ('' if none yet);
// called with no argument, it reports whether the text ended in the middle
// of a line that is not padding: a cut connection, so a dead path, not a
// malformed frame. decodeBatch skips the padding lines.
function lineReader() {
  var seen = 0, part = '';
  return function (text) {
    if (text == null) return /[^ ]/.test(part);
    var s = part + text.slice(seen), i = s.lastIndexOf('\n');
    seen = text.length;
    part = s.slice(i + 1);
    return s.slice(0, i + 1);
  };
}

// xhrTransport returns the XHR transport called name: one GET per
// attachment, read as a stream as its responseText grows, or else as one
// batch when it ends (long-polling). A stream that ends at a frame
// boundary was recycled by the server; one cut mid-line is a dead path.
function xhrTransport(name, stream) {
  return {
    _name: name,
    _need: 'XMLHttpRequest',
    _stream: stream,
    _open: function (c, att, url) {
      var lines = lineReader();
      att._handle = request(c, url, function (status, text) {
        if (status != 200) return _gone(c, att, refusalOf(status, text));
        if (!stream) _data(c, att, text);
        _gone(c, att, { _ok: !lines() });
      }, stream && function (text) {
        var batch = lines(text);
        if (batch) _data(c, att, batch);
      });
    }
  };
}
