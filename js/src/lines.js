// lines: the reader of an XHR stream's growing responseText (PROTOCOL.md
// section 5.1). A response grows by arbitrary chunks; only whole lines are
// decoded, and a partial line waits for its newline.

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
